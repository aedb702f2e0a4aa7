"""Writes: rolling buckets of time up into `LinkRollup` rows, the beat tick, retention.

A bucket (an hour, or 5 minutes, in UTC) is rebuilt from its sources every time:
clicks from attribution's Redis counters (`attribution.clicks`: the hourly
`stat:` hashes with their 5-minute fields, the `uniq:` HyperLogLogs, the device
indexes for test devices), activations from match traces and conversions, deep
events, postbacks and their attempts from the database. `rollup_bucket` replaces
the bucket's rows in one transaction under the bucket's `RollupRun` row lock, so
any bucket can be rebuilt at any time with the same result while its sources exist.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from analytics.models import BucketMinutes, CampaignRollup, LinkOutcomeRollup, LinkRollup, RollupCursor, RollupRun
from analytics.selectors import local_day_bounds, local_day_of
from attribution.clicks import hour_bucket, index_key, prefix, stat_key
from attribution.models import (
    Conversion,
    ConversionEvent,
    FraudStatus,
    MatchOutcome,
    MatchTrace,
    Postback,
    PostbackAttempt,
    TestDevice,
    TrackingLink,
)
from core.redis import get_redis

logger = logging.getLogger("huodong.analytics")

LINKS = "links"
GRACE_SECONDS = 60  # a bucket is rolled this long after it closed (clicks in flight land first)

# (upper bound in seconds, exclusive; column)
CTIT_BUCKETS: tuple[tuple[int | None, str], ...] = (
    (10, "ctit_lt_10s"),
    (60, "ctit_10_60s"),
    (600, "ctit_1_10m"),
    (3600, "ctit_10_60m"),
    (86400, "ctit_1_24h"),
    (None, "ctit_gt_24h"),
)
PENDING_POSTBACK = ("pending", "sending", "retrying")

Group = tuple[str, str, int, str]  # app_id, platform, link_id, os


def ctit_column(seconds: int) -> str:
    for bound, column in CTIT_BUCKETS:
        if bound is None or seconds < bound:
            return column
    raise AssertionError("unreachable")


def bucket_floor(moment: datetime, minutes: int) -> datetime:
    """The start of the bucket holding `moment` (UTC)."""
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % minutes, second=0, microsecond=0)


def _minutes(minutes: int) -> int:
    if minutes not in (BucketMinutes.FIVE, BucketMinutes.HOUR):
        raise ValueError("bucket_minutes must be 5 or 60 (days are summed from hours: rollup_day)")
    return minutes


@dataclass(frozen=True)
class _Link:
    id: int
    app_id: str
    platform: str
    os: str


# --- clicks (Redis) ---------------------------------------------------------------
def _stat_fields(data: dict[bytes, bytes], minute: str | None) -> Iterable[tuple[str, str, int]]:
    """(os, counter, n) of a link's hourly stat hash; counter is c, r, u or x:<reason>.
    `minute` ("m05") keeps one 5-minute bucket; None sums the hour."""
    for raw_field, raw_value in data.items():
        field = raw_field.decode()
        if not (field[:1] == "m" and field[1:3].isdigit() and field[3:4] == ":"):
            continue
        if minute is not None and field[:3] != minute:
            continue
        _, os, counter = field.split(":", 2)
        yield os, counter, int(raw_value)


def _legacy_fields(data: dict[bytes, bytes], link_os: str) -> Iterable[tuple[str, str, int]]:
    """Hours counted before the 5-minute fields existed: per-OS clicks only, the rest on the link's OS."""
    for raw_field, raw_value in data.items():
        field, n = raw_field.decode(), int(raw_value)
        if field.startswith("os:"):
            yield field[3:], "c", n
        elif field == "repeated":
            yield link_os, "r", n
        elif field == "unkeyed":
            yield link_os, "u", n
        elif field.startswith("rejected:"):
            yield link_os, "x:" + field[9:], n


