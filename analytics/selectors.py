"""Reads of the rollups (never write). Shared by the daily report and the dashboard."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from email.header import decode_header, make_header
from pathlib import Path
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import QuerySet, Sum

from analytics.models import BucketMinutes, CampaignRollup, LinkCost, LinkRollup

LINK_COUNTERS = (
    "clicks",
    "activations",
    "attributed",
    "organic",
    "reinstalls",
    "registers",
    "pays",
    "pay_amount_fen",
    "ctit_lt_10s",
    "ctit_10_60s",
    "ctit_1_10m",
    "ctit_10_60m",
    "ctit_1_24h",
    "ctit_gt_24h",
    "postbacks_succeeded",
    "postbacks_failed",
    "fraud_flagged",
    "fraud_rejected",
)
CAMPAIGN_COUNTERS = ("page_views", "unique_visitors", "claims", "orders_placed", "orders_paid", "revenue_fen")


def local_day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a local day (settings.TIME_ZONE) as aware datetimes."""
    zone = ZoneInfo(settings.TIME_ZONE)
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


def local_day_of(moment: datetime) -> date:
    """The local date (settings.TIME_ZONE) of an instant: the day an hourly bucket belongs to."""
    return moment.astimezone(ZoneInfo(settings.TIME_ZONE)).date()


def _sums(queryset: QuerySet, counters: tuple[str, ...], group: tuple[str, ...]) -> list[dict]:
    rows = queryset.values(*group).annotate(**{c: Sum(c) for c in counters}).order_by(*group)
    return [{k: (v or 0) if k in counters else v for k, v in row.items()} for row in rows]


def link_rollup_sums_for_days(*, start: date, end: date, group: tuple[str, ...] = ()) -> list[dict]:
    """Link rollups of the local days [start, end) summed per `group` (e.g. ("platform",),
    ("link_id", "os")); no group: one row of totals. Reads the day rows (the sums of the
    hourly rows, kept equal to them by the rollup job)."""
    first, _ = local_day_bounds(start)
    last, _ = local_day_bounds(end)
    rows = LinkRollup.objects.filter(bucket_minutes=BucketMinutes.DAY, bucket_start__gte=first, bucket_start__lt=last)
    if not group:
        totals = rows.aggregate(**{c: Sum(c) for c in LINK_COUNTERS})
        return [{c: totals[c] or 0 for c in LINK_COUNTERS}]
    return _sums(rows, LINK_COUNTERS, group)


def link_rollup_hours_of_day(*, day: date) -> list[dict]:
    """Clicks and activations of each hour of a local day (24 rows, zeros included)."""
    start, end = local_day_bounds(day)
    rows = LinkRollup.objects.filter(bucket_minutes=BucketMinutes.HOUR, bucket_start__gte=start, bucket_start__lt=end)
    found = {r["bucket_start"]: r for r in _sums(rows, ("clicks", "activations"), ("bucket_start",))}
    out = []
    for hour in range(24):
        row = found.get(start + timedelta(hours=hour))  # aware datetimes compare as instants
        out.append(
            {"hour": hour, "clicks": row["clicks"] if row else 0, "activations": row["activations"] if row else 0}
        )
    return out


def campaign_rollup_sums_for_days(*, start: date, end: date) -> list[dict]:
    """Campaign rollups of the local days [start, end) per activity (all components)."""
    first, _ = local_day_bounds(start)
    last, _ = local_day_bounds(end)
    rows = CampaignRollup.objects.filter(
        bucket_minutes=BucketMinutes.HOUR, bucket_start__gte=first, bucket_start__lt=last
    )
    return _sums(rows, CAMPAIGN_COUNTERS, ("activity_id",))


def link_cost_for_days(*, start: date, end: date) -> int:
    """Cost (fen) entered for the days [start, end), all links together."""
    return LinkCost.objects.filter(day__gte=start, day__lt=end).aggregate(fen=Sum("cost_fen"))["fen"] or 0


def link_cost_per_link_for_days(*, start: date, end: date) -> dict[int, int]:
    """Cost (fen) entered for the days [start, end), per link id."""
    rows = LinkCost.objects.filter(day__gte=start, day__lt=end).values("link_id").annotate(fen=Sum("cost_fen"))
    return {r["link_id"]: r["fen"] or 0 for r in rows}


# --- the development mail folder (no EMAIL_HOST: Django's file backend) ---------------
FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
_MAIL_FILE = re.compile(r"^[\w.-]{1,200}\.log$")


@dataclass(frozen=True)
class LocalMail:
    name: str
    modified: datetime
    size: int
    subjects: list[str]


def local_mail_folder() -> Path | None:
    """Where mail lands when it is not sent (the file backend), else None."""
    if settings.EMAIL_BACKEND != FILE_BACKEND or not getattr(settings, "EMAIL_FILE_PATH", ""):
        return None
    return Path(settings.EMAIL_FILE_PATH)


def _subjects(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        if line.startswith("Subject: "):
            try:
                out.append(str(make_header(decode_header(line[9:]))))
            except (ValueError, LookupError):
                out.append(line[9:])
    return out


def local_mails(*, limit: int = 200) -> list[LocalMail]:
    """The newest mail files of the development folder (each holds one or more messages)."""
    folder = local_mail_folder()
    if folder is None or not folder.is_dir():
        return []
    files = sorted(
        (p for p in folder.iterdir() if p.is_file() and _MAIL_FILE.match(p.name)),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )[:limit]
    return [
        LocalMail(
            name=p.name,
            modified=datetime.fromtimestamp(p.stat().st_mtime, tz=UTC),
            size=p.stat().st_size,
            subjects=_subjects(p.read_text(errors="replace")[:200_000]),
        )
        for p in files
    ]


def local_mail_text(*, name: str) -> str | None:
    """The raw text of one mail file of the folder, or None (no folder, bad or unknown name)."""
    folder = local_mail_folder()
    if folder is None or not _MAIL_FILE.match(name):
        return None
    path = folder / name
    return path.read_text(errors="replace") if path.is_file() else None
