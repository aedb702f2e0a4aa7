"""Their figures joined with ours per account, campaign, ad and tracking link, and
the discrepancies between them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from adreports import selectors, services
from adreports.models import AdDiscrepancy, AdManualCost, AdWarning, Metric, WarningKind
from attribution import clicks
from attribution import services as attribution_services
from attribution.models import Conversion, ConversionEvent, Postback
from tests.adreports.conftest import account_for
from tests.adreports.fakes import wire_row

pytestmark = pytest.mark.django_db
ACCOUNT, CAMPAIGN, AD_A, AD_B = "1700000000001", "7300000001", "7300000101", "7300000102"


def link_for(platform: str, name: str):
    link = attribution_services.tracking_link_create(
        platform=platform, app_id="com.kuaipao.app", os="ios", campaign_name=name
    )
    attribution_services.tracking_link_sync(link=link)
    return link


def click(link, *, ad: str, account: str = ACCOUNT, campaign: str = CAMPAIGN, n: int = 1) -> None:
    for i in range(n):
        query = urlencode(
            {"account": account, "campaign": campaign, "ad": ad, "ip": f"203.0.113.{i % 250}", "ua": "UA", "os": "1"}
        )
        status, _ = clicks.click_handle(platform=link.platform, token=link.token, query=query, source_ip="127.0.0.1")
        assert status == 200


def install(link, *, ad: str, postback: str | None = "succeeded", paid_fen: int | None = None, test=False) -> None:
    now = timezone.now()
    conversion = Conversion.objects.create(
        link=link,
        platform=link.platform,
        app_id=link.app_id,
        os="ios",
        activation_event_id=uuid.uuid4().hex,
        click_id=uuid.uuid4().hex[:20],
        click_at=now - timedelta(minutes=5),
        activated_at=now,
        seconds_to_install=300,
        match_method="idfa",
        match_key="idfa:x",
        click={"account": ACCOUNT, "campaign": CAMPAIGN, "ad": ad},
        is_test=test,
    )
    if postback:
        Postback.objects.create(
            conversion=conversion,
            event_type="activate",
            source_event_id=uuid.uuid4().hex,
            event_time=now,
            status=postback,
        )
    if paid_fen:
        ConversionEvent.objects.create(
            conversion=conversion, event_type="pay", event_id=uuid.uuid4().hex, occurred_at=now, amount_fen=paid_fen
        )


@pytest.fixture
def scene(ad_platform):
    """Ocean Engine account with ads A and B today; our link sees clicks, installs and pays."""
    today = timezone.localdate()
    fake = ad_platform("oceanengine")
    fake.set_day(
        today,
        [
            wire_row("oceanengine", today, CAMPAIGN, AD_A, "300.00", impressions=9000, clicks=40, conversions=6),
            wire_row("oceanengine", today, CAMPAIGN, AD_B, "100.50", impressions=3000, clicks=10, conversions=1),
        ],
    )
    account = account_for(fake, account_id=ACCOUNT)
    assert services.ad_day_pull(account=account, day=today).status == "succeeded"
    link = link_for("oceanengine", "iOS 拉新")
    click(link, ad=AD_A, n=38)
    click(link, ad=AD_B, n=10)
    for _ in range(4):
        install(link, ad=AD_A)
    install(link, ad=AD_A, postback="failed", paid_fen=990)
    install(link, ad=AD_A, paid_fen=4500)
    install(link, ad=AD_B, postback=None)
    install(link, ad=AD_A, test=True, paid_fen=100000)  # the team's test device: never counted
    return today, account, link


def test_ad_figures_join_theirs_with_ours(scene):
    today, _, _ = scene
    by_ad = {f.key: f for f in selectors.ad_performance(start=today, end=today, level="ad")}
    a = by_ad[("oceanengine", ACCOUNT, CAMPAIGN, AD_A)]
    assert (a.cost_fen, a.impressions, a.their_clicks, a.our_clicks) == (30000, 9000, 40, 38)
    assert (a.their_conversions, a.installs, a.postbacks_succeeded) == (6, 6, 5)
    assert a.revenue_fen == 990 + 4500
    assert a.cost_per_install_fen == 5000
    assert a.roas == Decimal("0.18")  # 5490 / 30000
    b = by_ad[("oceanengine", ACCOUNT, CAMPAIGN, AD_B)]
    assert (b.cost_fen, b.our_clicks, b.installs, b.postbacks_succeeded, b.revenue_fen) == (10050, 10, 1, 0, 0)
    assert b.roas == Decimal("0.00") and b.cost_per_install_fen == 10050
    campaign = selectors.ad_performance(start=today, end=today, level="campaign")
    assert [(f.key, f.cost_fen, f.our_clicks, f.installs, f.revenue_fen) for f in campaign] == [
        (("oceanengine", ACCOUNT, CAMPAIGN), 40050, 48, 7, 5490)
    ]
    account = selectors.ad_performance(start=today, end=today, level="account")
    assert [(f.key, f.their_conversions, f.postbacks_succeeded) for f in account] == [(("oceanengine", ACCOUNT), 7, 5)]
    # another day has nothing of either side
    assert selectors.ad_performance(start=today - timedelta(days=3), end=today - timedelta(days=2)) == []


def test_link_figures_include_the_ads_seen_on_the_link_and_manual_cost(scene):
    today, _, link = scene
    other = link_for("generic", "合作渠道")
    AdManualCost.objects.create(link=other, day=today, cost_fen=12345)
    rows = {f.key: f for f in selectors.link_performance(start=today, end=today)}
    mine = rows[(link.pk,)]
    assert (mine.cost_fen, mine.their_clicks, mine.our_clicks, mine.installs, mine.revenue_fen) == (
        40050,
        50,
        48,
        7,
        5490,
    )
    assert rows[(other.pk,)].spend_fen == 12345 and rows[(other.pk,)].installs == 0


def test_discrepancies_beyond_tolerance_are_listed_and_large_ones_alert(scene, settings):
    today, account, _ = scene
    settings.AD_DISCREPANCY_MIN_COUNT = 5
    settings.AD_DISCREPANCY_TOLERANCE_PERCENT = 10
    settings.AD_DISCREPANCY_ALERT_PERCENT = 25
    found = services.discrepancies_refresh(day=today)
    # clicks 50 vs 48 (4%): within tolerance; conversions 7 vs 5 postbacks (28.6%): large
    assert [(d.metric, d.theirs, d.ours, d.difference_percent, d.large) for d in found] == [
        (Metric.CONVERSIONS, 7, 5, Decimal("28.6"), True)
    ]
    assert list(selectors.discrepancies(day=today)) == list(AdDiscrepancy.objects.all())
    warning = AdWarning.objects.get(kind=WarningKind.DISCREPANCY)
    assert account.account_id in warning.title and warning.resolved_at is None
    # a wider tolerance: listed no more, the alert resolves
    settings.AD_DISCREPANCY_TOLERANCE_PERCENT = 30
    settings.AD_DISCREPANCY_ALERT_PERCENT = 50
    assert services.discrepancies_refresh(day=today) == []
    assert not AdDiscrepancy.objects.exists()
    warning.refresh_from_db()
    assert warning.resolved_at is not None
    # small numbers are not compared
    settings.AD_DISCREPANCY_TOLERANCE_PERCENT = 1
    settings.AD_DISCREPANCY_MIN_COUNT = 100
    assert services.discrepancies_refresh(day=today) == []


def test_the_pull_job_checks_the_pulled_days(scene, settings):
    today, account, _ = scene
    settings.AD_DISCREPANCY_MIN_COUNT = 5
    settings.AD_DISCREPANCY_TOLERANCE_PERCENT = 1
    services.ad_reports_pull(account_ids=[account.pk], start=today, end=today)
    assert set(AdDiscrepancy.objects.values_list("metric", flat=True)) == {Metric.CLICKS, Metric.CONVERSIONS}


def test_clicks_count_per_link_and_platform_ids(scene):
    today, _, link = scene
    counts = selectors.our_clicks(start=today, end=today)
    assert counts == {
        (link.pk, "oceanengine", ACCOUNT, CAMPAIGN, AD_A): 38,
        (link.pk, "oceanengine", ACCOUNT, CAMPAIGN, AD_B): 10,
    }