def _click_counts(rows: dict[Group, dict], links: list[_Link], start: datetime, minutes: int) -> None:
    client = get_redis()
    hour = hour_bucket(start.timestamp())
    minute = None if minutes == 60 else f"m{start.minute:02d}"
    pipe = client.pipeline(transaction=False)
    for link in links:
        pipe.hgetall(stat_key(link.id, hour))
    pipe.hgetall(f"{prefix()}:rej:{hour}")
    *stats, unknown = pipe.execute()
    seen_os: list[tuple[_Link, str]] = []
    for link, data in zip(links, stats, strict=True):
        if not data:
            continue
        has_minutes = any(f[:1] == b"m" and f[3:4] == b":" for f in data)
        if has_minutes:
            fields = _stat_fields(data, minute)
        elif minutes == 60:
            fields = _legacy_fields(data, link.os)
        else:
            continue
        for os, counter, n in fields:
            row = rows[(link.app_id, link.platform, link.id, os)]
            if counter == "c":
                row["clicks"] += n
                if (link, os) not in seen_os:
                    seen_os.append((link, os))
            elif counter == "r":
                row["repeated_clicks"] += n
            elif counter == "u":
                row["unkeyed_clicks"] += n
            elif counter.startswith("x:"):
                reason = counter[2:]
                row["rejected_clicks"] += n
                row["rejects"][reason] = row["rejects"].get(reason, 0) + n
    for raw_field, raw_value in unknown.items():
        field = raw_field.decode()
        parts = field.split(":")
        if minute is None and len(parts) == 2 and parts[0] == "-":
            reason = parts[1]
        elif minute is not None and len(parts) == 3 and parts[0] == minute and parts[1] == "-":
            reason = parts[2]
        else:
            continue
        row = rows[("", "", 0, "")]
        row["rejected_clicks"] += int(raw_value)
        row["rejects"][reason] = row["rejects"].get(reason, 0) + int(raw_value)
    if minutes == 60 and seen_os:
        pipe = client.pipeline(transaction=False)
        for link, os in seen_os:
            pipe.pfcount(f"{prefix()}:uniq:{link.id}:{hour}:{os}")
        for (link, os), n in zip(seen_os, pipe.execute(), strict=True):
            rows[(link.app_id, link.platform, link.id, os)]["unique_devices"] = n


def _test_clicks(rows: dict[Group, dict], links: list[_Link], start: datetime, end: datetime) -> None:
    """Clicks of test devices, read from the click indexes under their keys: counted
    apart and taken out of `clicks` (the click path itself never looks at test devices)."""
    devices = list(TestDevice.objects.values_list("app_id", "keys"))
    lookups = []
    for link in links:
        for number, (app_id, keys) in enumerate(devices):
            if app_id and app_id != link.app_id:
                continue
            for canonical in keys:
                kind, _, value = canonical.partition(":")
                lookups.append((link, number, index_key(link.id, kind, value)))
    if not lookups:
        return
    pipe = get_redis().pipeline(transaction=False)
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    for *_, key in lookups:
        pipe.zrangebyscore(key, lo, f"({hi}")
    seen: set[tuple[int, str]] = set()
    clickers: set[tuple[Group, int]] = set()
    for (link, number, _), members in zip(lookups, pipe.execute(), strict=True):
        for member in members:
            try:
                click = json.loads(member)
            except ValueError:
                continue
            if (link.id, click.get("id")) in seen:
                continue
            seen.add((link.id, click.get("id")))
            group = (link.app_id, link.platform, link.id, click.get("os") or link.os)
            row = rows[group]
            row["test_clicks"] += 1
            row["clicks"] = max(0, row["clicks"] - 1)
            if (group, number) not in clickers:
                clickers.add((group, number))
                if row["unique_devices"]:
                    row["unique_devices"] -= 1


