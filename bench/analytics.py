"""Analytics benchmark.

- `analytics.rollup_hour_seconds`: `rollup_bucket` of one hour holding 100,000
  clicks (through the real click path, `attribution.clicks.click_handle`, at
  times inside that hour) on 100 tracking links x their OS, and 10,000 attributed
  conversions (+ organic traces, deep events, postbacks and attempts), on the
  configured database and Redis (MariaDB + Redis in CI's second run). Median of
  3 rebuilds of the same hour. Baseline: the floor any rollup pays, measured in
  the same run: one GROUP BY over the hour's conversions and one pipelined
  HGETALL of every link's hourly counters.
"""

from __future__ import annotations

import logging
import os
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

CLICKS = int(os.environ.get("BENCH_ANALYTICS_CLICKS", "100000"))
CONVERSIONS = int(os.environ.get("BENCH_ANALYTICS_CONVERSIONS", "10000"))
LINKS = 100
ROUNDS = 3


class _Clock:
    def __init__(self):
        self.ns = 0

    def time_ns(self) -> int:
        return self.ns

    def __getattr__(self, name):
        return getattr(time, name)


def _clicks(links, hour: datetime) -> None:
    from attribution import clicks

    clock = _Clock()
    real = clicks.time
    clicks.time = clock
    logging.disable(logging.INFO)  # one JSON line per click would be most of the time spent
    rng = random.Random(7)
    start_ns = int(hour.timestamp()) * 1_000_000_000
    step = 3600 * 1_000_000_000 // CLICKS
    try:
        for n in range(CLICKS):
            link = links[n % len(links)]
            clock.ns = start_ns + n * step
            device = f"{rng.randrange(16**8):08X}-0000-4000-8000-{rng.randrange(CLICKS // 2):012d}"
            key = "idfa" if link.os == "ios" else "oaid"
            query = f"{key}={device}&os={link.os}&ip=10.{n % 250}.1.1&ua=bench&ts={clock.ns // 1_000_000}"
            status, _ = clicks.click_handle(platform=link.platform, token=link.token, query=query, source_ip="10.0.0.1")
            assert status == 200, status
    finally:
        clicks.time = real
        logging.disable(logging.NOTSET)


def _tables(links, hour: datetime) -> None:
    from attribution.models import Conversion, ConversionEvent, MatchTrace, Postback, PostbackAttempt

    rng = random.Random(11)
    conversions = []
    for n in range(CONVERSIONS):
        link = links[n % len(links)]
        activated = hour + timedelta(seconds=rng.randrange(3600))
        ctit = rng.choice([5, 30, 300, 1800, 7200, 100000])
        conversions.append(
            Conversion(
                link=link,
                platform=link.platform,
                app_id=link.app_id,
                os=link.os,
                activation_event_id=f"act-{n}",
                click_id=f"clk-{n}",
                click_at=activated - timedelta(seconds=ctit),
                activated_at=activated,
                seconds_to_install=ctit,
                match_method="idfa",
                match_key=f"idfa:{n}",
                clicks_before_conversion=rng.randrange(1, 4),
            )
        )
    Conversion.objects.bulk_create(conversions, batch_size=2000)
    conversions = list(Conversion.objects.order_by("id"))
    MatchTrace.objects.bulk_create(
        [
            MatchTrace(
                event_id=c.activation_event_id,
                app_id=c.app_id,
                os=c.os,
                activated_at=c.activated_at,
                outcome="attributed",
                conversion=c,
            )
            for c in conversions
        ]
        + [
            MatchTrace(
                event_id=f"org-{n}",
                app_id="com.bench.app",
                os="ios",
                activated_at=hour + timedelta(seconds=n % 3600),
                outcome="organic",
            )
            for n in range(CONVERSIONS // 5)
        ],
        batch_size=2000,
    )
    ConversionEvent.objects.bulk_create(
        [
            ConversionEvent(
                conversion=c,
                event_type="register" if n % 3 else "pay",
                event_id=f"ev-{n}",
                occurred_at=c.activated_at,
                amount_fen=None if n % 3 else 990,
            )
            for n, c in enumerate(conversions[: CONVERSIONS // 3])
        ],
        batch_size=2000,
    )
    Postback.objects.bulk_create(
        [
            Postback(
                conversion=c,
                event_type="activate",
                source_event_id=c.activation_event_id,
                event_time=c.activated_at,
                status=("succeeded", "succeeded", "succeeded", "failed", "retrying")[n % 5],
            )
            for n, c in enumerate(conversions)
        ],
        batch_size=2000,
    )
    PostbackAttempt.objects.bulk_create(
        [
            PostbackAttempt(postback=p, number=1, method="GET", url="http://x", latency_ms=1.0, succeeded=n % 4 != 0)
            for n, p in enumerate(Postback.objects.all())
        ],
        batch_size=2000,
    )
    PostbackAttempt.objects.update(created_at=hour + timedelta(minutes=30))


def run() -> dict[str, dict]:
    from bench.support import bench_database, figure

    with bench_database():
        from django.conf import settings
        from django.db.models import Count

        from analytics.services import rollup_bucket
        from attribution import services
        from attribution.clicks import stat_key
        from attribution.models import Conversion
        from config.redis import get_redis

        settings.ATTRIBUTION_REDIS_PREFIX = f"bench-{uuid.uuid4().hex[:8]}:att"
        settings.ATTRIBUTION_CLICK_RATE_PER_IP = 10**9
        client = get_redis()
        try:
            links = []
            for n in range(LINKS):
                link = services.tracking_link_create(
                    platform="generic",
                    app_id="com.bench.app",
                    os="ios" if n % 2 else "android",
                    campaign_name=f"bench {n}",
                    rate_limit_per_second=10**9,
                )
                services.tracking_link_sync(link=link)
                links.append(link)
            hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
            began = time.perf_counter()
            _clicks(links, hour)
            print(f"    {CLICKS} clicks in {time.perf_counter() - began:.1f}s", flush=True)
            _tables(links, hour)
            timings, floors = [], []
            for _ in range(ROUNDS):
                began = time.perf_counter()
                run_ = rollup_bucket(start=hour, minutes=60)
                timings.append(time.perf_counter() - began)
                began = time.perf_counter()
                end = hour + timedelta(hours=1)
                list(
                    Conversion.objects.filter(activated_at__gte=hour, activated_at__lt=end)
                    .values("link_id", "os")
                    .annotate(n=Count("id"))
                )
                pipe = client.pipeline(transaction=False)
                for link in links:
                    pipe.hgetall(stat_key(link.id, hour.strftime("%Y%m%d%H")))
                pipe.execute()
                floors.append(time.perf_counter() - began)
            from analytics.models import LinkRollup

            clicks = sum(
                LinkRollup.objects.filter(bucket_start=hour, bucket_minutes=60).values_list("clicks", flat=True)
            )
            assert clicks == CLICKS, clicks
            return {
                "analytics.rollup_hour_seconds": figure(
                    statistics.median(timings),
                    "s",
                    statistics.median(floors),
                    clicks=CLICKS,
                    conversions=CONVERSIONS,
                    rows=run_.rows,
                    backend=settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
                )
            }
        finally:
            keys = list(client.scan_iter(match=settings.ATTRIBUTION_REDIS_PREFIX + ":*", count=1000))
            for i in range(0, len(keys), 1000):
                client.delete(*keys[i : i + 1000])
