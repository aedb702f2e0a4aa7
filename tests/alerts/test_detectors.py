"""Detectors on the 5-minute series with a controllable clock: a week of daily
seasonality raises nothing; an injected per-OS activation drop alerts within 15
minutes, names the OS version that vanished and resolves on recovery; click and
reject spikes on one link name the link; link-level click flooding (hourly series)
names the link."""

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


def _week(
    *, days: int = 7, until: datetime, drop: tuple[datetime, datetime] | None = None, spike=None, reject_spike=None
):
    rng = random.Random(7)
    rejects = random.Random(11)
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
            rejected = rejects.randrange(0, 6)  # bad tokens, rate limits: a few a bucket
            if reject_spike and link_id == 1 and reject_spike[0] <= moment < reject_spike[1]:
                rejected += 150
            rows.append(
                _rollup(moment, link_id=link_id, os=os, clicks=clicks, activations=activations, rejected=rejected)
            )
        moment += timedelta(minutes=5)
    LinkRollup.objects.bulk_create(rows, batch_size=2000)


def test_a_normal_week_with_daily_seasonality_raises_nothing():
    _week(until=TODAY + timedelta(days=1))
    every = [*TRAFFIC_RULES, "source_range_spike", "click_flooding", "postback_failures", "fraud_installs"]
    at = TODAY
    while at < TODAY + timedelta(days=1):
        assert traffic_check(at=at, only=every) == [], at
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
    assert "android:" in finding.text
    assert finding.url.endswith(
        "/admin/analytics/linkrollup/dashboard/?from=2026-11-29&to=2026-11-30&granularity=hour"
        "&app=com.kuaipao.app&os=ios"
    )
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


IOS13 = "Mozilla/5.0 (iPhone; CPU iPhone OS 13_3 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
IOS17 = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def _installs(link, *, around: datetime, days: int, ios13_until: datetime) -> None:
    """Attributed iOS installs every 2 minutes within an hour of `around` on each
    day; two in five come from iOS 13 devices (by their click's user agent) until
    `ios13_until`, when that release stops activating."""
    from attribution.models import Conversion

    rows, n = [], 0
    for day in range(days + 1):
        for minute in range(-30, 30, 2):
            moment = around - timedelta(days=day, minutes=-minute)
            for k in range(5):
                n += 1
                ios13 = k < 2
                if ios13 and moment >= ios13_until:
                    continue
                rows.append(
                    Conversion(
                        link=link,
                        platform="oceanengine",
                        app_id=APP,
                        os="ios",
                        activation_event_id=f"ev-{n}",
                        click_id=f"c-{n}",
                        click_at=moment - timedelta(minutes=20),
                        activated_at=moment,
                        seconds_to_install=1200,
                        match_method="idfa",
                        match_key=f"idfa:{n}",
                        click={"ua": IOS13 if ios13 else IOS17},
                    )
                )
    Conversion.objects.bulk_create(rows, batch_size=1000)


def test_the_ios_drop_names_the_os_version_that_stopped_activating(make_link):
    start = TODAY + timedelta(hours=2)
    _week(until=TODAY + timedelta(hours=4), drop=(start, TODAY + timedelta(hours=3)))
    _installs(make_link("oceanengine"), around=start, days=7, ios13_until=start)
    findings = []
    at = start
    while not findings and at <= start + timedelta(minutes=15):
        findings = traffic_check(at=at, only=["os_activation_drop"])
        at += timedelta(minutes=1)
    (finding,) = findings
    assert finding.labels == {"app": APP, "os": "ios", "os_version": "iOS 13"}
    assert finding.title.endswith("(iOS 13)")
    # fired within the window that still holds a few minutes from before the drop
    assert "OS version: iOS 13: 40% of installs at baseline → " in finding.text
    (later,) = traffic_check(at=start + timedelta(minutes=16), only=["os_activation_drop"])
    assert "OS version: iOS 13: 40% of installs at baseline → 0% now." in later.text
    assert Alert.objects.get().labels["os_version"] == "iOS 13"


def test_os_version_is_read_from_ios_and_android_user_agents():
    from alerts.detectors import os_version

    assert os_version(IOS13) == "13"
    assert os_version("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X)") == "16"
    assert os_version("Mozilla/5.0 (Linux; Android 14; V2227A)") == "14"
    assert os_version("okhttp/4.9") is None and os_version("") is None


def test_a_reject_spike_names_the_link_and_a_normal_week_of_rejects_does_not():
    spike = (TODAY + timedelta(hours=4), TODAY + timedelta(hours=5))
    _week(until=TODAY + timedelta(hours=6), reject_spike=spike)
    assert traffic_check(at=spike[0] - timedelta(minutes=1), only=["reject_spike"]) == []
    (finding,) = traffic_check(at=spike[0] + timedelta(minutes=16), only=["reject_spike"])
    assert finding.rule == "reject_spike" and finding.key == "link 1 (?) ios"
    assert finding.title.startswith("Rejected clicks spike on link 1 (?) ios:")
    assert finding.labels["link"] == "1" and finding.url.endswith("granularity=hour&link=1&os=ios")
    traffic_check(at=spike[1] + timedelta(minutes=20), only=["reject_spike"])
    assert Alert.objects.get().state == "resolved"


