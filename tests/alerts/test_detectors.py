"""Detectors on the 5-minute series with a controllable clock: a week of daily
seasonality raises nothing; an injected per-OS activation drop alerts within 15
minutes and resolves on recovery; a click spike on one link names the link."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from alerts.checks import traffic_check
from alerts.models import Alert
from analytics.models import LinkRollup

pytestmark = pytest.mark.django_db
TODAY = datetime(2026, 11, 30, tzinfo=UTC)
TRAFFIC_RULES = ["os_activation_drop", "click_spike", "reject_spike"]
APP = "com.kuaipao.app"


def _clicks(moment: datetime, os: str) -> float:
    """Daily seasonality: quiet at night, peaks in the evening (Beijing time)."""
    hour = (moment.hour + 8) % 24 + moment.minute / 60
    return (600 if os == "ios" else 900) * (0.25 + 0.75 * (1 + math.sin((hour - 14) / 24 * 2 * math.pi)) / 2)


def _week(*, days: int = 7, until: datetime, drop: tuple[datetime, datetime] | None = None, spike=None):
    rng = random.Random(7)
    rows = []
    moment = TODAY - timedelta(days=days)
    while moment < until:
        day_factor = {5: 0.85, 6: 0.8}.get(moment.weekday(), 1.0)
        for link_id, os in ((1, "ios"), (2, "android")):
            clicks = max(0, int(_clicks(moment, os) * day_factor * rng.uniform(0.85, 1.15)))
            activations = int(clicks * 0.12 * rng.uniform(0.85, 1.15))
            if drop and os == "ios" and drop[0] <= moment < drop[1]:
                activations = int(activations * 0.1)
            if spike and link_id == 2 and spike[0] <= moment < spike[1]:
                clicks *= 8
            rows.append(
                LinkRollup(
                    bucket_start=moment,
                    bucket_minutes=5,
                    app_id=APP,
                    platform="oceanengine",
                    link_id=link_id,
                    os=os,
                    clicks=clicks,
                    activations=activations,
                    attributed=activations,
                    rolled_at=moment + timedelta(minutes=6),
                )
            )
        moment += timedelta(minutes=5)
    LinkRollup.objects.bulk_create(rows, batch_size=2000)


def test_a_normal_week_with_daily_seasonality_raises_nothing():
    _week(until=TODAY + timedelta(days=1))
    at = TODAY
    while at < TODAY + timedelta(days=1):
        assert traffic_check(at=at, only=TRAFFIC_RULES) == [], at
        at += timedelta(minutes=20)
    assert not Alert.objects.exists()


def test_injected_ios_activation_drop_alerts_within_15_minutes_and_resolves_on_recovery():
    start, end = TODAY + timedelta(hours=2), TODAY + timedelta(hours=3)  # 10:00–11:00 Beijing
    _week(until=TODAY + timedelta(hours=5), drop=(start, end))
    fired_at = None
    at = start
    while at <= start + timedelta(minutes=15):
        findings = traffic_check(at=at, only=TRAFFIC_RULES)
        if findings:
            fired_at = at
            break
        at += timedelta(minutes=1)
    assert fired_at is not None and fired_at - start <= timedelta(minutes=15)
    (finding,) = findings
    assert finding.rule == "os_activation_drop" and finding.labels == {"app": APP, "os": "ios"}
    assert "iOS activations down" in finding.title and "Clicks of iOS normal" in finding.text
    assert "android:" in finding.text and "/admin/analytics/linkrollup/?" in finding.url
    alert = Alert.objects.get()
    assert alert.state == "firing" and alert.baseline > alert.value
    for minutes in range(1, 40, 5):  # still dropped: the same alert, never a second one
        traffic_check(at=fired_at + timedelta(minutes=minutes), only=TRAFFIC_RULES)
    assert Alert.objects.count() == 1
    traffic_check(at=end + timedelta(minutes=20), only=TRAFFIC_RULES)  # recovered
    alert.refresh_from_db()
    assert alert.state == "resolved" and alert.ends_at == end + timedelta(minutes=20)


def test_a_click_spike_names_the_link_and_traffic_check_prints_it():
    spike = (TODAY + timedelta(hours=4), TODAY + timedelta(hours=5))
    _week(until=TODAY + timedelta(hours=6), spike=spike)
    out = StringIO()
    call_command(
        "traffic_check", "--at", (spike[0] + timedelta(minutes=16)).isoformat(), "--rule", "click_spike", stdout=out
    )
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("click_spike\twarning\tlink 2 (?) android")
    assert Alert.objects.get().rule == "click_spike"


def test_a_quiet_series_below_the_minimum_volume_never_fires():
    _week(until=TODAY + timedelta(hours=5), drop=(TODAY + timedelta(hours=2), TODAY + timedelta(hours=3)))
    from alerts.models import AlertRule

    AlertRule.objects.create(key="os_activation_drop", name="drop", severity="critical", params={"min_volume": 10_000})
    assert traffic_check(at=TODAY + timedelta(hours=2, minutes=20), only=TRAFFIC_RULES) == []
