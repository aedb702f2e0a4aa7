"""Rollups against the raw rows they came from: across an hour boundary, 5-minute
buckets, late data re-rolled by the beat tick, rebuilds, test devices, retention."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Count, Sum

from analytics import services
from analytics.models import LinkRollup, RollupRun
from attribution import services as attribution_services
from attribution.models import Conversion, ConversionEvent, MatchTrace, Postback
from attribution.models import TestDevice as QaDevice

pytestmark = pytest.mark.django_db

IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
IDFA2 = "1E2DFA89-496A-47FD-9941-DF1FC4E6484A"
IDFA3 = "A1B2C3D4-0000-4000-8000-000000000003"
QA_IDFA = "00000000-0000-4000-8000-0000000000AA"
OAID = "1fe3b0ab-9c1d-4f62-a0e1-c57c0b1d22aa"

COUNTERS = [
    "clicks",
    "repeated_clicks",
    "unkeyed_clicks",
    "rejected_clicks",
    "activations",
    "attributed",
    "organic",
    "reinstalls",
    "test_clicks",
    "test_activations",
    "registers",
    "pays",
    "pay_amount_fen",
    "postbacks_pending",
]


def _rows(minutes: int = 60, **filters) -> dict:
    return {(r.bucket_start, r.link_id, r.os): r for r in LinkRollup.objects.filter(bucket_minutes=minutes, **filters)}


def _totals(minutes: int, start, end) -> dict:
    rows = LinkRollup.objects.filter(bucket_minutes=minutes, bucket_start__gte=start, bucket_start__lt=end)
    return rows.aggregate(**{c: Sum(c) for c in COUNTERS})


def _snapshot() -> list:
    fields = [f.name for f in LinkRollup._meta.concrete_fields if f.name not in ("id", "rolled_at")]
    return sorted(tuple(str(getattr(r, f)) for f in fields) for r in LinkRollup.objects.all())


@pytest.fixture
def scene(traffic, make_link, base_hour):
    """Two links (iOS, Android), traffic on both sides of base_hour + 1 h."""
    ios = make_link("oceanengine", os="ios")
    android = make_link("tencent", os="android")
    quiet = make_link("generic", os="ios", ipua_window_hours=0)
    disabled = make_link("generic", os="ios", enabled=False)
    boundary = base_hour + timedelta(hours=1)
    attribution_services.test_device_save(device=QaDevice(label="QA iPhone", idfa=QA_IDFA))
    # hour 1 (base_hour): 3 clicks on ios (one device twice), 1 on android, 1 unkeyed, rejects
    traffic.click(ios, base_hour + timedelta(minutes=3), idfa=IDFA)
    traffic.click(ios, boundary - timedelta(seconds=10), idfa=IDFA)  # repeated, wins the install
    traffic.click(ios, base_hour + timedelta(minutes=7), idfa=IDFA2)
    traffic.click(android, base_hour + timedelta(minutes=20), oaid=OAID)
    traffic.click(quiet, base_hour + timedelta(minutes=30), ua="", ip="")  # no key at all
    traffic.click(disabled, base_hour + timedelta(minutes=31), status=403)
    traffic.click(ios, base_hour + timedelta(minutes=32), status=404, token="no-such-token")
    traffic.click(ios, base_hour + timedelta(minutes=40), idfa=QA_IDFA)  # test device
    # hour 2: 1 click on ios
    traffic.click(ios, boundary + timedelta(minutes=6), idfa=IDFA3)
    # activations: attributed across the boundary (CTIT 40 s), organic, test device, android
    traffic.activate(boundary + timedelta(seconds=30), idfa=IDFA, user_id="u1")
    traffic.activate(base_hour + timedelta(minutes=50), os="android", oaid=OAID)  # CTIT 30 min
    traffic.activate(base_hour + timedelta(minutes=10), idfa="F0000000-0000-4000-8000-00000000000F")  # organic
    traffic.activate(base_hour + timedelta(minutes=45), idfa=QA_IDFA)  # test device
    traffic.activate(boundary + timedelta(minutes=8), idfa=IDFA3)  # CTIT 2 min
    # deep events of the first conversion, in hour 2
    traffic.deep_event("register", boundary + timedelta(minutes=2), idfa=IDFA)
    traffic.deep_event("pay", boundary + timedelta(minutes=3), idfa=IDFA, amount_fen=1990)
    traffic.deep_event("pay", boundary + timedelta(minutes=4), idfa=IDFA, amount_fen=600)
    return {"ios": ios, "android": android, "quiet": quiet, "disabled": disabled, "boundary": boundary}


def test_hourly_rollups_match_the_raw_rows_on_each_side_of_an_hour_boundary(scene, base_hour):
    ios, android, quiet, disabled, boundary = (scene[k] for k in ("ios", "android", "quiet", "disabled", "boundary"))
    end = (boundary + timedelta(hours=1)).isoformat()
    call_command("analytics_rollup", "--from", base_hour.isoformat(), "--to", end)
    rows = _rows()
    first = rows[(base_hour, ios.id, "ios")]
    assert (first.clicks, first.repeated_clicks, first.unique_devices) == (3, 1, 2)
    assert (first.test_clicks, first.attributed) == (1, 0)
    second = rows[(boundary, ios.id, "ios")]
    assert (second.clicks, second.repeated_clicks, second.unique_devices) == (1, 0, 1)
    assert (second.attributed, second.activations, second.ctit_10_60s, second.ctit_1_10m) == (2, 2, 1, 1)
    assert second.ctit_median_seconds == 40  # median_low of (40, 120)
    assert second.clicks_before_conversions == 3  # 2 clicks of IDFA + 1 of IDFA3
    assert (second.registers, second.pays, second.pay_amount_fen) == (1, 2, 2590)
    assert second.postbacks_pending == 2  # one activation postback per attributed conversion (on_commit not run)
    droid = rows[(base_hour, android.id, "android")]
    assert (droid.clicks, droid.attributed, droid.ctit_10_60m, droid.platform) == (1, 1, 1, "tencent")
    assert rows[(base_hour, quiet.id, "ios")].unkeyed_clicks == 1
    assert rows[(base_hour, disabled.id, "ios")].rejects == {"link_disabled": 1}
    unknown = rows[(base_hour, 0, "")]
    assert (unknown.app_id, unknown.rejected_clicks, unknown.rejects) == ("", 1, {"unknown_link": 1})
    organic = rows[(base_hour, 0, "ios")]
    assert (organic.organic, organic.activations, organic.test_activations) == (1, 1, 0)
    assert first.test_activations == 1  # the QA device clicked the iOS link: attributed, apart

    # every column against the raw rows it came from, per hour
    for start in (base_hour, boundary):
        end = start + timedelta(hours=1)
        totals = _totals(60, start, end)
        conversions = Conversion.objects.filter(activated_at__gte=start, activated_at__lt=end, is_test=False)
        traces = MatchTrace.objects.filter(activated_at__gte=start, activated_at__lt=end)
        events = ConversionEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        assert totals["attributed"] == conversions.count()
        assert totals["organic"] == traces.filter(outcome="organic", is_test=False).count()
        assert totals["test_activations"] == traces.filter(is_test=True).count()
        assert totals["activations"] == traces.filter(is_test=False).count()
        assert totals["registers"] == events.filter(event_type="register").count()
        assert (totals["pay_amount_fen"] or 0) == (events.aggregate(s=Sum("amount_fen"))["s"] or 0)
        assert totals["postbacks_pending"] == Postback.objects.filter(event_time__gte=start, event_time__lt=end).count()
    assert _totals(60, base_hour, boundary)["clicks"] == 5  # 4 keyed + 1 unkeyed; the test device apart
    assert _totals(60, boundary, boundary + timedelta(hours=1))["clicks"] == 1


def test_five_minute_buckets_add_up_to_their_hour(scene, base_hour):
    boundary = scene["boundary"]
    services.rollup_range(start=base_hour, end=boundary + timedelta(hours=1), minutes=5)
    services.rollup_range(start=base_hour, end=boundary + timedelta(hours=1), minutes=60)
    for start in (base_hour, boundary):
        end = start + timedelta(hours=1)
        assert _totals(5, start, end) == _totals(60, start, end)
    five = _rows(5, link_id=scene["ios"].id)
    assert five[(base_hour, scene["ios"].id, "ios")].clicks == 1  # minute 3
    assert five[(base_hour + timedelta(minutes=5), scene["ios"].id, "ios")].clicks == 1  # minute 7
    assert five[(boundary - timedelta(minutes=5), scene["ios"].id, "ios")].repeated_clicks == 1
    assert five[(boundary + timedelta(minutes=5), scene["ios"].id, "ios")].attributed == 1  # minute 8
    assert all(r.unique_devices is None for r in five.values())


def test_a_rebuild_gives_the_same_rows_and_never_duplicates(scene, base_hour):
    window = ("--from", base_hour.isoformat(), "--to", (base_hour + timedelta(hours=2)).isoformat())
    call_command("analytics_rollup", *window)
    first = _snapshot()
    call_command("analytics_rollup", *window)
    assert _snapshot() == first
    dupes = LinkRollup.objects.values("bucket_start", "link_id", "os", "bucket_minutes").annotate(n=Count("id"))
    assert max(d["n"] for d in dupes) == 1
    assert RollupRun.objects.filter(kind="links", bucket_minutes=60).count() == 2


def test_the_tick_rolls_closed_buckets_and_re_rolls_late_data(scene, traffic, base_hour):
    boundary = scene["boundary"]
    now = boundary + timedelta(hours=1, minutes=2)
    services.rollup_tick(now=now)  # first tick: only the last closed bucket of each size
    assert set(RollupRun.objects.filter(kind="links", bucket_minutes=60).values_list("bucket_start", flat=True)) == {
        boundary
    }
    services.rollup_range(start=base_hour, end=boundary)  # backfill by hand
    services.rollup_range(start=base_hour, end=boundary, minutes=5)
    before = _totals(60, base_hour, boundary)
    # late: an activation and a payment of base_hour arrive now
    traffic.activate(base_hour + timedelta(minutes=55), idfa=IDFA2)  # clicked at minute 7
    traffic.deep_event("pay", base_hour + timedelta(minutes=58), idfa=IDFA2, amount_fen=100)
    result = services.rollup_tick(now=now + timedelta(minutes=1))
    assert result == {"rolled": 0, "re_rolled": 2, "purged": 0}  # the hour and its 5-minute bucket (:55)
    after = _totals(60, base_hour, boundary)
    assert _totals(5, base_hour, boundary) == after
    assert after["attributed"] == before["attributed"] + 1
    assert after["pay_amount_fen"] == (before["pay_amount_fen"] or 0) + 100
    assert _rows()[(base_hour, scene["ios"].id, "ios")].ctit_10_60m == 1  # 48 min
    # nothing new: nothing re-rolled
    assert services.rollup_tick(now=now + timedelta(minutes=2))["re_rolled"] == 0


def test_rollups_are_kept_400_days_and_five_minute_rows_shorter(scene, base_hour, settings):
    services.rollup_bucket(start=base_hour, minutes=60)
    services.rollup_bucket(start=base_hour, minutes=5)
    assert services.rollups_purge(now=base_hour + timedelta(days=399)) == 1  # the 5-minute row (35 days)
    assert LinkRollup.objects.filter(bucket_minutes=60).exists()
    assert services.rollups_purge(now=base_hour + timedelta(days=401)) > 0
    assert not LinkRollup.objects.exists()
