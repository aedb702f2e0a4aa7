"""Writes: campaign rollups per activity and component, the closed loop per link,
daily cost per link (docs/analytics.md).

Sources: page views and visitors from `analytics.counters` (Redis), claims
(`coupons.Claim`, by claimed_at), redemptions (`coupons.Coupon` used, by used_at),
orders (`payments.Order`: placed by created_at, paid by paid_at, refunded by
refunded_at). A component's activity is its `Component.activity`."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from activities.models import Activity
from analytics import counters
from analytics.models import CampaignRollup, LinkCampaign, LinkCost, LinkOutcomeRollup, RollupRun
from attribution.clicks import hour_bucket
from attribution.models import Conversion, TrackingLink
from core.errors import DomainError
from core.redis import get_redis
from coupons.models import Claim, Coupon, CouponStatus
from payments.models import Order, OrderState

CAMPAIGNS = "campaigns"


def _hour(start: datetime) -> tuple[datetime, datetime]:
    from analytics.services import bucket_floor

    start = bucket_floor(start, 60)
    return start, start + timedelta(hours=1)


def _views(rows: dict, start: datetime) -> None:
    hour = hour_bucket(start.timestamp())
    client = get_redis()
    views = {
        k.decode() if isinstance(k, bytes) else k: int(v) for k, v in client.hgetall(counters.views_key(hour)).items()
    }
    if not views:
        return
    ids = dict(Activity.objects.filter(slug__in=list(views)).values_list("slug", "id"))
    slugs = [slug for slug in views if slug in ids]
    pipe = client.pipeline(transaction=False)
    for slug in slugs:
        pipe.pfcount(counters.visitors_key(slug, hour))
    for slug, visitors in zip(slugs, pipe.execute(), strict=True):
        row = rows[(ids[slug], 0)]
        row["page_views"] += views[slug]
        row["unique_visitors"] = visitors


def campaign_rollup_rows(*, start: datetime) -> list[CampaignRollup]:
    start, end = _hour(start)
    rows: dict[tuple[int, int], dict] = defaultdict(
        lambda: {
            "page_views": 0,
            "unique_visitors": None,
            "claims": 0,
            "redemptions": 0,
            "orders_placed": 0,
            "orders_paid": 0,
            "revenue_fen": 0,
            "refunds": 0,
            "refund_fen": 0,
        }
    )
    _views(rows, start)
    claims = Claim.objects.filter(claimed_at__gte=start, claimed_at__lt=end, pack__component__isnull=False)
    for item in claims.values("pack__component_id", "pack__component__activity_id").annotate(n=Count("id")):
        rows[(item["pack__component__activity_id"], item["pack__component_id"])]["claims"] += item["n"]
    used = Coupon.objects.filter(
        status=CouponStatus.USED, used_at__gte=start, used_at__lt=end, claim__pack__component__isnull=False
    )
    keys = ("claim__pack__component__activity_id", "claim__pack__component_id")
    for item in used.values(*keys).annotate(n=Count("id")):
        rows[(item[keys[0]], item[keys[1]])]["redemptions"] += item["n"]
    keys = ("product__component__activity_id", "product__component_id")
    for column, money, field, states in (
        ("orders_placed", None, "created_at", None),
        ("orders_paid", "revenue_fen", "paid_at", ("paid", "refunded")),
        ("refunds", "refund_fen", "refunded_at", ("refunded",)),
    ):
        orders = Order.objects.filter(**{f"{field}__gte": start, f"{field}__lt": end})
        if states:
            orders = orders.filter(state__in=states)
        for item in orders.values(*keys).annotate(n=Count("id"), fen=Sum("paid_amount_fen")):
            row = rows[(item[keys[0]], item[keys[1]])]
            row[column] += item["n"]
            if money:
                row[money] += item["fen"] or 0
    now = timezone.now()
    return [
        CampaignRollup(bucket_start=start, activity_id=a, component_id=c, rolled_at=now, **values)
        for (a, c), values in sorted(rows.items())
    ]


def link_outcome_rows(*, start: datetime) -> list[LinkOutcomeRollup]:
    """The closed loop of one hour: each claim and paid order on an advertised activity
    goes to the link of the user's latest conversion within that link's window."""
    start, end = _hour(start)
    mapped = list(LinkCampaign.objects.select_related("link"))
    if not mapped:
        return []
    by_activity: dict[int, list[LinkCampaign]] = defaultdict(list)
    for item in mapped:
        by_activity[item.activity_id].append(item)
    facts: list[tuple[str, int, datetime, str, int]] = []  # user, activity, when, kind, fen
    claims = Claim.objects.filter(
        claimed_at__gte=start, claimed_at__lt=end, pack__component__activity_id__in=list(by_activity)
    )
    for user_id, activity_id, when in claims.values_list("user_id", "pack__component__activity_id", "claimed_at"):
        facts.append((user_id, activity_id, when, "claims", 0))
    paid = Order.objects.filter(
        paid_at__gte=start,
        paid_at__lt=end,
        state__in=(OrderState.PAID, OrderState.REFUNDED),
        product__component__activity_id__in=list(by_activity),
    )
    for user_id, activity_id, paid_at, fen in paid.values_list(
        "user_id", "product__component__activity_id", "paid_at", "paid_amount_fen"
    ):
        if paid_at is not None:  # always set on paid and refunded orders (filtered on above)
            facts.append((user_id, activity_id, paid_at, "orders_paid", fen or 0))
    if not facts:
        return []
    longest = max(item.window_days for item in mapped)
    conversions: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for user_id, link_id, activated_at in Conversion.objects.filter(
        user_id__in={f[0] for f in facts},
        link_id__in=[item.link_id for item in mapped],
        is_test=False,
        activated_at__gte=start - timedelta(days=longest),
        activated_at__lt=end,
    ).values_list("user_id", "link_id", "activated_at"):
        conversions[user_id].append((activated_at, link_id))
    links = {item.link_id: item for item in mapped}
    rows: dict[int, dict] = defaultdict(lambda: {"claims": 0, "orders_paid": 0, "revenue_fen": 0})
    for user_id, activity_id, when, kind, fen in facts:
        eligible = [
            (activated_at, link_id)
            for activated_at, link_id in conversions.get(user_id, [])
            if links[link_id].activity_id == activity_id
            and activated_at <= when < activated_at + timedelta(days=links[link_id].window_days)
        ]
        if not eligible:
            continue
        _, link_id = max(eligible)
        row = rows[link_id]
        row[kind] += 1
        if kind == "orders_paid":
            row["revenue_fen"] += fen
    now = timezone.now()
    return [
        LinkOutcomeRollup(
            bucket_start=start,
            link_id=link_id,
            platform=links[link_id].link.platform,
            activity_id=links[link_id].activity_id,
            rolled_at=now,
            **values,
        )
        for link_id, values in sorted(rows.items())
    ]


@transaction.atomic
def campaign_rollup_hour(*, start: datetime) -> RollupRun:
    """Rebuild one hour of campaign and closed-loop rows (idempotent)."""
    start, _ = _hour(start)
    RollupRun.objects.get_or_create(kind=CAMPAIGNS, bucket_minutes=60, bucket_start=start)
    run = RollupRun.objects.select_for_update().get(kind=CAMPAIGNS, bucket_minutes=60, bucket_start=start)
    rows = campaign_rollup_rows(start=start)
    outcomes = link_outcome_rows(start=start)
    CampaignRollup.objects.filter(bucket_minutes=60, bucket_start=start).delete()
    CampaignRollup.objects.bulk_create(rows, batch_size=1000)
    LinkOutcomeRollup.objects.filter(bucket_start=start).delete()
    LinkOutcomeRollup.objects.bulk_create(outcomes, batch_size=1000)
    run.rows = len(rows) + len(outcomes)
    run.rolled_at = timezone.now()
    run.save(update_fields=["rows", "rolled_at"])
    return run


def campaign_rollup_range(*, start: datetime, end: datetime) -> list[RollupRun]:
    """Rebuild every hour that starts in [start, end)."""
    hour, _ = _hour(start)
    if hour < start:
        hour += timedelta(hours=1)
    runs = []
    while hour < end:
        runs.append(campaign_rollup_hour(start=hour))
        hour += timedelta(hours=1)
    return runs


# --- cost per link -----------------------------------------------------------------
@transaction.atomic
def link_cost_set(*, link: TrackingLink, day: date, cost_fen: int, note: str = "") -> LinkCost:
    if cost_fen < 0:
        raise DomainError(_("A cost cannot be negative."), code="invalid_cost")
    cost, _created = LinkCost.objects.update_or_create(
        link=link, day=day, defaults={"cost_fen": cost_fen, "note": note}
    )
    return cost


COST_CSV_COLUMNS = ("link_token", "day", "cost_yuan")


@transaction.atomic
def link_costs_import(*, data: bytes) -> int:
    """A CSV with a header `link_token,day,cost_yuan` (UTF-8, BOM allowed; day YYYY-MM-DD;
    cost in yuan with up to 2 decimals). All rows or none: the first bad row is named."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError(_("The file is not UTF-8 text."), code="invalid_csv") from None
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not set(COST_CSV_COLUMNS) <= {f.strip() for f in reader.fieldnames}:
        raise DomainError(
            _("The header must name %(columns)s.") % {"columns": ", ".join(COST_CSV_COLUMNS)}, code="invalid_csv"
        )
    parsed = []
    for line, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        try:
            day = date.fromisoformat(row["day"])
            yuan, _point, cents = row["cost_yuan"].partition(".")
            if not yuan.isdigit() or (cents and (not cents.isdigit() or len(cents) > 2)):
                raise ValueError
            fen = int(yuan) * 100 + int((cents + "00")[:2])
        except ValueError:
            raise DomainError(
                _("Line %(line)s: day must be YYYY-MM-DD and cost_yuan like 1234.56.") % {"line": line},
                code="invalid_csv",
            ) from None
        parsed.append((line, row["link_token"], day, fen))
    links = TrackingLink.objects.in_bulk({p[1] for p in parsed}, field_name="token")
    for line, token, _day, _fen in parsed:
        if token not in links:
            raise DomainError(
                _("Line %(line)s: no tracking link has the token %(token)s.") % {"line": line, "token": repr(token)},
                code="invalid_csv",
            )
    for _line, token, day, fen in parsed:
        link_cost_set(link=links[token], day=day, cost_fen=fen, note="CSV upload")
    return len(parsed)


@transaction.atomic
def link_cost_delete(*, cost: LinkCost) -> None:
    cost.delete()


# --- which activity a link advertises ------------------------------------------------
@transaction.atomic
def link_campaign_set(*, link: TrackingLink, activity: Activity, window_days: int = 7) -> LinkCampaign:
    item = LinkCampaign(link=link, activity=activity, window_days=window_days)
    item.full_clean(exclude=["link"], validate_unique=False)
    item, _ = LinkCampaign.objects.update_or_create(
        link=link, defaults={"activity": activity, "window_days": window_days}
    )
    return item


@transaction.atomic
def link_campaign_delete(*, item: LinkCampaign) -> None:
    item.delete()