# --- activations, deep events, postbacks (database) --------------------------------
def _activation_counts(rows: dict[Group, dict], start: datetime, end: datetime) -> None:
    ctit: dict[Group, list[int]] = defaultdict(list)
    conversions = Conversion.objects.filter(activated_at__gte=start, activated_at__lt=end, is_test=False)
    for link_id, platform, app_id, os, seconds, clicks_before, fraud_status in conversions.values_list(
        "link_id", "platform", "app_id", "os", "seconds_to_install", "clicks_before_conversion", "fraud_status"
    ).iterator(chunk_size=5000):
        group = (app_id, platform, link_id, os)
        row = rows[group]
        row["attributed"] += 1
        if fraud_status == FraudStatus.REJECTED:
            row["fraud_rejected"] += 1
        elif fraud_status == FraudStatus.FLAGGED:
            row["fraud_flagged"] += 1
        row["activations"] += 1
        row[ctit_column(seconds)] += 1
        row["clicks_before_conversions"] += clicks_before
        ctit[group].append(seconds)
    for group, values in ctit.items():
        rows[group]["ctit_median_seconds"] = int(statistics.median_low(values))
    traces = MatchTrace.objects.filter(activated_at__gte=start, activated_at__lt=end).filter(
        Q(is_test=True) | ~Q(outcome=MatchOutcome.ATTRIBUTED)
    )
    for outcome, app_id, os, is_test, link_id, platform, candidates in traces.values_list(
        "outcome", "app_id", "os", "is_test", "conversion__link_id", "conversion__platform", "candidates"
    ).iterator(chunk_size=2000):
        if is_test:
            attributed = outcome == MatchOutcome.ATTRIBUTED
            group = (app_id, platform or "", link_id or 0, os) if attributed else (app_id, "", 0, os)
            rows[group]["test_activations"] += 1
        elif outcome == MatchOutcome.ORGANIC:
            rows[(app_id, "", 0, os)]["organic"] += 1
            rows[(app_id, "", 0, os)]["activations"] += 1
        else:  # reinstall: on the link whose click the reinstall rule refused, if any
            refused = next((c for c in candidates if str(c.get("reason", "")).startswith("reinstall rule")), None)
            group = (app_id, refused["platform"], refused["link_id"], os) if refused else (app_id, "", 0, os)
            rows[group]["reinstalls"] += 1
            rows[group]["activations"] += 1


def _deep_event_counts(rows: dict[Group, dict], start: datetime, end: datetime) -> None:
    events = ConversionEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end, conversion__is_test=False)
    keys = ("conversion__app_id", "conversion__platform", "conversion__link_id", "conversion__os")
    for item in events.values(*keys, "event_type").annotate(n=Count("id"), amount=Sum("amount_fen")):
        row = rows[tuple(item[k] for k in keys)]
        if item["event_type"] == "register":
            row["registers"] += item["n"]
        elif item["event_type"] == "pay":
            row["pays"] += item["n"]
            row["pay_amount_fen"] += item["amount"] or 0


def _postback_counts(rows: dict[Group, dict], start: datetime, end: datetime) -> None:
    keys = ("conversion__app_id", "conversion__platform", "conversion__link_id", "conversion__os")
    postbacks = Postback.objects.filter(event_time__gte=start, event_time__lt=end)
    for item in postbacks.values(*keys, "status").annotate(n=Count("id")):
        row = rows[tuple(item[k] for k in keys)]
        if item["status"] == "succeeded":
            row["postbacks_succeeded"] += item["n"]
        elif item["status"] == "failed":
            row["postbacks_failed"] += item["n"]
        else:
            row["postbacks_pending"] += item["n"]
    attempts = PostbackAttempt.objects.filter(created_at__gte=start, created_at__lt=end, succeeded=False)
    akeys = tuple("postback__" + k for k in keys)
    for item in attempts.values(*akeys).annotate(n=Count("id")):
        rows[tuple(item[k] for k in akeys)]["postback_attempts_failed"] += item["n"]


def _empty_row() -> dict[str, Any]:
    row: dict[str, Any] = {
        f.name: 0 for f in LinkRollup._meta.concrete_fields if f.get_internal_type().endswith("IntegerField")
    }
    row.pop("link_id", None)
    row.pop("bucket_minutes", None)
    row["rejects"] = {}
    row["unique_devices"] = None
    row["ctit_median_seconds"] = None
    return row


def link_rollup_rows(*, start: datetime, minutes: int) -> list[LinkRollup]:
    """The rows of one bucket, computed from the sources (nothing written)."""
    minutes = _minutes(minutes)
    start = bucket_floor(start, minutes)
    end = start + timedelta(minutes=minutes)
    links = [_Link(*values) for values in TrackingLink.objects.values_list("id", "app_id", "platform", "os")]
    rows: dict[Group, dict] = defaultdict(_empty_row)
    _click_counts(rows, links, start, minutes)
    _test_clicks(rows, links, start, end)
    _activation_counts(rows, start, end)
    _deep_event_counts(rows, start, end)
    _postback_counts(rows, start, end)
    now = timezone.now()
    return [
        LinkRollup(
            bucket_start=start,
            bucket_minutes=minutes,
            app_id=app_id,
            platform=platform,
            link_id=link_id,
            os=os,
            rolled_at=now,
            **values,
        )
        for (app_id, platform, link_id, os), values in sorted(rows.items())
    ]


