"""Alerts benchmark.

- `alerts.check_seconds`: one `traffic_check` (every detector: per-OS activation
  drop, click and reject spikes, click flooding, postback failures, fraud installs,
  pipeline health; alerts fired and reconciled) over 1,000 tracking links x 2 OS with
  14 days of 5-minute `LinkRollup` history, on the configured database. To keep
  set-up time bounded on a shared machine the 5-minute rows cover a band of
  `BENCH_ALERTS_BAND_HOURS` (3) hours around the checked time of day on each of the
  15 days (the detectors read only the same-time windows, through the
  (bucket_minutes, bucket_start) index), plus 24 hourly rows per link and OS for
  click flooding, and `BENCH_ALERTS_RANGES` (2,000) source ranges per 5-minute
  bucket of that band in Redis (the click script's per-/24 counters, under a key
  prefix of this run, removed at the end): the first run compacts the closed
  buckets of the last three hours. Median of 3 runs. Baseline: one indexed SELECT
  of the current window's rows (the floor any detector pays).
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

LINKS = int(os.environ.get("BENCH_ALERTS_LINKS", "1000"))
DAYS = 14
BAND_HOURS = int(os.environ.get("BENCH_ALERTS_BAND_HOURS", "3"))
ROUNDS = 3
RANGES = int(os.environ.get("BENCH_ALERTS_RANGES", "2000"))


def _band_buckets(at: datetime) -> Iterator[datetime]:
    """The 5-minute buckets of the band around `at`'s time of day on each day of the
    history, before `at`."""
    for day in range(DAYS + 1):
        start = at - timedelta(days=day) - timedelta(hours=BAND_HOURS / 2)
        for b in range(BAND_HOURS * 12):
            moment = (start + timedelta(minutes=5 * b)).replace(second=0, microsecond=0)
            moment -= timedelta(minutes=moment.minute % 5)
            if moment < at:
                yield moment


def _ranges(at: datetime) -> int:
    """Raw per-range counters for every 5-minute bucket of the band on each day."""
    from alerts import ranges
    from core.redis import get_redis

    rng = random.Random(5)
    client = get_redis()
    names = [f"10.{i // 256}.{i % 256}.0/24" for i in range(RANGES)]
    made = 0
    for moment in _band_buckets(at):
        counts = {name: rng.randrange(1, 40) for name in names}
        ranges.counts_add(client, start=moment, counts=counts, ttl_seconds=(DAYS + 2) * 86400)
        made += len(counts)
    return made


def _history(at: datetime) -> int:
    from analytics.models import LinkRollup

    rng = random.Random(3)
    rows, made = [], 0
    for moment in _band_buckets(at):
        for link in range(1, LINKS + 1):
            for os_name in ("ios", "android"):
                clicks = rng.randrange(20, 60)
                acts = rng.randrange(1, 6)
                rows.append(
                    LinkRollup(
                        bucket_start=moment,
                        bucket_minutes=5,
                        app_id=f"com.bench.app{link % 10}",
                        platform="oceanengine",
                        link_id=link,
                        os=os_name,
                        clicks=clicks,
                        activations=acts,
                        attributed=acts,
                        rejected_clicks=rng.randrange(0, 3),
                        rolled_at=moment,
                    )
                )
        if len(rows) >= 20000:
            LinkRollup.objects.bulk_create(rows, batch_size=5000)
            made += len(rows)
            rows = []
    hour = at.replace(minute=0, second=0, microsecond=0)
    for h in range(1, 25):
        for link in range(1, LINKS + 1):
            for os_name in ("ios", "android"):
                rows.append(
                    LinkRollup(
                        bucket_start=hour - timedelta(hours=h),
                        bucket_minutes=60,
                        app_id=f"com.bench.app{link % 10}",
                        platform="oceanengine",
                        link_id=link,
                        os=os_name,
                        clicks=600,
                        activations=40,
                        attributed=40,
                        ctit_10_60s=30,
                        ctit_1_24h=10,
                        rolled_at=hour,
                    )
                )
    LinkRollup.objects.bulk_create(rows, batch_size=5000)
    return made + len(rows)


def run() -> dict[str, dict]:
    from bench.support import bench_database, figure

    with bench_database():
        import uuid

        from django.conf import settings

        from core.redis import get_redis

        settings.ATTRIBUTION_REDIS_PREFIX = f"bench-{uuid.uuid4().hex[:8]}:att"
        from alerts import detectors
        from alerts.checks import traffic_check
        from analytics.models import LinkRollup

        at = datetime.now(UTC).replace(second=30, microsecond=0)
        started = time.perf_counter()
        rows = _history(at)
        counters = _ranges(at)
        print(f"    {rows} rollup rows, {counters} range counters in {time.perf_counter() - started:.1f}s")
        checks, floors = [], []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            findings = traffic_check(at=at)
            checks.append(time.perf_counter() - started)
            end = detectors.window_end(at)
            started = time.perf_counter()
            list(
                LinkRollup.objects.filter(
                    bucket_minutes=5, bucket_start__gte=end - timedelta(minutes=15), bucket_start__lt=end
                ).values_list("link_id", "os", "clicks", "activations")
            )
            floors.append(time.perf_counter() - started)
        print(f"    {len(findings)} findings; runs {', '.join(f'{c:.2f}s' for c in checks)}")
        client = get_redis()
        for key in client.scan_iter(match=f"{settings.ATTRIBUTION_REDIS_PREFIX}:*", count=1000):
            client.delete(key)
        return {
            "alerts.check_seconds": figure(
                statistics.median(checks),
                "s",
                statistics.median(floors),
                links=LINKS,
                os=2,
                days=DAYS,
                rows=rows,
                band_hours=BAND_HOURS,
                source_ranges_per_bucket=RANGES,
                target_max=5.0,
            )
        }
