"""Analytics benchmark.

- `analytics.rollup_hour_seconds`: `rollup_bucket` of one hour holding 100,000
  clicks (through the real click path, `attribution.clicks.click_handle`, at
  times inside that hour) on 100 tracking links x their OS, and 10,000 attributed
  conversions (+ organic traces, deep events, postbacks and attempts), on the
  configured database and Redis (MariaDB + Redis in CI's second run). Median of
  3 rebuilds of the same hour. Baseline: the floor any rollup pays, measured in
  the same run: one GROUP BY over the hour's conversions and one pipelined
  HGETALL of every link's hourly counters.
- `analytics.dashboard_30d_ms`: `analytics.dashboard.dashboard_data` for 30 days, all
  links, per day (what the dashboard page computes): hourly rollups of 200 links x 2
  OS x 720 hours (288,000 rows), summed into their day rows by `rollup_day` (12,000
  rows, what the page reads) plus 30 days of campaign rollups. Median of 5. Extra
  figure `hourly_rows_ms`: the same three GROUP BYs over the 288,000 hourly rows (how
  the page read before the day rows). Baseline:
  the same attribution figures (per day, per link, per OS, CTIT buckets, registers and
  pays) computed from the raw tables (`Conversion`, `ConversionEvent`) holding 60,000
  conversions of those 30 days, median of 5. Clicks have no raw table (they live in
  Redis for their TTL), so the baseline does less work than the dashboard.
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


def _clicks(links, hour: datetime) -> None:
    from attribution import clicks

    logging.disable(logging.INFO)  # one JSON line per click would be most of the time spent
    rng = random.Random(7)
    start_ns = int(hour.timestamp()) * 1_000_000_000
    step = 3600 * 1_000_000_000 // CLICKS
    try:
        for n in range(CLICKS):
            link = links[n % len(links)]
            at_ns = start_ns + n * step
            device = f"{rng.randrange(16**8):08X}-0000-4000-8000-{rng.randrange(CLICKS // 2):012d}"
            key = "idfa" if link.os == "ios" else "oaid"
            query = f"{key}={device}&os={link.os}&ip=10.{n % 250}.1.1&ua=bench&ts={at_ns // 1_000_000}"
            status, _ = clicks.click_handle(
                platform=link.platform,
                token=link.token,
                query=query,
                source_ip="10.0.0.1",
                received_at_us=at_ns // 1000,
            )
            assert status == 200, status
    finally:
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


DASHBOARD_LINKS = 200
DASHBOARD_DAYS = 30
DASHBOARD_CONVERSIONS = 60_000


def _dashboard_seed() -> None:
    from django.utils import timezone

    from activities.models import Activity
    from analytics.models import CampaignRollup, LinkRollup
    from attribution.models import Conversion, ConversionEvent, TrackingLink

    rng = random.Random(13)
    now = timezone.now()
    links = TrackingLink.objects.bulk_create(
        [
            TrackingLink(platform="generic", app_id="com.dash.bench", os="ios", campaign_name=f"dash {n}")
            for n in range(DASHBOARD_LINKS)
        ]
    )
    if links[0].pk is None:  # MySQL returns no ids from bulk_create
        links = list(TrackingLink.objects.filter(app_id="com.dash.bench").order_by("id"))
    first = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=DASHBOARD_DAYS - 1
    )
    hours = [first + timedelta(hours=h) for h in range(DASHBOARD_DAYS * 24)]
    batch = []
    for hour in hours:
        for link in links:
            for os_ in ("ios", "android"):
                clicks = rng.randrange(20, 200)
                attributed = clicks // 10
                batch.append(
                    LinkRollup(
                        bucket_start=hour,
                        bucket_minutes=60,
                        app_id=link.app_id,
                        platform=link.platform,
                        link_id=link.id,
                        os=os_,
                        clicks=clicks,
                        activations=attributed + 1,
                        attributed=attributed,
                        organic=1,
                        ctit_1_10m=attributed,
                        registers=attributed // 2,
                        pays=attributed // 5,
                        pay_amount_fen=990 * (attributed // 5),
                        rolled_at=now,
                    )
                )
            if len(batch) >= 20_000:
                LinkRollup.objects.bulk_create(batch, batch_size=5000)
                batch = []
    LinkRollup.objects.bulk_create(batch, batch_size=5000)
    from analytics.services import rollup_day

    for day in sorted({timezone.localtime(hour).date() for hour in hours}):
        rollup_day(day=day)  # what the rollup job does with every hour it rolls
    activity = Activity.objects.create(name="dash bench", slug=f"dash-bench-{uuid.uuid4().hex[:6]}")
    CampaignRollup.objects.bulk_create(
        [
            CampaignRollup(bucket_start=hour, activity_id=activity.id, page_views=100, claims=5, rolled_at=now)
            for hour in hours
        ],
        batch_size=5000,
    )
    conversions = []
    for n in range(DASHBOARD_CONVERSIONS):
        activated = first + timedelta(seconds=rng.randrange(DASHBOARD_DAYS * 86400))
        link = links[n % len(links)]
        conversions.append(
            Conversion(
                link=link,
                platform=link.platform,
                app_id=link.app_id,
                os="ios" if n % 2 else "android",
                activation_event_id=f"dash-{n}",
                click_id=f"dash-{n}",
                click_at=activated - timedelta(seconds=300),
                activated_at=activated,
                seconds_to_install=rng.choice([5, 40, 300, 1500, 5400, 90000]),
                match_method="idfa",
                match_key=f"k{n}",
            )
        )
    Conversion.objects.bulk_create(conversions, batch_size=5000)
    ids = list(Conversion.objects.filter(app_id="com.dash.bench").values_list("id", "activated_at"))
    ConversionEvent.objects.bulk_create(
        [
            ConversionEvent(
                conversion_id=cid, event_type="register" if n % 3 else "pay", event_id=f"dash-ev-{n}", occurred_at=at
            )
            for n, (cid, at) in enumerate(ids[: len(ids) // 2])
        ],
        batch_size=5000,
    )


def _dashboard_baseline(start, end) -> None:
    """The dashboard's attribution figures from the raw tables."""
    from django.db.models import Count, Q
    from django.db.models.functions import TruncDate

    from attribution.models import Conversion, ConversionEvent

    rows = Conversion.objects.filter(activated_at__gte=start, activated_at__lt=end)
    list(rows.annotate(day=TruncDate("activated_at")).values("day").annotate(n=Count("id")).order_by())
    list(rows.values("link_id", "platform").annotate(n=Count("id")).order_by("-n"))
    list(rows.values("os").annotate(n=Count("id")).order_by())
    edges = [0, 10, 60, 600, 3600, 86400]
    rows.aggregate(
        **{
            f"ctit_{i}": Count("id", filter=Q(seconds_to_install__gte=low, seconds_to_install__lt=high))
            for i, (low, high) in enumerate(zip(edges, [*edges[1:], 2**31], strict=True))
        }
    )
    list(
        ConversionEvent.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .values("event_type")
        .annotate(n=Count("id"))
        .order_by()
    )