# --- local days: the sums of the hourly rows -----------------------------------------
GROUP_FIELDS = ("app_id", "platform", "link_id", "os")
# columns that add up over hours; unique_devices (HyperLogLog estimates) and the CTIT
# median do not, and stay NULL in day rows (read the CTIT histogram for days)
DAY_SUM_FIELDS = tuple(
    f.name
    for f in LinkRollup._meta.concrete_fields
    if f.get_internal_type().endswith("IntegerField")
    and f.name not in ("id", "bucket_minutes", "link_id", "unique_devices", "ctit_median_seconds")
)


def link_day_rows(*, day: date) -> list[LinkRollup]:
    """The rows of one local day (TIME_ZONE), summed from its hourly rows (an hour belongs
    to the day of its local start); nothing written."""
    start, end = local_day_bounds(day)
    hourly = LinkRollup.objects.filter(bucket_minutes=BucketMinutes.HOUR, bucket_start__gte=start, bucket_start__lt=end)
    sums = hourly.values(*GROUP_FIELDS).annotate(**{f"s_{c}": Sum(c) for c in DAY_SUM_FIELDS}).order_by()
    rejects: dict[Group, dict[str, int]] = defaultdict(dict)
    for *group, reasons in hourly.filter(rejected_clicks__gt=0).values_list(*GROUP_FIELDS, "rejects"):
        merged = rejects[tuple(group)]
        for reason, n in (reasons or {}).items():
            merged[reason] = merged.get(reason, 0) + n
    now = timezone.now()
    rows = []
    for item in sums:
        group = tuple(item[k] for k in GROUP_FIELDS)
        rows.append(
            LinkRollup(
                bucket_start=start,
                bucket_minutes=BucketMinutes.DAY,
                **{k: item[k] for k in GROUP_FIELDS},
                **{c: int(item[f"s_{c}"] or 0) for c in DAY_SUM_FIELDS},
                rejects=dict(sorted(rejects.get(group, {}).items())),
                unique_devices=None,
                ctit_median_seconds=None,
                rolled_at=now,
            )
        )
    return sorted(rows, key=lambda r: (r.app_id, r.platform, r.link_id, r.os))


@transaction.atomic
def rollup_day(*, day: date) -> RollupRun:
    """Rebuild one local day's rows from its hourly rows (idempotent), under the day's
    `RollupRun` row lock. Called with every hour rebuilt (rollup_bucket), so the day rows
    always equal the sums of the hours they hold."""
    start, _ = local_day_bounds(day)
    began = time.perf_counter()
    RollupRun.objects.get_or_create(kind=LINKS, bucket_minutes=BucketMinutes.DAY, bucket_start=start)
    run = RollupRun.objects.select_for_update().get(kind=LINKS, bucket_minutes=BucketMinutes.DAY, bucket_start=start)
    rows = link_day_rows(day=day)
    LinkRollup.objects.filter(bucket_minutes=BucketMinutes.DAY, bucket_start=start).delete()
    LinkRollup.objects.bulk_create(rows, batch_size=1000)
    run.rows = len(rows)
    run.rolled_at = timezone.now()
    run.seconds = round(time.perf_counter() - began, 4)
    run.save(update_fields=["rows", "rolled_at", "seconds"])
    return run


