"""Reads of the ad-report data (never write): their figures joined with ours.

Join key: (platform, account id, campaign id, ad id) as the platform names them. Ours
come from the platform's ids our clicks carry (contracts §1 `account`, `campaign`,
`ad`): clicks from the hourly `adclk` counters of the click path, installs from
the winning click kept on each Conversion, successful activation postbacks of those
conversions, and revenue from their pay events. Days are local (Asia/Shanghai), as
the platforms report them: an install counts on its activation day, revenue on the
day it was paid, our clicks on the day they arrived.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from adreports.models import AdDiscrepancy, AdManualCost, AdReportRow, AdWarning, Platform
from attribution import clicks as click_store
from attribution.models import Conversion, ConversionEvent, TrackingLink

LEVELS = ("account", "campaign", "ad")


def open_warnings() -> QuerySet[AdWarning]:
    return AdWarning.objects.filter(resolved_at__isnull=True).select_related("account").order_by("-last_at")


@dataclass
class Figures:
    """Their figures beside ours for one key (an account, campaign, ad or tracking link)."""

    key: tuple
    label: str = ""
    cost_fen: int = 0
    impressions: int = 0
    their_clicks: int = 0
    their_conversions: int = 0
    our_clicks: int = 0
    installs: int = 0
    postbacks_succeeded: int = 0
    revenue_fen: int = 0
    manual_cost_fen: int = 0
    ads: set = field(default_factory=set, repr=False)

    @property
    def spend_fen(self) -> int:
        return self.cost_fen + self.manual_cost_fen

    @property
    def cost_per_install_fen(self) -> int | None:
        if not self.installs:
            return None
        return int((Decimal(self.spend_fen) / self.installs).quantize(Decimal(1), rounding=ROUND_HALF_UP))

    @property
    def roas(self) -> Decimal | None:
        """Revenue / spend (1.00 = break-even), or None without spend."""
        if not self.spend_fen:
            return None
        return (Decimal(self.revenue_fen) / self.spend_fen).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _local_range(start: date, end: date) -> tuple[datetime, datetime]:
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(datetime.combine(start, time.min), tz),
        timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min), tz),
    )


def _utc_hours(start: date, end: date) -> list[str]:
    since, until = _local_range(start, end)
    hours, moment = [], since
    while moment < until:
        hours.append(click_store.hour_bucket(moment.timestamp()))
        moment += timedelta(hours=1)
    return hours


def _cut(key: tuple, level: str) -> tuple:
    return key[: 2 + LEVELS.index(level)]


def _ad_platforms() -> list[str]:
    return list(Platform.values)


def our_clicks(*, start: date, end: date) -> dict[tuple, int]:
    """Our clicks per (link id, platform, account, campaign, ad) in the local days."""
    links = dict(TrackingLink.objects.filter(platform__in=_ad_platforms()).values_list("pk", "platform"))
    counts = click_store.ad_click_counts(link_ids=list(links), hours=_utc_hours(start, end))
    return {(link_id, links[link_id], a, c, d): n for (link_id, a, c, d), n in counts.items()}


def _ours_by_conversion(start: date, end: date) -> list[Any]:
    since, until = _local_range(start, end)
    return list(
        Conversion.objects.filter(
            activated_at__gte=since, activated_at__lt=until, is_test=False, platform__in=_ad_platforms()
        )
        .annotate(
            account=KeyTextTransform("account", "click"),
            campaign=KeyTextTransform("campaign", "click"),
            ad=KeyTextTransform("ad", "click"),
        )
        .values("link_id", "platform", "account", "campaign", "ad")
        .annotate(
            installs=Count("id", distinct=True),
            postbacks_ok=Count(
                "postbacks", filter=Q(postbacks__status="succeeded", postbacks__event_type="activate"), distinct=True
            ),
        )
    )


def _revenue(start: date, end: date) -> list[Any]:
    since, until = _local_range(start, end)
    return list(
        ConversionEvent.objects.filter(
            event_type="pay",
            occurred_at__gte=since,
            occurred_at__lt=until,
            conversion__is_test=False,
            conversion__platform__in=_ad_platforms(),
        )
        .annotate(
            account=KeyTextTransform("account", "conversion__click"),
            campaign=KeyTextTransform("campaign", "conversion__click"),
            ad=KeyTextTransform("ad", "conversion__click"),
        )
        .values("conversion__link_id", "conversion__platform", "account", "campaign", "ad")
        .annotate(revenue=Sum("amount_fen"))
    )


def _theirs(start: date, end: date) -> list[Any]:
    return list(
        AdReportRow.objects.filter(day__gte=start, day__lte=end)
        .values("platform", "account__account_id", "campaign_id", "ad_id")
        .annotate(
            cost=Sum("cost_fen"), impressions=Sum("impressions"), clicks=Sum("clicks"), conversions=Sum("conversions")
        )
    )


def ad_performance(*, start: date, end: date, level: str = "ad") -> list[Figures]:
    """Spend, impressions, their clicks vs ours, their conversions vs our installs and
    successful postbacks, cost per install, revenue and ROAS, per account, campaign
    or ad (`level`) over the local days [start, end]. Sorted by spend."""
    if level not in LEVELS:
        raise ValueError(f"level is one of {LEVELS}")
    rows: dict[tuple, Figures] = {}

    def at(platform: str, account: str | None, campaign: str | None, ad: str | None) -> Figures:
        key = _cut((platform, account or "", campaign or "", ad or ""), level)
        if key not in rows:
            rows[key] = Figures(key=key, label=" / ".join(part for part in key if part))
        return rows[key]

    for r in _theirs(start, end):
        figures = at(r["platform"], r["account__account_id"], r["campaign_id"], r["ad_id"])
        figures.cost_fen += r["cost"]
        figures.impressions += r["impressions"]
        figures.their_clicks += r["clicks"]
        figures.their_conversions += r["conversions"]
    for (_, platform, account, campaign, ad), n in our_clicks(start=start, end=end).items():
        at(platform, account, campaign, ad).our_clicks += n
    for r in _ours_by_conversion(start, end):
        figures = at(r["platform"], r["account"], r["campaign"], r["ad"])
        figures.installs += r["installs"]
        figures.postbacks_succeeded += r["postbacks_ok"]
    for r in _revenue(start, end):
        at(r["conversion__platform"], r["account"], r["campaign"], r["ad"]).revenue_fen += r["revenue"] or 0
    return sorted(rows.values(), key=lambda f: (-f.spend_fen, f.key))


def link_performance(*, start: date, end: date) -> list[Figures]:
    """The same figures per tracking link: ours by the link, theirs summed over the ads
    whose clicks came through the link (an ad on two links counts on both), plus the
    costs typed in by hand for the link."""
    links = {link.pk: link for link in TrackingLink.objects.all()}
    rows: dict[int, Figures] = {}

    def at(link_id: int) -> Figures:
        if link_id not in rows:
            link = links.get(link_id)
            rows[link_id] = Figures(key=(link_id,), label=str(link) if link else f"link {link_id}")
        return rows[link_id]

    for (link_id, platform, account, campaign, ad), n in our_clicks(start=start, end=end).items():
        figures = at(link_id)
        figures.our_clicks += n
        figures.ads.add((platform, account, campaign, ad))
    for r in _ours_by_conversion(start, end):
        figures = at(r["link_id"])
        figures.installs += r["installs"]
        figures.postbacks_succeeded += r["postbacks_ok"]
        figures.ads.add((r["platform"], r["account"] or "", r["campaign"] or "", r["ad"] or ""))
    for r in _revenue(start, end):
        at(r["conversion__link_id"]).revenue_fen += r["revenue"] or 0
    theirs = {(r["platform"], r["account__account_id"], r["campaign_id"], r["ad_id"]): r for r in _theirs(start, end)}
    for figures in rows.values():
        for ad in figures.ads:
            r = theirs.get(ad)
            if r:
                figures.cost_fen += r["cost"]
                figures.impressions += r["impressions"]
                figures.their_clicks += r["clicks"]
                figures.their_conversions += r["conversions"]
    for r in AdManualCost.objects.filter(day__gte=start, day__lte=end).values("link_id").annotate(cost=Sum("cost_fen")):
        at(r["link_id"]).manual_cost_fen += r["cost"]
    return sorted(rows.values(), key=lambda f: (-f.spend_fen, f.key))


def account_day_comparison(*, day: date) -> dict[tuple[str, str], dict[str, int]]:
    """Per (platform, account id) on one day: their clicks and conversions, our clicks
    and successful activation postbacks (what the discrepancy check compares)."""
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(
        lambda: {"their_clicks": 0, "our_clicks": 0, "their_conversions": 0, "postbacks": 0}
    )
    for figures in ad_performance(start=day, end=day, level="account"):
        entry = out[figures.key]
        entry["their_clicks"] += figures.their_clicks
        entry["our_clicks"] += figures.our_clicks
        entry["their_conversions"] += figures.their_conversions
        entry["postbacks"] += figures.postbacks_succeeded
    return dict(out)


def discrepancies(
    *, day: date | None = None, start: date | None = None, end: date | None = None
) -> QuerySet[AdDiscrepancy]:
    """The discrepancies beyond the tolerance, per day and account (for the admin and
    the daily report): one day, or a range."""
    queryset = AdDiscrepancy.objects.select_related("account")
    if day is not None:
        queryset = queryset.filter(day=day)
    if start is not None:
        queryset = queryset.filter(day__gte=start)
    if end is not None:
        queryset = queryset.filter(day__lte=end)
    return queryset.order_by("-day", "-large", "account__platform", "account__account_id", "metric")
