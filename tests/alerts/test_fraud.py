"""Fraud rules at attribution time: clicks through the real click door, activations
through attribution's matching service; rejected installs are kept, never posted
back, and posted back once when an operator releases them."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest

from alerts import fraud
from alerts.models import FraudRuleChange
from attribution import services
from attribution.models import Conversion, Postback
from core.errors import Conflict, DomainError
from tests.attribution.conftest import SHANGHAI, click_params

pytestmark = pytest.mark.django_db
IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"


def _click(client, link, base_url, **device):
    params = click_params(link.platform, base_url, os=link.os, **device)
    assert client.get(f"/t/{link.platform}/{link.token}?{urlencode(params)}").status_code == 200
    return params


def _activate(*, after_seconds: float, ip: str = "198.51.100.20", idfa: str = IDFA):
    return services.activation_record(
        event_id=f"ev-{idfa}-{after_seconds}-{ip}",
        app_id="com.kuaipao.app",
        os="ios",
        user_id=None,
        device={"idfa": idfa},
        ip=ip,
        ua="okhttp/4.9",
        occurred_at=datetime.now(tz=SHANGHAI) + timedelta(seconds=after_seconds),
    )


def test_click_injection_is_flagged_by_default_and_still_posted_back(client, make_link, ad_platform):
    link = make_link("oceanengine")
    _click(client, link, ad_platform.url, idfa=IDFA)
    outcome = _activate(after_seconds=3)
    conversion = outcome.conversion
    assert (conversion.fraud_status, conversion.fraud_rule) == ("flagged", "injection")
    assert "< 10 s" in conversion.fraud_reason
    assert Postback.objects.filter(conversion=conversion).count() == 1
    assert "fraud rule injection" in outcome.trace.reason


def test_no_rule_hits_an_ordinary_install(client, make_link, ad_platform):
    link = make_link("oceanengine")
    _click(client, link, ad_platform.url, idfa=IDFA)
    conversion = _activate(after_seconds=600).conversion
    assert conversion.fraud_status == "" and conversion.fraud_rule == ""


def test_rejected_injection_is_kept_not_posted_back_and_released_once(client, make_link, ad_platform, admin_user):
    fraud.fraud_rule_set(kind="injection", app_id="com.kuaipao.app", mode="reject", user=admin_user)
    link = make_link("oceanengine")
    _click(client, link, ad_platform.url, idfa=IDFA)
    conversion = _activate(after_seconds=2).conversion
    assert conversion.fraud_status == "rejected"
    assert not Postback.objects.filter(conversion=conversion).exists()
    # visible: the admin's list filtered to rejected installs shows it
    client.force_login(admin_user)
    page = client.get("/admin/attribution/conversion/?fraud_status__exact=rejected")
    assert page.status_code == 200 and f">{conversion.pk}<" in page.content.decode()
    # released by an operator through the admin action: posted back once
    response = client.post(
        "/admin/attribution/conversion/",
        {"action": "release", "_selected_action": [conversion.pk]},
    )
    assert response.status_code == 302
    conversion.refresh_from_db()
    assert (conversion.fraud_status, conversion.released_by) == ("released", admin_user.username)
    assert Postback.objects.filter(conversion=conversion).count() == 1
    with pytest.raises(Conflict):
        services.conversion_release(conversion=conversion, released_by="x")
    assert Postback.objects.filter(conversion=conversion).count() == 1


def test_click_flooding_device_clicking_like_a_machine(client, make_link, ad_platform):
    fraud.fraud_rule_set(kind="flooding", mode="flag", params={"max_clicks_per_device": 5})
    link = make_link("oceanengine")
    for _ in range(8):
        _click(client, link, ad_platform.url, idfa=IDFA)
    conversion = _activate(after_seconds=900).conversion
    assert (conversion.fraud_status, conversion.fraud_rule) == ("flagged", "flooding")
    fraud.fraud_rule_set(kind="flooding", mode="reject", params={"max_clicks_per_device": 5})
    other = "1E2DFA89-496A-47FD-9941-DF1FC4E6484A"
    for _ in range(8):
        _click(client, link, ad_platform.url, idfa=other)
    rejected = _activate(after_seconds=900, idfa=other).conversion
    assert rejected.fraud_status == "rejected" and not Postback.objects.filter(conversion=rejected).exists()


def _hourly(link, *, clicks: int, installs: int) -> None:
    from django.utils import timezone

    from analytics.models import LinkRollup

    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    LinkRollup.objects.bulk_create(
        LinkRollup(
            bucket_start=hour - timedelta(hours=h),
            bucket_minutes=60,
            app_id=link.app_id,
            platform=link.platform,
            link_id=link.id,
            os=link.os,
            clicks=clicks,
            attributed=installs,
            rolled_at=hour,
        )
        for h in range(1, 24)
    )


def test_link_level_flooding_long_tail_install_on_a_link_converting_almost_nothing(client, make_link, ad_platform):
    flooded = make_link("oceanengine")
    _hourly(flooded, clicks=5000, installs=1)  # 0.02% of clicks install
    _click(client, flooded, ad_platform.url, idfa=IDFA)
    conversion = _activate(after_seconds=26 * 3600).conversion
    assert (conversion.fraud_status, conversion.fraud_rule) == ("flagged", "flooding")
    assert conversion.fraud_reason == "install 26 h after the click on a link converting 0.0200% of clicks (< 0.10%)"
    # the same long tail on a link that converts normally is an ordinary late install
    honest = make_link("oceanengine", campaign_name="honest")
    _hourly(honest, clicks=5000, installs=100)
    other = "1E2DFA89-496A-47FD-9941-DF1FC4E6484A"
    _click(client, honest, ad_platform.url, idfa=other)
    assert _activate(after_seconds=26 * 3600, idfa=other).conversion.fraud_status == ""
    # in reject mode it is kept and not posted back
    fraud.fraud_rule_set(kind="flooding", mode="reject")
    third = "2E2DFA89-496A-47FD-9941-DF1FC4E6484B"
    _click(client, flooded, ad_platform.url, idfa=third)
    rejected = _activate(after_seconds=26 * 3600, idfa=third).conversion
    assert rejected.fraud_status == "rejected" and not Postback.objects.filter(conversion=rejected).exists()


def test_deny_listed_click_address_is_rejected_by_default(client, make_link, ad_platform):
    fraud.fraud_rule_set(kind="denylist", mode="reject", params={"cidrs": ["203.0.113.0/24"]})
    link = make_link("oceanengine")
    _click(client, link, ad_platform.url, idfa=IDFA, ip="203.0.113.77")
    conversion = _activate(after_seconds=900).conversion
    assert (conversion.fraud_status, conversion.fraud_rule) == ("rejected", "denylist")
    assert "203.0.113.0/24" in conversion.fraud_reason
    assert not Postback.objects.filter(conversion=conversion).exists()


def test_mode_off_judges_nothing_and_changes_are_audited(client, make_link, ad_platform, admin_user):
    fraud.fraud_rule_set(kind="injection", mode="off", user=admin_user)
    link = make_link("oceanengine")
    _click(client, link, ad_platform.url, idfa=IDFA)
    assert _activate(after_seconds=1).conversion.fraud_status == ""
    change = FraudRuleChange.objects.get()
    assert (change.kind, change.changed_by, change.before, change.after["mode"]) == ("injection", admin_user, {}, "off")
    with pytest.raises(DomainError):
        fraud.fraud_rule_set(kind="denylist", mode="reject", params={"cidrs": ["not-a-range"]})
    with pytest.raises(DomainError):
        fraud.fraud_rule_set(kind="injection", mode="sometimes")
    assert Conversion.objects.count() == 1 and FraudRuleChange.objects.count() == 1