@transaction.atomic
def rollup_bucket(*, start: datetime, minutes: int = 60, with_day: bool = True) -> RollupRun:
    """Rebuild one bucket's rows (idempotent: the same sources give the same rows). An
    hour re-rolls its local day in the same transaction unless `with_day` is False (the
    caller then calls rollup_day once for the days it touched, as rollup_range does)."""
    minutes = _minutes(minutes)
    start = bucket_floor(start, minutes)
    began = time.perf_counter()
    RollupRun.objects.get_or_create(kind=LINKS, bucket_minutes=minutes, bucket_start=start)
    run = RollupRun.objects.select_for_update().get(kind=LINKS, bucket_minutes=minutes, bucket_start=start)
    rows = link_rollup_rows(start=start, minutes=minutes)
    LinkRollup.objects.filter(bucket_minutes=minutes, bucket_start=start).delete()
    LinkRollup.objects.bulk_create(rows, batch_size=1000)
    run.rows = len(rows)
    run.rolled_at = timezone.now()
    run.seconds = round(time.perf_counter() - began, 4)
    run.save(update_fields=["rows", "rolled_at", "seconds"])
    if minutes == BucketMinutes.HOUR and with_day:
        rollup_day(day=local_day_of(start))
    logger.info(
        "rollup bucket",
        extra={"bucket_start": start.isoformat(), "bucket_minutes": minutes, "rows": len(rows), "seconds": run.seconds},
    )
    return run


def rollup_range(*, start: datetime, end: datetime, minutes: int = 60) -> list[RollupRun]:
    """Rebuild every bucket that starts in [start, end); for hours, then each local day
    they fall in (once per day)."""
    minutes = _minutes(minutes)
    runs = []
    days: set[date] = set()
    bucket = bucket_floor(start, minutes)
    if bucket < start:
        bucket += timedelta(minutes=minutes)
    while bucket < end:
        runs.append(rollup_bucket(start=bucket, minutes=minutes, with_day=False))
        days.add(local_day_of(bucket))
        bucket += timedelta(minutes=minutes)
    if minutes == BucketMinutes.HOUR:
        for day in sorted(days):
            rollup_day(day=day)
    return runs


# --- the beat tick: closed buckets, late data, retention ---------------------------
# append-only tables: (cursor name, model, the event times that name a row's buckets)
# (cursor name, model, the model's event-time fields)
RollupSource = tuple[str, type[models.Model], tuple[str, ...]]

_SOURCES: tuple[RollupSource, ...] = (
    ("conversion", Conversion, ("activated_at",)),
    ("trace", MatchTrace, ("activated_at",)),
    ("event", ConversionEvent, ("occurred_at",)),
    ("postback", Postback, ("event_time",)),
    # an attempt changes its postback's status (counted at the event's time) and is counted itself
    ("attempt", PostbackAttempt, ("created_at", "postback__event_time")),
)


def _campaign_sources() -> tuple[RollupSource, ...]:
    """The campaign rollups' append-only sources: claims, and orders' timeline entries
    (every state move of an order writes one: placed, paid, refunded; a payment the
    reconciliation finds a day later names the hour it was paid in)."""
    from coupons.models import Claim
    from payments.models import OrderEvent

    return (
        ("claim", Claim, ("claimed_at",)),
        ("order_event", OrderEvent, ("order__created_at", "order__paid_at", "order__refunded_at")),
    )


def _late_moments(sources: tuple[RollupSource, ...] = _SOURCES) -> tuple[list[datetime], dict[str, int]]:
    """Event times of the source rows added since the cursors; the cursors' new positions."""
    cursors = {c.name: c.position for c in RollupCursor.objects.filter(name__in=[name for name, *_ in sources])}
    moments: list[datetime] = []
    positions: dict[str, int] = {}
    for name, model, fields in sources:
        if name not in cursors:  # first tick: nothing is late yet
            positions[name] = model._default_manager.aggregate(m=Max("id"))["m"] or 0
            continue
        new = list(
            model._default_manager.filter(id__gt=cursors[name]).values_list("id", *fields).order_by("id")[:200_000]
        )
        positions[name] = new[-1][0] if new else cursors[name]
        moments += [moment for row in new for moment in row[1:] if moment is not None]
    return moments, positions


