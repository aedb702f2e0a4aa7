"""The analytics dashboard's data (docs/analytics.md, "Dashboard"): one selector over
the hourly rollups. Figures are sums over hourly rows; rates are computed from those
sums (never averaged). Reads only."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from analytics.models import BucketMinutes, CampaignRollup, LinkCampaign, LinkRollup

MAX_DAYS = 92
CTIT_BUCKETS = (  # (label, rollup column); labels translated where shown
    (gettext_noop("<10 s"), "ctit_lt_10s"),
    (gettext_noop("10–60 s"), "ctit_10_60s"),
    (gettext_noop("1–10 min"), "ctit_1_10m"),
    (gettext_noop("10–60 min"), "ctit_10_60m"),
    (gettext_noop("1–24 h"), "ctit_1_24h"),
    (gettext_noop(">24 h"), "ctit_gt_24h"),
)
_SERIES_COLUMNS = ("clicks", "activations", "attributed", "organic", "registers", "pays", "pay_amount_fen")
# Of `attributed`: the installs a fraud rule flagged (posted back, marked) or rejected (not posted back).
_FRAUD_COLUMNS = ("fraud_flagged", "fraud_rejected")
_LINK_COLUMNS = ("clicks", "activations", "attributed", *_FRAUD_COLUMNS, "registers", "pays", "pay_amount_fen")


@dataclass(frozen=True)
class DashboardFilters:
    start: date  # local days, both included
    end: date
    app_id: str = ""
    platform: str = ""
    link_id: int | None = None
    os: str = ""
    activity_id: int | None = None
    granularity: str = "day"  # "day" | "hour"
    errors: tuple[str, ...] = field(default=(), compare=False)


def _int(value: str | None) -> int | None:
    try:
        number = int(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < 2**31 else None


def filters_parse(params, *, today: date | None = None) -> DashboardFilters:
    """Filters from a query string; a bad value falls back to its default (and says so)."""
    today = today or timezone.localdate()
    errors = []

    def day(name: str, default: date) -> date:
        value = params.get(name) or ""
        if not value:
            return default
        try:
            return date.fromisoformat(value)
        except ValueError:
            errors.append(gettext("%(name)s: not a date (%(value)r)") % {"name": name, "value": value[:20]})
            return default

    end = day("to", today)
    start = day("from", end - timedelta(days=13))
    if start > end or (end - start).days >= MAX_DAYS:
        errors.append(
            gettext("dates: at most %(days)s days, from before to; showing the 14 days to %(end)s")
            % {"days": MAX_DAYS, "end": end}
        )
        start = end - timedelta(days=13)
    granularity = params.get("granularity") or ("hour" if (end - start).days < 3 else "day")
    if granularity not in ("day", "hour"):
        granularity = "day"
    return DashboardFilters(
        start=start,
        end=end,
        app_id=(params.get("app") or "")[:128],
        platform=(params.get("platform") or "")[:16],
        link_id=_int(params.get("link")),
        os=(params.get("os") or "")[:8],
        activity_id=_int(params.get("activity")),
        granularity=granularity,
        errors=tuple(errors),
    )


def _bounds(filters: DashboardFilters) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    start = datetime.combine(filters.start, time.min, tzinfo=tz)
    end = datetime.combine(filters.end + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def _link_rows(filters: DashboardFilters, *, minutes: int = BucketMinutes.DAY):
    """The link rollup rows of the filters' local days: day rows (one per day and group,
    the sums of the hourly rows) unless hours are asked for."""
    start, end = _bounds(filters)
    rows = LinkRollup.objects.filter(bucket_minutes=minutes, bucket_start__gte=start, bucket_start__lt=end)
    if filters.app_id:
        rows = rows.filter(app_id=filters.app_id)
    if filters.platform:
        rows = rows.filter(platform=filters.platform)
    if filters.link_id is not None:
        rows = rows.filter(link_id=filters.link_id)
    if filters.os:
        rows = rows.filter(os=filters.os)
    if filters.activity_id is not None:
        links = list(LinkCampaign.objects.filter(activity_id=filters.activity_id).values_list("link_id", flat=True))
        rows = rows.filter(link_id__in=links)
    return rows


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _sums(columns: Iterable[str]) -> dict[str, Sum]:
    return {name: Sum(name) for name in columns}


def _clean(row: Mapping[str, Any], columns: Iterable[str]) -> dict[str, int]:
    return {name: int(row.get(name) or 0) for name in columns}


def dashboard_data(*, filters: DashboardFilters) -> dict[str, Any]:
    """Everything the dashboard shows, JSON-ready: totals, funnel, CTIT histogram,
    series (per local day or hour), OS split, links (by clicks) and campaigns.
    Whole days read the day rows (30 days x 200 links x 2 OS = 12,000 rows); only the
    hour series reads hourly rows."""
    from attribution.models import TrackingLink

    rows = _link_rows(filters)  # whole local days: totals, OS split, links
    series_rows = rows if filters.granularity == "day" else _link_rows(filters, minutes=BucketMinutes.HOUR)
    ctit_columns = [name for _seconds, name in CTIT_BUCKETS]
    summed = (*_SERIES_COLUMNS, *_FRAUD_COLUMNS, *ctit_columns)
    per_bucket = series_rows.values("bucket_start").annotate(**_sums(summed)).order_by()
    tz = timezone.get_current_timezone()
    series: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(_SERIES_COLUMNS, 0))
    totals = dict.fromkeys(summed, 0)
    for row in per_bucket:
        at = timezone.localtime(row["bucket_start"], tz)
        key = at.strftime("%Y-%m-%d %H:00") if filters.granularity == "hour" else at.strftime("%Y-%m-%d")
        point = series[key]
        for name in summed:
            value = int(row[name] or 0)
            totals[name] += value
            if name in point:
                point[name] += value
    # every day/hour of the range is on the axis, also the quiet ones
    start, end = _bounds(filters)
    step = timedelta(hours=1) if filters.granularity == "hour" else timedelta(days=1)
    axis, moment = [], start
    while moment < end:
        local = timezone.localtime(moment, tz)
        axis.append(local.strftime("%Y-%m-%d %H:00") if filters.granularity == "hour" else local.strftime("%Y-%m-%d"))
        moment = (
            (moment + step)
            if filters.granularity == "hour"
            else datetime.combine(local.date() + timedelta(days=1), time.min, tzinfo=tz)
        )
    series_points = []
    for key in axis:
        point = series.get(key) or dict.fromkeys(_SERIES_COLUMNS, 0)
        series_points.append({"at": key, **point, "attribution_rate": _rate(point["attributed"], point["clicks"])})

    by_os = [
        {**_clean(row, ("clicks", "activations", "attributed")), "os": row["os"] or "(none)"}
        for row in rows.values("os").annotate(**_sums(("clicks", "activations", "attributed"))).order_by("os")
    ]
    link_rows = list(
        rows.exclude(link_id=0)
        .values("link_id", "platform")
        .annotate(**_sums(_LINK_COLUMNS))
        .order_by("-clicks", "link_id")
    )
    names = dict(
        TrackingLink.objects.filter(id__in=[row["link_id"] for row in link_rows]).values_list("id", "campaign_name")
    )
    links = [
        {
            "link_id": row["link_id"],
            "name": names.get(row["link_id"], "(deleted link)"),
            "platform": row["platform"],
            **_clean(row, _LINK_COLUMNS),
            "attribution_rate": _rate(int(row["attributed"] or 0), int(row["clicks"] or 0)),
        }
        for row in link_rows
    ]
    return {
        "filters": {
            "from": filters.start.isoformat(),
            "to": filters.end.isoformat(),
            "granularity": filters.granularity,
        },
        "totals": {
            **{name: totals[name] for name in (*_SERIES_COLUMNS, *_FRAUD_COLUMNS)},
            "attribution_rate": _rate(totals["attributed"], totals["clicks"]),
            "fraud_rate": _rate(totals["fraud_flagged"] + totals["fraud_rejected"], totals["attributed"]),
            "activation_rate": _rate(totals["activations"], totals["clicks"]),
        },
        "funnel": [
            {"step": "clicks", "value": totals["clicks"]},
            {"step": "activations", "value": totals["activations"]},
            {"step": "registers", "value": totals["registers"]},
            {"step": "pays", "value": totals["pays"]},
        ],
        "ctit": [{"bucket": gettext(label), "value": totals[name]} for label, name in CTIT_BUCKETS],
        "series": series_points,
        "os": by_os,
        "links": links,
        "campaigns": campaign_figures(filters=filters),
    }


def campaign_figures(*, filters: DashboardFilters) -> list[dict[str, Any]]:
    """Per activity: page views, visitors (sum of hourly estimates), claims, orders,
    revenue. Link filters do not apply (campaign rollups have no link); the activity does."""
    from activities.models import Activity

    start, end = _bounds(filters)
    rows = CampaignRollup.objects.filter(
        bucket_minutes=BucketMinutes.HOUR, bucket_start__gte=start, bucket_start__lt=end
    )
    if filters.activity_id is not None:
        rows = rows.filter(activity_id=filters.activity_id)
    columns = ("page_views", "unique_visitors", "claims", "redemptions", "orders_placed", "orders_paid", "revenue_fen")
    grouped = list(rows.values("activity_id").annotate(**_sums(columns)).order_by("-revenue_fen", "activity_id"))
    names = dict(Activity.objects.filter(id__in=[r["activity_id"] for r in grouped]).values_list("id", "name"))
    return [
        {"activity_id": r["activity_id"], "name": names.get(r["activity_id"], "(deleted)"), **_clean(r, columns)}
        for r in grouped
    ]


def today_figures() -> dict[str, Any]:
    """Today's (local) clicks, activations, attributed and attribution rate: the admin index."""
    today = timezone.localdate()
    filters = DashboardFilters(start=today, end=today)
    sums = _link_rows(filters).aggregate(**_sums(("clicks", "activations", "attributed")))
    figures = {name: int(value or 0) for name, value in sums.items()}
    return {**figures, "attribution_rate": _rate(figures["attributed"], figures["clicks"]), "day": today}


