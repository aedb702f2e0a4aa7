"""Ad accounts in the admin: secrets pasted once and masked, the OAuth callback,
warnings shown, the analyst group reading only; and the pull command."""

from __future__ import annotations

from datetime import date
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from adreports import crypto
from adreports.alerting import ad_alert_raise
from adreports.models import AdAccount, AdReportRow, WarningKind
from core.services import ANALYST_GROUP
from tests.adreports.conftest import account_for
from tests.adreports.fakes import wire_row

pytestmark = pytest.mark.django_db
DAY = date(2026, 11, 20)


@pytest.fixture
def boss():
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-for-tests-2026")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def analyst(staff_client):
    return staff_client(ANALYST_GROUP)


def test_secrets_are_pasted_once_stored_encrypted_and_shown_masked(boss):
    response = boss.post(
        "/admin/adreports/adaccount/add/",
        {
            "platform": "oceanengine",
            "account_id": "1700000000009",
            "name": "iOS 拉新",
            "app_id": "1001",
            "active": "on",
            "app_secret": "app-secret-0123456789",
            "access_token": "access-token-ABCDEFGH1234",
            "refresh_token": "refresh-token-ZYXW9876",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    account = AdAccount.objects.get(account_id="1700000000009")
    assert crypto.decrypt(account.access_token_enc) == "access-token-ABCDEFGH1234"
    assert "access-token" not in account.access_token_enc
    page = boss.get(f"/admin/adreports/adaccount/{account.pk}/change/").content.decode()
    for secret in ("app-secret-0123456789", "access-token-ABCDEFGH1234", "refresh-token-ZYXW9876"):
        assert secret not in page
    assert "••••1234" in page and "••••9876" in page
    # saving without re-typing a secret keeps it; typing one replaces it
    response = boss.post(
        f"/admin/adreports/adaccount/{account.pk}/change/",
        {
            "platform": "oceanengine",
            "account_id": "1700000000009",
            "name": "iOS 拉新 2",
            "app_id": "1001",
            "active": "on",
            "access_token": "new-access-token-5555",
        },
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "iOS 拉新 2"
    assert crypto.decrypt(account.access_token_enc) == "new-access-token-5555"
    assert crypto.decrypt(account.refresh_token_enc) == "refresh-token-ZYXW9876"
    assert crypto.decrypt(account.app_secret_enc) == "app-secret-0123456789"


def test_analyst_reads_but_cannot_add_change_or_pull(analyst, ad_platform):
    account = account_for(ad_platform("tencent"))
    assert analyst.get("/admin/adreports/adaccount/").status_code == 200
    assert analyst.get("/admin/adreports/adreportrow/").status_code == 200
    assert analyst.get("/admin/adreports/adaccount/add/").status_code == 403
    response = analyst.post("/admin/adreports/adaccount/", {"action": "pull_now", "_selected_action": [account.pk]})
    assert not AdReportRow.objects.exists() and response.status_code in (200, 302, 403)
    assert analyst.get(f"/adreports/oauth/{account.pk}/start").status_code == 403


def test_open_warnings_show_as_a_banner(boss, ad_platform):
    account = account_for(ad_platform("kuaishou"))
    ad_alert_raise(key="k1", kind=WarningKind.PULL_FAILED, account=account, title=f"{account}: pull failed")
    page = boss.get("/admin/adreports/adreportrow/").content.decode()
    assert f"{account}: pull failed" in page


@pytest.mark.parametrize("platform", ["oceanengine", "tencent", "kuaishou"])
def test_authorisation_callback_exchanges_the_code_for_tokens(boss, ad_platform, platform):
    fake = ad_platform(platform)
    account = account_for(fake)
    AdAccount.objects.filter(pk=account.pk).update(access_token_enc="", refresh_token_enc="")
    start = boss.get(f"/adreports/oauth/{account.pk}/start")
    assert start.status_code == 302
    query = {k: v[0] for k, v in parse_qs(urlsplit(start["Location"]).query).items()}
    assert query["redirect_uri"].endswith(f"/adreports/oauth/{platform}/callback")
    fake.auth_codes.add("code-123")
    param = "authorization_code" if platform == "tencent" else "auth_code"

    forged = boss.get(f"/adreports/oauth/{platform}/callback", {"state": "forged", param: "code-123"})
    assert forged.status_code == 400
    done = boss.get(f"/adreports/oauth/{platform}/callback", {"state": query["state"], param: "code-123"})

    assert done.status_code == 302
    account.refresh_from_db()
    assert crypto.decrypt(account.access_token_enc) == fake.access_token
    assert crypto.decrypt(account.refresh_token_enc) == fake.refresh_token
    # a code is single-use: replaying it fails and keeps the tokens
    again = boss.get(f"/adreports/oauth/{platform}/callback", {"state": query["state"], param: "code-123"}, follow=True)
    assert "refused" in again.content.decode()
    account.refresh_from_db()
    assert crypto.decrypt(account.access_token_enc) == fake.access_token


def test_pull_command_prints_what_changed(ad_platform):
    fake = ad_platform("oceanengine")
    fake.set_day(DAY, [wire_row("oceanengine", DAY, "1", "2", "12.34", clicks=3)])
    account = account_for(fake)
    out = StringIO()
    call_command(
        "ad_reports_pull", "--account", str(account.pk), "--from", "2026-11-19", "--to", "2026-11-20", stdout=out
    )
    text = out.getvalue()
    assert f"{account} 2026-11-20: 1 rows in 1 pages, +1 new, 0 changed, -0 gone; cost ¥0.00 -> ¥12.34" in text
    assert f"{account} 2026-11-19: 0 rows in 1 pages, unchanged" in text
    fake.set_day(DAY, [wire_row("oceanengine", DAY, "1", "2", "15", clicks=3)])
    out = StringIO()
    call_command(
        "ad_reports_pull", "--account", str(account.pk), "--from", "2026-11-20", "--to", "2026-11-20", stdout=out
    )
    assert "0 new, 1 changed, -0 gone; cost ¥12.34 -> ¥15.00" in out.getvalue()
    fake.faults.extend(["5xx"] * 10)
    with pytest.raises(CommandError, match="1 account-days failed"):
        call_command(
            "ad_reports_pull",
            "--account",
            str(account.pk),
            "--from",
            "2026-11-20",
            "--to",
            "2026-11-20",
            stdout=StringIO(),
        )
    with pytest.raises(CommandError, match="after"):
        call_command("ad_reports_pull", "--from", "2026-11-21", "--to", "2026-11-20", stdout=StringIO())
    with pytest.raises(CommandError, match="no ad account"):
        call_command("ad_reports_pull", "--account", "999999", stdout=StringIO())


def test_beat_job_is_scheduled():
    from config.celery import app

    app.loader.import_default_modules()
    app.finalize()
    assert app.conf.beat_schedule["adreports.ad_reports_pull"]["task"] == "adreports.ad_reports_pull"


def test_performance_page_shows_spend_and_roas_to_analysts(analyst, ad_platform):
    fake = ad_platform("tencent")
    today = timezone.localdate()
    fake.set_day(today, [wire_row("tencent", today, "41001", "510001", 123456, clicks=9)])
    account = account_for(fake)
    from adreports import services

    services.ad_day_pull(account=account, day=today)
    listing = analyst.get("/admin/adreports/adreportrow/").content.decode()
    assert "/admin/adreports/adreportrow/performance/" in listing
    page = analyst.get("/admin/adreports/adreportrow/performance/", {"level": "ad"}).content.decode()
    assert "tencent / 25610 / 41001 / 510001" in page and "1,234.56" in page
    for level in ("account", "campaign", "link", "nonsense"):
        assert (
            analyst.get("/admin/adreports/adreportrow/performance/", {"level": level, "from": "x"}).status_code == 200
        )


def test_manual_cost_is_typed_in_yuan_for_a_link(boss):
    from attribution import services as attribution_services

    link = attribution_services.tracking_link_create(
        platform="generic", app_id="com.kuaipao.app", os="ios", campaign_name="合作渠道"
    )
    data = {"link": link.pk, "day": "2026-11-20", "cost_yuan": "500.00", "note": "invoice 42"}
    assert boss.post("/admin/adreports/admanualcost/add/", data).status_code == 302
    from adreports.models import AdManualCost

    cost = AdManualCost.objects.get(link=link)
    assert cost.cost_fen == 50000
    assert "500.00" in boss.get("/admin/adreports/admanualcost/").content.decode()
    page = boss.get(f"/admin/adreports/admanualcost/{cost.pk}/change/").content.decode()
    assert 'name="cost_yuan"' in page and 'value="500.00"' in page and 'name="cost_fen"' not in page
    bad = {**data, "cost_yuan": "1.234"}
    assert boss.post(f"/admin/adreports/admanualcost/{cost.pk}/change/", bad).status_code == 200
    assert AdManualCost.objects.get(link=link).cost_fen == 50000
