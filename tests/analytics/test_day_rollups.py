"""Day rollups (bucket_minutes 1440, local days in TIME_ZONE) against the hourly rows
they are summed from and the raw rows behind those: across a local midnight, with late
data re-rolled by the tick, and a rebuild; the dashboard's day and hour views agree."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time, timedelta

import pytest
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from analytics import services
from analytics.dashboard import DashboardFilters, dashboard_data
from analytics.models import LinkRollup, RollupRun
from analytics.selectors import local_day_bounds
from attribution.models import Conversion, ConversionEvent, MatchTrace

pytestmark = pytest.mark.django_db

IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
IDFA2 = "1E2DFA89-496A-47FD-9941-DF1FC4E6484A"
IDFA3 = "A1B2C3D4-0000-4000-8000-000000000003"
OAID = "1fe3b0ab-9c1d-4f62-a0e1-c57c0b1d22aa"
GROUP = ("app_id", "platform", "link_id", "os")


@pytest.fixture
def midnight() -> datetime:
    """The latest local midnight at least two hours ago (so both hours around it are closed)."""
    now = timezone.localtime()
    at = datetime.combine(now.date(), time.min, tzinfo=now.tzinfo)
    return at if now - at >= timedelta(hours=2) else at - timedelta(days=1)


@pytest.fixture
def night(traffic, make_link, midnight):
    """Traffic in the last local hour of one day and the first of the next."""
    ios = make_link("oceanengine", os="ios")
    android = make_link("tencent", os="android")
    disabled = make_link("generic", os="ios", enabled=False)
    before = midnight - timedelta(hours=1)
    traffic.click(ios, before + timedelta(minutes=5), idfa=IDFA)
    traffic.click(ios, before + timedelta(minutes=6), idfa=IDFA)  # repeated
    traffic.click(ios, before + timedelta(minutes=20), idfa=IDFA2)
    traffic.click(android, before + timedelta(minutes=30), oaid=OAID)
    traffic.click(disabled, before + timedelta(minutes=31), status=403)
    traffic.click(ios, midnight + timedelta(minutes=2), idfa=IDFA3)
    traffic.click(disabled, midnight + timedelta(minutes=3), status=403)
    traffic.activate(midnight - timedelta(minutes=20), idfa=IDFA, user_id="u1")  # day 1, CTIT 14 min
    traffic.activate(midnight + timedelta(minutes=10), os="android", oaid=OAID)  # day 2, across midnight
    traffic.activate(midnight + timedelta(minutes=15), idfa="F0000000-0000-4000-8000-00000000000F")  # organic
    traffic.deep_event("register", midnight - timedelta(minutes=10), idfa=IDFA)
    traffic.deep_event("pay", midnight + timedelta(minutes=1), idfa=IDFA, amount_fen=1990)
    return {"ios": ios, "android": android, "disabled": disabled, "before": before}


def _summed_hours(day) -> dict:
    """The hourly rows of a local day summed per group, every additive column; rejects merged."""
    start, end = local_day_bounds(day)
    sums: dict = defaultdict(lambda: defaultdict(int))
    for row in LinkRollup.objects.filter(bucket_minutes=60, bucket_start__gte=start, bucket_start__lt=end):
        total = sums[tuple(getattr(row, k) for k in GROUP)]
        for column in services.DAY_SUM_FIELDS:
            total[column] += getattr(row, column)
        for reason, n in row.rejects.items():
            total[f"rejects:{reason}"] += n
    return {group: dict(columns) for group, columns in sums.items()}


def _day_rows(day) -> dict:
    start, _ = local_day_bounds(day)
    out = {}
    for row in LinkRollup.objects.filter(bucket_minutes=1440, bucket_start=start):
        columns = {column: getattr(row, column) for column in services.DAY_SUM_FIELDS}
        columns.update({f"rejects:{reason}": n for reason, n in row.rejects.items()})
        assert (row.unique_devices, row.ctit_median_seconds) == (None, None)  # they do not add up
        out[tuple(getattr(row, k) for k in GROUP)] = {k: v for k, v in columns.items() if v or ":" in k}
    return out


def _nonzero(summed: dict) -> dict:
    return {group: {k: v for k, v in columns.items() if v or ":" in k} for group, columns in summed.items()}


def _snapshot() -> list:
    fields = [f.name for f in LinkRollup._meta.concrete_fields if f.name not in ("id", "rolled_at")]
    return sorted(tuple(str(getattr(r, f)) for f in fields) for r in LinkRollup.objects.all())


def test_day_rows_equal_the_hourly_rows_and_the_raw_rows_on_each_side_of_a_local_midnight(night, midnight):
    ios, android, disabled, before = (night[k] for k in ("ios", "android", "disabled", "before"))
    call_command("analytics_rollup", "--from", before.isoformat(), "--to", (midnight + timedelta(hours=1)).isoformat())
    first, second = timezone.localtime(before).date(), timezone.localtime(midnight).date()
    assert second == first + timedelta(days=1)
    for day in (first, second):
        assert _day_rows(day) == _nonzero(_summed_hours(day))
        start, end = local_day_bounds(day)
        days = LinkRollup.objects.filter(bucket_minutes=1440, bucket_start=start)
        conversions = Conversion.objects.filter(activated_at__gte=start, activated_at__lt=end, is_test=False)
        traces = MatchTrace.objects.filter(activated_at__gte=start, activated_at__lt=end, is_test=False)
        events = ConversionEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        assert sum(r.attributed for r in days) == conversions.count()
        assert sum(r.activations for r in days) == traces.count()
        assert sum(r.organic for r in days) == traces.filter(outcome="organic").count()
        assert sum(r.registers for r in days) == events.filter(event_type="register").count()
        assert sum(r.pay_amount_fen for r in days) == sum(e.amount_fen or 0 for e in events)
    one, two = _day_rows(first), _day_rows(second)
    key = ("com.kuaipao.app", "oceanengine", ios.id, "ios")
    assert (one[key]["clicks"], one[key]["repeated_clicks"], one[key]["attributed"], one[key]["registers"]) == (
        3, 1, 1, 1,
    )  # fmt: skip
    assert (two[key]["clicks"], two[key]["pays"], two[key]["pay_amount_fen"]) == (1, 1, 1990)
    assert two[("com.kuaipao.app", "tencent", android.id, "android")]["attributed"] == 1  # installed after midnight
    assert one[("com.kuaipao.app", "tencent", android.id, "android")]["clicks"] == 1  # clicked before it
    assert two[("com.kuaipao.app", "", 0, "ios")]["organic"] == 1
    assert one[("com.kuaipao.app", "generic", disabled.id, "ios")]["rejects:link_disabled"] == 1
    assert two[("com.kuaipao.app", "generic", disabled.id, "ios")]["rejects:link_disabled"] == 1
    runs = RollupRun.objects.filter(kind="links", bucket_minutes=1440)
    assert sorted(timezone.localtime(r.bucket_start) for r in runs) == [midnight - timedelta(days=1), midnight]


def test_late_data_re_rolls_the_hour_and_its_day_only(night, traffic, midnight):
    before = night["before"]
    now = midnight + timedelta(hours=1, minutes=2)
    services.rollup_tick(now=now)  # first tick: cursors set, the last closed hour (midnight) rolled
    services.rollup_bucket(start=before, minutes=60)  # the hour before midnight, rolled with its day
    first, second = timezone.localtime(before).date(), timezone.localtime(midnight).date()
    day_one, day_two = _day_rows(first), _day_rows(second)
    # late: an install of the hour before midnight (the device clicked at minute 20) and its payment
    traffic.activate(midnight - timedelta(minutes=5), idfa=IDFA2)
    traffic.deep_event("pay", midnight - timedelta(minutes=4), idfa=IDFA2, amount_fen=500)

    assert services.rollup_tick(now=now + timedelta(minutes=1))["re_rolled"] >= 1

    assert _day_rows(second) == day_two  # the next day is untouched
    key = ("com.kuaipao.app", "oceanengine", night["ios"].id, "ios")
    after = _day_rows(first)
    assert after[key]["attributed"] == day_one[key]["attributed"] + 1
    assert after[key]["pay_amount_fen"] == day_one[key].get("pay_amount_fen", 0) + 500
    assert after == _nonzero(_summed_hours(first))


def test_a_rebuild_gives_the_same_day_rows_never_duplicates_and_the_hour_view_matches_the_day_view(night, midnight):
    before = night["before"]
    window = ("--from", before.isoformat(), "--to", (midnight + timedelta(hours=1)).isoformat())
    call_command("analytics_rollup", *window)
    snapshot = _snapshot()
    call_command("analytics_rollup", *window)
    services.rollup_bucket(start=midnight, minutes=60)  # one hour alone re-rolls its day, same result
    services.rollup_day(day=timezone.localtime(before).date())
    assert _snapshot() == snapshot
    dupes = LinkRollup.objects.values("bucket_minutes", "bucket_start", *GROUP).annotate(n=Count("id"))
    assert max(d["n"] for d in dupes) == 1

    days = DashboardFilters(start=timezone.localtime(before).date(), end=timezone.localtime(midnight).date())
    by_day = dashboard_data(filters=days)
    by_hour = dashboard_data(filters=DashboardFilters(start=days.start, end=days.end, granularity="hour"))
    assert by_day["totals"] == by_hour["totals"] and by_day["totals"]["clicks"] == 5
    assert len(by_day["series"]) == 2 and len(by_hour["series"]) == 48
    assert [p["clicks"] for p in by_day["series"]] == [4, 1]
    hours = {p["at"]: p["clicks"] for p in by_hour["series"] if p["clicks"]}
    assert hours == {
        timezone.localtime(before).strftime("%Y-%m-%d %H:00"): 4,
        timezone.localtime(midnight).strftime("%Y-%m-%d %H:00"): 1,
    }
    assert by_day["links"] == by_hour["links"] and by_day["os"] == by_hour["os"]


def test_the_migration_builds_the_day_rows_of_hours_rolled_before_day_rows_existed(night, midnight):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("analytics.migrations.0004_day_rollups_fraud")
    call_command(
        "analytics_rollup", "--from", night["before"].isoformat(), "--to", (midnight + timedelta(hours=1)).isoformat()
    )
    expected = _snapshot()
    LinkRollup.objects.filter(bucket_minutes=1440).delete()
    RollupRun.objects.filter(bucket_minutes=1440).delete()

    migration.day_rows_from_hours(apps, None)

    assert _snapshot() == expected
    assert RollupRun.objects.filter(bucket_minutes=1440).count() == 2