def _dashboard_hourly(filters) -> None:
    """The dashboard's three GROUP BYs over the hourly rows (the read before day rows)."""
    from django.db.models import Sum

    from analytics import dashboard

    rows = dashboard._link_rows(filters, minutes=60)
    columns = (*dashboard._SERIES_COLUMNS, *(name for _, name in dashboard.CTIT_BUCKETS))
    list(rows.values("bucket_start").annotate(**{c: Sum(c) for c in columns}).order_by())
    list(rows.values("os").annotate(**{c: Sum(c) for c in ("clicks", "activations", "attributed")}).order_by("os"))
    list(
        rows.exclude(link_id=0)
        .values("link_id", "platform")
        .annotate(**{c: Sum(c) for c in dashboard._LINK_COLUMNS})
        .order_by("-clicks", "link_id")
    )


def dashboard_run() -> dict[str, dict]:
    """`analytics.dashboard_30d_ms` on its own database."""
    from bench.support import bench_database, figure

    with bench_database():
        return _dashboard_figure(figure)


def _dashboard_figure(figure) -> dict[str, dict]:
    from django.conf import settings
    from django.utils import timezone

    from analytics import dashboard

    began = time.perf_counter()
    _dashboard_seed()
    print(f"    dashboard data seeded in {time.perf_counter() - began:.1f}s", flush=True)
    today = timezone.localdate()
    filters = dashboard.DashboardFilters(start=today - timedelta(days=DASHBOARD_DAYS - 1), end=today)
    start, end = dashboard._bounds(filters)
    timings, floors, hourly = [], [], []
    for _ in range(5):
        began = time.perf_counter()
        data = dashboard.dashboard_data(filters=filters)
        timings.append(time.perf_counter() - began)
        began = time.perf_counter()
        _dashboard_baseline(start, end)
        floors.append(time.perf_counter() - began)
        began = time.perf_counter()
        _dashboard_hourly(filters)
        hourly.append(time.perf_counter() - began)
    assert len(data["links"]) == DASHBOARD_LINKS and len(data["series"]) == DASHBOARD_DAYS, data["filters"]
    return {
        "analytics.dashboard_30d_ms": figure(
            statistics.median(timings) * 1000,
            "ms",
            statistics.median(floors) * 1000,
            rollup_rows=DASHBOARD_LINKS * 2 * DASHBOARD_DAYS * 24,
            day_rows=DASHBOARD_LINKS * 2 * DASHBOARD_DAYS,
            hourly_rows_ms=round(statistics.median(hourly) * 1000, 1),
            raw_conversions=DASHBOARD_CONVERSIONS,
            limit_ms=500,
            load_1m=round(os.getloadavg()[0], 2),
            backend=settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        )
    }


