"""The daily pull against loopback stand-ins of the three reporting APIs (contracts §10)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from adreports import crypto, services
from adreports.models import AdAccount, AdPull, AdReportRow, AdWarning, PullStatus, WarningKind
from tests.adreports.conftest import account_for
from tests.adreports.fakes import wire_row

pytestmark = pytest.mark.django_db
DAY = date(2026, 11, 20)
PLATFORMS = ("oceanengine", "tencent", "kuaishou")

# (the platform's money value on the wire, fen we must store)
MONEY = {
    # yuan as a decimal string
    "oceanengine": [("0.29", 29), ("1234567.89", 123456789), ("1.005", 101), ("0", 0), ("19.9", 1990)],
    # fen as an integer
    "tencent": [(29, 29), (123456789, 123456789), (101, 101), (0, 0), (1990, 1990)],
    # yuan as a JSON number: a float would make 0.29 -> 28 fen and 1.005 -> 100 fen
    "kuaishou": [(0.29, 29), (1234567.89, 123456789), (1.005, 101), (0, 0), (19.9, 1990)],
}


def stored(account) -> dict[str, tuple]:
    return {
        r.ad_id: (r.campaign_id, r.cost_fen, r.impressions, r.clicks, r.conversions)
        for r in AdReportRow.objects.filter(account=account, day=DAY)
    }


@pytest.mark.parametrize("platform", PLATFORMS)
def test_every_page_is_pulled_and_money_lands_in_exact_fen(ad_platform, platform):
    fake = ad_platform(platform)
    fake.set_day(
        DAY,
        [
            wire_row(platform, DAY, "7001", str(800 + n), money, impressions=1000 + n, clicks=50 + n, conversions=n)
            for n, (money, _) in enumerate(MONEY[platform])
        ],
    )
    fake.set_day(
        DAY + timedelta(days=1), [wire_row(platform, DAY + timedelta(days=1), "7001", "899", MONEY[platform][0][0])]
    )
    account = account_for(fake)

    pull = services.ad_day_pull(account=account, day=DAY)

    assert pull.status == PullStatus.SUCCEEDED, pull.error
    assert (pull.pages, pull.rows, pull.created) == (3, 5, 5)  # 5 rows, 2 a page
    assert len(fake.report_requests()) == 3
    assert stored(account) == {
        str(800 + n): ("7001", cost_fen, 1000 + n, 50 + n, n) for n, (_, cost_fen) in enumerate(MONEY[platform])
    }
    assert pull.cost_fen_after == sum(fen for _, fen in MONEY[platform])
    row = AdReportRow.objects.get(account=account, day=DAY, ad_id="800")
    assert row.platform == platform


def test_requests_follow_the_contract(ad_platform):
    """Auth headers / params and the report parameters of each platform."""
    fakes = {p: ad_platform(p) for p in PLATFORMS}
    for platform, fake in fakes.items():
        fake.set_day(DAY, [wire_row(platform, DAY, "1", "2", MONEY[platform][0][0])])
        services.ad_day_pull(account=account_for(fake), day=DAY)
    _path, query, headers, _ = fakes["oceanengine"].report_requests()[0]
    assert headers["Access-Token"] == fakes["oceanengine"].access_token
    assert (query["advertiser_id"], query["start_time"], query["end_time"]) == (
        "1700000000001",
        "2026-11-20",
        "2026-11-20",
    )
    assert query["dimensions"] == '["stat_time_day", "cdp_project_id", "cdp_promotion_id"]'
    assert query["metrics"] == '["stat_cost", "show_cnt", "click_cnt", "convert_cnt"]'
    assert (query["page"], query["page_size"]) == ("1", "2")
    _, query, headers, _ = fakes["tencent"].report_requests()[0]
    assert "Access-Token" not in headers and query["access_token"] == fakes["tencent"].access_token
    assert query["timestamp"].isdigit() and 0 < len(query["nonce"]) <= 32
    assert (query["account_id"], query["level"]) == ("25610", "REPORT_LEVEL_ADGROUP")
    assert query["group_by"] == '["date", "adgroup_id"]'
    _, _, headers, body = fakes["kuaishou"].report_requests()[0]
    assert headers["Access-Token"] == fakes["kuaishou"].access_token
    assert body == {
        "advertiser_id": 90001,
        "start_date": "2026-11-20",
        "end_date": "2026-11-20",
        "temporal_granularity": "DAILY",
        "page": 1,
        "page_size": 2,
    }


@pytest.mark.parametrize("platform", PLATFORMS)
def test_access_token_is_refreshed_before_it_expires(ad_platform, platform):
    fake = ad_platform(platform)
    fake.set_day(DAY, [wire_row(platform, DAY, "1", "2", MONEY[platform][1][0])])
    old_refresh = fake.refresh_token
    account = account_for(fake, expires_in=timedelta(minutes=5))  # inside the 30-minute margin

    pull = services.ad_day_pull(account=account, day=DAY)

    assert pull.status == PullStatus.SUCCEEDED, pull.error
    assert fake.refreshes == 1
    refresh = fake.refresh_requests()[0]
    sent = refresh[1] if platform == "tencent" else refresh[3]
    assert sent["refresh_token"] == old_refresh
    # the report was asked with the new token, never the old one
    assert len(fake.report_requests()) == 1
    account.refresh_from_db()
    assert crypto.decrypt(account.access_token_enc) == fake.access_token
    assert crypto.decrypt(account.refresh_token_enc) == fake.refresh_token  # rotated, kept
    assert account.access_token_expires_at > timezone.now() + timedelta(hours=23)
    assert account.refresh_token_expires_at > timezone.now() + timedelta(days=29)


@pytest.mark.parametrize("platform", PLATFORMS)
def test_expired_token_answer_refreshes_once_and_retries(ad_platform, platform):
    fake = ad_platform(platform)
    fake.set_day(DAY, [wire_row(platform, DAY, "1", "2", MONEY[platform][1][0])])
    account = account_for(fake)  # 12 h left: no refresh planned
    fake.expire_access()  # but the platform revoked it

    pull = services.ad_day_pull(account=account, day=DAY)

    assert pull.status == PullStatus.SUCCEEDED, pull.error
    assert fake.refreshes == 1
    assert len(fake.report_requests()) == 2
    assert stored(account) == {"2": ("1", MONEY[platform][1][1], 0, 0, 0)}


def test_expired_token_answer_after_a_refresh_is_not_refreshed_again(ad_platform):
    fake = ad_platform("oceanengine")
    account = account_for(fake)
    fake.faults.extend(["token_expired", "token_expired"])

    pull = services.ad_day_pull(account=account, day=DAY)

    assert (pull.status, pull.error_kind) == (PullStatus.FAILED, "token_expired")
    assert fake.refreshes == 1


@pytest.mark.parametrize("platform", PLATFORMS)
def test_failed_refresh_raises_a_warning_naming_the_account(ad_platform, platform):
    fake = ad_platform(platform)
    fake.set_day(DAY, [wire_row(platform, DAY, "1", "2", MONEY[platform][1][0])])
    account = account_for(fake, expires_in=timedelta(seconds=-10))
    fake.refresh_fails = True

    pull = services.ad_day_pull(account=account, day=DAY)

    assert (pull.status, pull.error_kind) == (PullStatus.FAILED, "refresh_token_invalid")
    warning = AdWarning.objects.get(kind=WarningKind.REFRESH_FAILED, resolved_at__isnull=True)
    assert warning.account == account and account.account_id in warning.title
    assert fake.refresh_token not in warning.text and not fake.report_requests()
    assert not AdReportRow.objects.exists()
    # authorised again and refreshed: the warning resolves
    fake.refresh_fails = False
    assert services.ad_day_pull(account=account, day=DAY).status == PullStatus.SUCCEEDED
    warning.refresh_from_db()
    assert warning.resolved_at is not None


def test_refresh_token_about_to_expire_raises_a_warning(ad_platform):
    fake = ad_platform("tencent")
    account = account_for(fake, refresh_expires_at=timezone.now() + timedelta(days=2))
    services.ad_reports_pull(account_ids=[account.pk], start=DAY, end=DAY)
    warning = AdWarning.objects.get(kind=WarningKind.REFRESH_TOKEN_EXPIRING)
    assert account.account_id in warning.title and warning.resolved_at is None


@pytest.mark.parametrize("platform", PLATFORMS)
def test_rate_limit_answers_are_backed_off_and_retried(ad_platform, platform, ad_settings, monkeypatch):
    fake = ad_platform(platform)
    fake.set_day(DAY, [wire_row(platform, DAY, "1", str(n), MONEY[platform][1][0]) for n in range(3)])
    fake.faults.extend(["rate_limited"] * 3)
    account = account_for(fake)
    slept = []
    monkeypatch.setattr(services, "_sleep", slept.append)

    pull = services.ad_day_pull(account=account, day=DAY)

    assert pull.status == PullStatus.SUCCEEDED, pull.error
    assert pull.requests == 5  # 3 refused + 2 pages
    base = ad_settings.AD_API_BACKOFF_SECONDS
    assert slept == [base, base * 2, base * 4]  # exponential backoff
    assert len(stored(account)) == 3


def test_rate_limit_that_never_ends_gives_up_and_changes_nothing(ad_platform, ad_settings):
    ad_settings.AD_API_RATE_LIMIT_RETRIES = 2
    fake = ad_platform("kuaishou")
    fake.set_day(DAY, [wire_row("kuaishou", DAY, "1", "2", 1.5)])
    fake.faults.extend(["rate_limited"] * 10)
    pull = services.ad_day_pull(account=account_for(fake), day=DAY)
    assert (pull.status, pull.error_kind, pull.requests) == (PullStatus.FAILED, "rate_limited", 3)
    assert not AdReportRow.objects.exists()


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_day_pulled_again_with_changed_figures_replaces_the_old_ones(ad_platform, platform):
    fake = ad_platform(platform)
    money = MONEY[platform]
    fake.set_day(
        DAY,
        [
            wire_row(platform, DAY, "1", "10", money[0][0], clicks=5, conversions=1),
            wire_row(platform, DAY, "1", "11", money[1][0], clicks=6),
            wire_row(platform, DAY, "2", "12", money[2][0], clicks=7),
        ],
    )
    account = account_for(fake)
    first = services.ad_day_pull(account=account, day=DAY)
    assert first.created == 3
    # late conversions on 10, a refund of invalid clicks removes 12, a new ad 13 appears
    fake.set_day(
        DAY,
        [
            wire_row(platform, DAY, "1", "10", money[0][0], clicks=5, conversions=4),
            wire_row(platform, DAY, "1", "11", money[1][0], clicks=6),
            wire_row(platform, DAY, "2", "13", money[4][0], clicks=9),
        ],
    )

    second = services.ad_day_pull(account=account, day=DAY)

    assert (second.created, second.updated, second.deleted) == (1, 1, 1)
    assert second.cost_fen_before == money[0][1] + money[1][1] + money[2][1]
    assert second.cost_fen_after == money[0][1] + money[1][1] + money[4][1]
    assert stored(account) == {
        "10": ("1", money[0][1], 0, 5, 4),
        "11": ("1", money[1][1], 0, 6, 0),
        "13": ("2", money[4][1], 0, 9, 0),
    }
    # the same figures again: nothing changes
    third = services.ad_day_pull(account=account, day=DAY)
    assert (third.created, third.updated, third.deleted, third.changed) == (0, 0, 0, False)


@pytest.mark.parametrize("fault", ["5xx", "garbage", "no_code"])
@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_failing_page_is_retried_and_a_failed_day_is_recorded_with_nothing_half_written(
    ad_platform, ad_settings, platform, fault
):
    fake = ad_platform(platform)
    money = MONEY[platform]
    old = [wire_row(platform, DAY, "1", str(n), money[n][0], clicks=n) for n in range(4)]
    fake.set_day(DAY, old)
    account = account_for(fake)
    services.ad_day_pull(account=account, day=DAY)
    before = stored(account)
    new = [wire_row(platform, DAY, "1", str(n), money[4][0], clicks=100 + n) for n in range(5)]
    fake.set_day(DAY, new)

    # page 2 of 3 fails on every attempt: the day stays as it was, the failure is recorded
    fake.page_faults[2] = [fault] * (ad_settings.AD_API_RETRIES + 1)
    failed = services.ad_day_pull(account=account, day=DAY)
    assert failed.status == PullStatus.FAILED
    assert failed.error_kind == ("unavailable" if fault == "5xx" else "bad_response")
    assert failed.requests == 1 + ad_settings.AD_API_RETRIES + 1  # page 1 fine, page 2 every try
    assert stored(account) == before
    warning = AdWarning.objects.get(kind=WarningKind.PULL_FAILED, account=account)
    assert warning.resolved_at is None and str(DAY) in warning.title
    account.refresh_from_db()
    assert account.last_error

    # a page that fails once is retried and the whole new day lands
    fake.page_faults[2] = [fault]
    pulled = services.ad_day_pull(account=account, day=DAY)
    assert pulled.status == PullStatus.SUCCEEDED, pulled.error
    assert stored(account) == {str(n): ("1", money[4][1], 0, 100 + n, 0) for n in range(5)}
    warning.refresh_from_db()
    assert warning.resolved_at is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"cost": -5},
        {"cost": 12.5},
        {"cost": "12"},
        {"cost": True},
        {"valid_click_count": -1},
        {"adgroup_id": None},
        {"date": "2026-11-21"},  # a row of another day
    ],
)
def test_rows_outside_the_contract_fail_the_day(ad_platform, bad):
    fake = ad_platform("tencent")
    row = {**wire_row("tencent", DAY, "1", "2", 100), **bad}
    fake.set_day(DAY, [wire_row("tencent", DAY, "1", "3", 100)])
    fake.rows[DAY.isoformat()].append(row)
    pull = services.ad_day_pull(account=account_for(fake), day=DAY)
    assert (pull.status, pull.error_kind) == (PullStatus.FAILED, "bad_response")
    assert not AdReportRow.objects.exists()


def test_yuan_conversion_is_decimal_exact():
    from adreports.clients.base import ApiError, yuan_to_fen

    assert yuan_to_fen("0.29") == 29
    assert yuan_to_fen(Decimal("1234567.89")) == 123456789
    assert yuan_to_fen("99999999999.99") == 9999999999999
    assert yuan_to_fen(Decimal("1.005")) == 101
    for bad in ("abc", "-1", "NaN", "Infinity", 0.29, None, True):
        with pytest.raises(ApiError):
            yuan_to_fen(bad)


def test_secrets_are_encrypted_at_rest_and_never_in_errors(ad_platform, ad_settings):
    from tests.payments.fakes import closed_port_url

    fake = ad_platform("tencent")
    account = account_for(fake)
    raw = AdAccount.objects.filter(pk=account.pk).values("app_secret_enc", "access_token_enc", "refresh_token_enc")[0]
    for value in raw.values():
        assert value and fake.access_token not in value and fake.secret not in value and fake.refresh_token not in value
    assert crypto.decrypt(raw["access_token_enc"]) == fake.access_token
    # nothing listens: the error names the host, never the URL with its access_token
    ad_settings.AD_API_TENCENT_URL = closed_port_url()
    pull = services.ad_day_pull(account=account, day=DAY)
    assert pull.status == PullStatus.FAILED and pull.error_kind == "unavailable"
    for text in (
        pull.error,
        AdWarning.objects.get(account=account).text,
        AdAccount.objects.get(pk=account.pk).last_error,
    ):
        assert fake.access_token not in text and "access_token" not in text


def test_pull_job_pulls_every_active_account_for_the_last_days(ad_platform, ad_settings):
    ad_settings.AD_REPORTS_CONCURRENCY = 1  # threads pull on their own connections: see test_concurrency
    fakes = [ad_platform(p) for p in PLATFORMS]
    today = timezone.localdate()
    for fake in fakes:
        for n in range(7):
            day = today - timedelta(days=n)
            fake.set_day(day, [wire_row(fake.platform, day, "1", "2", MONEY[fake.platform][1][0])])
    accounts = [account_for(fake) for fake in fakes]
    AdAccount.objects.filter(pk=accounts[2].pk).update(active=False)

    pulls = services.ad_reports_pull()

    assert len(pulls) == 14 and all(p.status == PullStatus.SUCCEEDED for p in pulls)
    assert {p.account_id for p in pulls} == {accounts[0].pk, accounts[1].pk}
    assert {p.day for p in pulls} == {today - timedelta(days=n) for n in range(7)}
    assert AdReportRow.objects.count() == 14
    assert AdPull.objects.count() == 14