def _hours(link_id: int, *, clicks: int, installs: int, long_tail: int) -> list[LinkRollup]:
    hour = TODAY.replace(hour=12)
    return [
        LinkRollup(
            bucket_start=hour - timedelta(hours=h),
            bucket_minutes=60,
            app_id=APP,
            platform="oceanengine",
            link_id=link_id,
            os="android",
            clicks=clicks,
            attributed=installs,
            activations=installs,
            ctit_1_24h=long_tail,
            ctit_10_60s=installs - long_tail,
            rolled_at=hour,
        )
        for h in range(1, 25)
    ]


def test_link_level_click_flooding_names_the_link(make_link):
    flooded, honest = make_link("oceanengine"), make_link("oceanengine")
    LinkRollup.objects.bulk_create(
        _hours(flooded.id, clicks=2000, installs=1, long_tail=1)  # 48,000 clicks, 24 installs, all late
        + _hours(honest.id, clicks=2000, installs=40, long_tail=2)
    )
    (finding,) = traffic_check(at=TODAY.replace(hour=12), only=["click_flooding"])
    assert finding.key == f"link {flooded.id} ({flooded.token})"
    assert finding.fingerprint == f"click_flooding:{flooded.id}"
    assert "48000 clicks, 24 installs (0.050% < 0.10%); 100% of them more than 10 min" in finding.text
    assert finding.labels == {"app": APP, "platform": "oceanengine", "link": str(flooded.id)}


def _rollup(
    moment: datetime, *, link_id: int, os: str, clicks: int, activations: int = 0, app: str = APP, rejected: int = 0
):
    return LinkRollup(
        bucket_start=moment,
        bucket_minutes=5,
        app_id=app,
        platform="oceanengine",
        link_id=link_id,
        os=os,
        clicks=clicks,
        activations=activations,
        attributed=activations,
        rejected_clicks=rejected,
        rolled_at=moment + timedelta(minutes=6),
    )


def test_the_database_sums_each_days_window_per_series_and_leaves_out_buckets_outside_it():
    from alerts.detectors import _series, _window_totals, window_end

    at = TODAY + timedelta(hours=3, minutes=2)  # window: the buckets 02:45, 02:50, 02:55
    end = window_end(at)
    assert end == TODAY + timedelta(hours=3)
    rows = []
    for day, factor in ((0, 1), (1, 10), (3, 100)):
        day_end = end - timedelta(days=day)
        for minutes_before, clicks in ((5, 1), (10, 2), (15, 4), (20, 1000), (0, 2000)):  # 20 and 0: outside
            moment = day_end - timedelta(minutes=minutes_before)
            rows.append(_rollup(moment, link_id=1, os="ios", clicks=clicks * factor, activations=clicks))
            rows.append(_rollup(moment, link_id=2, os="ios", clicks=3, activations=1, app="com.other.app"))
    rows.append(_rollup(end - timedelta(days=2, minutes=5), link_id=1, os="android", clicks=7))
    rows.append(_rollup(end - timedelta(days=15, minutes=5), link_id=1, os="ios", clicks=99))  # beyond 14 days
    hourly = _rollup(end - timedelta(hours=1), link_id=1, os="ios", clicks=5000)
    hourly.bucket_minutes = 60
    LinkRollup.objects.bulk_create([*rows, hourly])

    group, fields = ("link_id", "os"), ("clicks", "activations")
    totals = _window_totals(end=end, minutes=15, days=14, group=group, fields=fields)
    assert sorted(totals) == [
        (0, 1, "ios", 7, 7),
        (0, 2, "ios", 9, 3),
        (1, 1, "ios", 70, 7),
        (1, 2, "ios", 9, 3),
        (2, 1, "android", 7, 0),
        (3, 1, "ios", 700, 7),
        (3, 2, "ios", 9, 3),
    ]
    series, present = _series(totals, days=14, group=group, fields=fields)
    assert series[(1, "ios")]["clicks"] == [7, 70, 0, 700] + [0] * 11
    assert present[(1, "ios")] == {0, 1, 3} and present[(1, "android")] == {2}

    busy = _window_totals(end=end, minutes=15, days=14, group=group, fields=fields, to_day=0, at_least=("clicks", 8))
    assert busy == [(0, 2, "ios", 9, 3)]
    history = _window_totals(
        end=end, minutes=15, days=14, group=("app_id",), fields=("clicks",), from_day=1, link_ids=frozenset({1})
    )
    assert sorted(history) == [(1, APP, 70), (2, APP, 7), (3, APP, 700)]


@pytest.mark.parametrize("filter_max", [500, 0], ids=["history-of-candidate-links", "history-of-every-link"])
def test_a_click_spike_among_busy_links_is_judged_against_each_links_own_history(monkeypatch, filter_max):
    """Only links at or above min_volume now are judged; their history must still be
    read: the busy links are as busy every day and do not fire, the spiking one does."""
    from alerts import detectors

    monkeypatch.setattr(detectors, "_LINK_FILTER_MAX", filter_max)
    at = TODAY + timedelta(hours=3, minutes=2)
    end = detectors.window_end(at)
    rng = random.Random(5)
    rows = []
    for day in range(8):
        for b in range(1, 4):
            moment = end - timedelta(days=day, minutes=5 * b)
            for link_id in range(1, 41):
                busy = link_id <= 5
                clicks = rng.randrange(150, 170) if busy else rng.randrange(5, 15)
                if link_id == 7 and day == 0:
                    clicks = 400  # 1,200 in the window against ~30
                rows.append(_rollup(moment, link_id=link_id, os="android", clicks=clicks))
    LinkRollup.objects.bulk_create(rows)
    (finding,) = traffic_check(at=at, only=["click_spike"])
    assert finding.key == "link 7 (?) android" and finding.value == 1200
    assert 15 <= finding.baseline <= 45