REPORT_LINKS = 200
REPORT_CLICKS = 1_000_000
REPORT_CONVERSIONS = 100_000


def _report_day(figure) -> dict[str, dict]:
    """The daily report (charts, CSV, XLSX, both bodies) of a local day holding 1,000,000
    clicks and 100,000 conversions as hourly rollup rows over 200 links x 24 hours (and 7
    earlier days alike for the comparisons); baseline: the day's plain sums query."""
    from datetime import date

    from django.utils import timezone

    from analytics import reports, selectors
    from analytics.models import LinkRollup

    day = date(2024, 6, 15)  # far from the dashboard's recent days seeded in the same database
    per_row_clicks = REPORT_CLICKS // (REPORT_LINKS * 24)
    per_row_conversions = REPORT_CONVERSIONS // (REPORT_LINKS * 24)
    now = timezone.now()
    for back in range(8):
        start, _ = selectors.local_day_bounds(day - timedelta(days=back))
        LinkRollup.objects.bulk_create(
            [
                LinkRollup(
                    bucket_start=start + timedelta(hours=h),
                    bucket_minutes=60,
                    app_id="com.bench.app",
                    platform=("oceanengine", "tencent", "kuaishou")[n % 3],
                    link_id=10_000 + n,
                    os="ios" if n % 2 else "android",
                    clicks=per_row_clicks + (1 if (n * 24 + h) < REPORT_CLICKS % (REPORT_LINKS * 24) else 0),
                    activations=per_row_conversions + (1 if (n * 24 + h) < REPORT_CONVERSIONS % 4800 else 0),
                    attributed=per_row_conversions - 3,
                    organic=3,
                    registers=per_row_conversions // 2,
                    pays=per_row_conversions // 5,
                    pay_amount_fen=per_row_conversions // 5 * 1990,
                    ctit_lt_10s=2,
                    ctit_1_10m=per_row_conversions - 5,
                    rolled_at=now,
                )
                for n in range(REPORT_LINKS)
                for h in range(24)
            ],
            batch_size=2000,
        )
    from analytics.services import rollup_day

    for back in range(8):
        rollup_day(day=day - timedelta(days=back))  # the day rows, as the rollup job keeps them
    timings, floors = [], []
    for _ in range(3):
        began = time.perf_counter()
        report = reports.report_build(day=day)
        timings.append(time.perf_counter() - began)
        began = time.perf_counter()
        selectors.link_rollup_sums_for_days(start=day, end=day + timedelta(days=1), group=("link_id", "platform"))
        floors.append(time.perf_counter() - began)
    assert report.funnel[0] == ("clicks", REPORT_CLICKS), report.funnel
    assert report.funnel[1] == ("activations", REPORT_CONVERSIONS), report.funnel
    return {
        "analytics.report_day_seconds": figure(
            statistics.median(timings),
            "s",
            statistics.median(floors),
            clicks=REPORT_CLICKS,
            conversions=REPORT_CONVERSIONS,
            links=REPORT_LINKS,
            xlsx_bytes=len(report.xlsx),
            limit_seconds=60,
            load_1m=round(os.getloadavg()[0], 2),
        )
    }


def run() -> dict[str, dict]:
    from bench.support import bench_database, figure

    with bench_database():
        dashboard_figures = _dashboard_figure(figure)
        from django.conf import settings
        from django.db.models import Count

        from analytics.services import rollup_bucket
        from attribution import services
        from attribution.clicks import stat_key
        from attribution.models import Conversion
        from core.redis import get_redis

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
                **dashboard_figures,
                **_report_day(figure),
                "analytics.rollup_hour_seconds": figure(
                    statistics.median(timings),
                    "s",
                    statistics.median(floors),
                    clicks=CLICKS,
                    conversions=CONVERSIONS,
                    rows=run_.rows,
                    load_1m=round(os.getloadavg()[0], 2),
                    backend=settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
                ),
            }
        finally:
            keys = list(client.scan_iter(match=settings.ATTRIBUTION_REDIS_PREFIX + ":*", count=1000))
            for i in range(0, len(keys), 1000):
                client.delete(*keys[i : i + 1000])