# The tables the page shows and exports: key -> (title, [(column, heading)]). Titles and
# headings follow the active language (the exports' heading row too); column keys stay.
TABLES = {
    "links": (
        _("Links"),
        [
            ("link_id", _("link")),
            ("name", _("campaign")),
            ("platform", _("platform")),
            ("clicks", _("clicks")),
            ("activations", _("activations")),
            ("attributed", _("attributed")),
            ("attribution_rate", _("attribution rate")),
            ("fraud_flagged", _("fraud flagged")),
            ("fraud_rejected", _("fraud rejected")),
            ("registers", _("registers")),
            ("pays", _("pays")),
            ("pay_amount_fen", _("pay amount (fen)")),
        ],
    ),
    "campaigns": (
        _("Campaigns"),
        [
            ("activity_id", _("activity")),
            ("name", _("name")),
            ("page_views", _("page views")),
            ("unique_visitors", _("visitors")),
            ("claims", _("claims")),
            ("redemptions", _("redemptions")),
            ("orders_placed", _("orders placed")),
            ("orders_paid", _("orders paid")),
            ("revenue_fen", _("revenue (fen)")),
        ],
    ),
    "series": (
        _("Over time"),
        [
            ("at", _("time")),
            ("clicks", _("clicks")),
            ("activations", _("activations")),
            ("attributed", _("attributed")),
            ("organic", _("organic")),
            ("attribution_rate", _("attribution rate")),
            ("registers", _("registers")),
            ("pays", _("pays")),
            ("pay_amount_fen", _("pay amount (fen)")),
        ],
    ),
}


def table_rows(*, data: dict[str, Any], table: str) -> tuple[list[str], list[list[Any]]]:
    """Headings and rows of one of TABLES, from dashboard_data's result."""
    _title, columns = TABLES[table]
    headings = [str(heading) for _name, heading in columns]
    return headings, [[row.get(name) for name, _heading in columns] for row in data[table]]