def rollup_tick(*, now: datetime | None = None) -> dict[str, int]:
    """Beat: roll every closed bucket not rolled yet (hours and 5 minutes, catching up at
    most ANALYTICS_CATCH_UP_HOURS; campaign hours), re-roll rolled buckets that received
    late data (links: conversions, traces, deep events, postbacks, attempts; campaigns:
    claims and order timeline entries), drop rows past retention."""
    now = now or timezone.now()
    ticked = timezone.now()
    moments, positions = _late_moments()
    rolled = late = 0
    horizon = now - timedelta(hours=settings.ANALYTICS_CATCH_UP_HOURS)
    for minutes in (BucketMinutes.FIVE, BucketMinutes.HOUR):
        last_closed = bucket_floor(now - timedelta(seconds=GRACE_SECONDS), minutes) - timedelta(minutes=minutes)
        last = RollupRun.objects.filter(kind=LINKS, bucket_minutes=minutes).aggregate(m=Max("bucket_start"))["m"]
        bucket = last + timedelta(minutes=minutes) if last else last_closed
        bucket = max(bucket, bucket_floor(horizon, minutes))
        while bucket <= last_closed:
            rollup_bucket(start=bucket, minutes=minutes)
            rolled += 1
            bucket += timedelta(minutes=minutes)
        keep = timedelta(
            days=settings.ANALYTICS_RETENTION_DAYS if minutes == 60 else settings.ANALYTICS_FIVE_MINUTE_RETENTION_DAYS
        )
        wanted = {bucket_floor(m, minutes) for m in moments if m >= now - keep}
        stale = RollupRun.objects.filter(
            kind=LINKS, bucket_minutes=minutes, bucket_start__in=wanted, rolled_at__lt=ticked
        ).values_list("bucket_start", flat=True)
        for bucket in sorted(stale):
            rollup_bucket(start=bucket, minutes=minutes)
            late += 1
    from analytics.campaigns import CAMPAIGNS, campaign_rollup_hour

    campaign_moments, campaign_positions = _late_moments(_campaign_sources())
    last_hour = bucket_floor(now - timedelta(seconds=GRACE_SECONDS), 60) - timedelta(hours=1)
    last = RollupRun.objects.filter(kind=CAMPAIGNS, bucket_minutes=60).aggregate(m=Max("bucket_start"))["m"]
    bucket = max(last + timedelta(hours=1) if last else last_hour, bucket_floor(horizon, 60))
    while bucket <= last_hour:
        campaign_rollup_hour(start=bucket)
        rolled += 1
        bucket += timedelta(hours=1)
    keep = timedelta(days=settings.ANALYTICS_RETENTION_DAYS)
    wanted = {bucket_floor(m, 60) for m in campaign_moments if m >= now - keep}
    stale = RollupRun.objects.filter(
        kind=CAMPAIGNS, bucket_minutes=60, bucket_start__in=wanted, rolled_at__lt=ticked
    ).values_list("bucket_start", flat=True)
    for bucket in sorted(stale):
        campaign_rollup_hour(start=bucket)
        late += 1
    for name, position in {**positions, **campaign_positions}.items():
        RollupCursor.objects.update_or_create(name=name, defaults={"position": position})
    purged = rollups_purge(now=now)
    return {"rolled": rolled, "re_rolled": late, "purged": purged}


def rollups_purge(*, now: datetime | None = None) -> int:
    """Drop hourly and daily rows (links, campaigns, closed loop) older than ANALYTICS_RETENTION_DAYS (>= 400) and
    5-minute rows older than ANALYTICS_FIVE_MINUTE_RETENTION_DAYS."""
    now = now or timezone.now()
    purged = 0
    for minutes, days in (
        (BucketMinutes.DAY, settings.ANALYTICS_RETENTION_DAYS),
        (BucketMinutes.HOUR, settings.ANALYTICS_RETENTION_DAYS),
        (BucketMinutes.FIVE, settings.ANALYTICS_FIVE_MINUTE_RETENTION_DAYS),
    ):
        cutoff = now - timedelta(days=days)
        purged += LinkRollup.objects.filter(bucket_minutes=minutes, bucket_start__lt=cutoff).delete()[0]
        if minutes == BucketMinutes.HOUR:
            purged += CampaignRollup.objects.filter(bucket_minutes=minutes, bucket_start__lt=cutoff).delete()[0]
            purged += LinkOutcomeRollup.objects.filter(bucket_start__lt=cutoff).delete()[0]
        RollupRun.objects.filter(bucket_minutes=minutes, bucket_start__lt=cutoff).delete()
    return purged
