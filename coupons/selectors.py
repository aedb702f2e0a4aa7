"""Coupon reads: wallet, live state of a pack, payloads, counters."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from components.models import Component
from coupons.models import (
    Claim,
    ClaimSource,
    Coupon,
    CouponKind,
    CouponPack,
    CouponStatus,
    CouponStockShard,
    CouponTemplate,
    RedeemCode,
    ValidityKind,
)

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

WALLET_STATUSES = (CouponStatus.UNUSED, CouponStatus.USED, CouponStatus.EXPIRED)


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 in the platform's time zone (Asia/Shanghai: +08:00), as the rest of the API."""
    return timezone.localtime(value).isoformat() if value is not None else None


def coupon_effective_status(coupon: Coupon, now: datetime) -> str:
    """An unused coupon past its validity is expired even before the beat job marks it."""
    if coupon.status == CouponStatus.UNUSED and now >= coupon.valid_until:
        return CouponStatus.EXPIRED
    return coupon.status


def wallet_coupons(*, user_id: str, status: str | None = None, now: datetime | None = None) -> QuerySet[Coupon]:
    now = now or timezone.now()
    qs = Coupon.objects.filter(user_id=user_id).select_related("template", "claim")
    if status == CouponStatus.UNUSED:
        qs = qs.filter(status=CouponStatus.UNUSED, valid_until__gt=now).order_by("valid_until", "id")
    elif status == CouponStatus.USED:
        qs = qs.filter(status=CouponStatus.USED).order_by("-used_at", "-id")
    elif status == CouponStatus.EXPIRED:
        qs = qs.filter(Q(status=CouponStatus.EXPIRED) | Q(status=CouponStatus.UNUSED, valid_until__lte=now)).order_by(
            "-valid_until", "-id"
        )
    else:
        qs = qs.order_by("-created_at", "-id")
    return qs


def coupon_payload(coupon: Coupon, *, now: datetime | None = None) -> dict[str, Any]:
    """The coupon shape of contracts §6, with a few more fields."""
    now = now or timezone.now()
    template = coupon.template
    return {
        "code": coupon.code,
        "name": template.name,
        "kind": template.kind,
        "value": template.value,
        "min_spend_fen": template.min_spend_fen,
        "max_discount_fen": template.max_discount_fen,
        "status": coupon_effective_status(coupon, now),
        "valid_from": _iso(coupon.valid_from),
        "valid_until": _iso(coupon.valid_until),
        "usage_notes": template.usage_notes,
        "pack_id": coupon.claim.pack_id,
        "order_id": coupon.order_id or None,
        "used_at": _iso(coupon.used_at),
        "claimed_at": _iso(coupon.created_at),
    }


def claim_payload(claim: Claim) -> dict[str, Any]:
    """The answer of a claim. A claim just made carries its coupons (`issued`,
    in insertion order, as the rows are), so nothing is read back."""
    if claim.issued is not None:
        coupons = list(claim.issued)
    else:
        coupons = list(claim.coupons.select_related("template", "claim").order_by("id"))
    pack = claim.pack
    return {
        "claim_id": claim.pk,
        "pack_id": pack.pk,
        "pack_name": pack.name,
        "source": claim.source,
        "sequence": claim.sequence,
        "claimed_at": _iso(claim.claimed_at),
        "coupons": [coupon_payload(coupon) for coupon in coupons],
    }


def _yuan(fen: int) -> str:
    return f"{fen // 100}" if fen % 100 == 0 else f"{fen / 100:.2f}".rstrip("0")


def coupon_label(template: CouponTemplate) -> str:
    """How the page names a coupon: 满100减10, 无门槛减5元, 8.5折."""
    if template.kind == CouponKind.PERCENT:
        rate = (100 - template.value) / 10
        label = f"{rate:g}折"
        if template.min_spend_fen:
            label = f"满{_yuan(template.min_spend_fen)}享{label}"
        if template.max_discount_fen is not None:
            label += f"（最高减{_yuan(template.max_discount_fen)}元）"
        return label
    if template.min_spend_fen:
        return f"满{_yuan(template.min_spend_fen)}减{_yuan(template.value)}"
    return f"无门槛减{_yuan(template.value)}元"


def validity_describe(template: CouponTemplate) -> dict[str, Any]:
    if template.validity_kind == ValidityKind.ABSOLUTE:
        return {
            "kind": "absolute",
            "valid_from": _iso(template.valid_from),
            "valid_until": _iso(template.valid_until),
        }
    return {"kind": "relative", "days": template.valid_days}


def coupon_pack_public(pack: CouponPack | None) -> dict[str, Any] | None:
    """What the page shows of a pack (frozen into the published snapshot)."""
    if pack is None:
        return None
    return {
        "id": pack.pk,
        "name": pack.name,
        "description": pack.description,
        "total_stock": pack.total_stock,
        "per_user_limit": pack.per_user_limit,
        "claim_starts_at": _iso(pack.claim_starts_at),
        "claim_ends_at": _iso(pack.claim_ends_at),
        "coupons": [
            {
                "name": item.template.name,
                "label": coupon_label(item.template),
                "kind": item.template.kind,
                "value": item.template.value,
                "min_spend_fen": item.template.min_spend_fen,
                "max_discount_fen": item.template.max_discount_fen,
                "quantity": item.quantity,
                "validity": validity_describe(item.template),
                "usage_notes": item.template.usage_notes,
            }
            for item in pack.items.select_related("template").order_by("id")
        ],
    }


def coupon_pack_remaining(*, pack: CouponPack) -> int:
    """Packs left to claim: the pack's counter plus its stock shards' (hot packs)."""
    if pack.stock_shards <= 1 and not CouponStockShard.objects.filter(pack_id=pack.pk).exists():
        return pack.remaining
    shards = CouponStockShard.objects.filter(pack_id=pack.pk).aggregate(total=Sum("remaining"))["total"] or 0
    return pack.remaining + shards


def coupon_pack_live_state(*, component: Component, user: Any = None, now: datetime | None = None) -> dict[str, Any]:
    """Per-request state of a coupon_pack component: remaining stock and what the
    user can do (`state`: can_claim, claimed, sold_out, not_started, ended,
    disabled; `unavailable` when no pack is attached)."""
    now = now or timezone.now()
    pack = CouponPack.objects.filter(component=component).first()
    if pack is None:
        return {"state": "unavailable", "can_claim": False, "remaining": 0, "total_stock": 0}
    user_id = getattr(user, "id", None) if getattr(user, "is_authenticated", False) else None
    claimed = 0
    if user_id is not None:
        claimed = Claim.objects.filter(pack=pack, user_id=str(user_id), source=ClaimSource.PAGE).count()
    remaining = coupon_pack_remaining(pack=pack)
    if not pack.enabled or not component.enabled:
        state = "disabled"
    elif pack.claim_starts_at and now < pack.claim_starts_at:
        state = "not_started"
    elif pack.claim_ends_at and now >= pack.claim_ends_at:
        state = "ended"
    elif claimed >= pack.per_user_limit:
        state = "claimed"
    elif remaining <= 0:
        state = "sold_out"
    else:
        state = "can_claim"
    return {
        "state": state,
        "can_claim": state == "can_claim",
        "remaining": remaining,
        "total_stock": pack.total_stock,
        "claimed_count": claimed,
        "per_user_limit": pack.per_user_limit,
        "claim_starts_at": _iso(pack.claim_starts_at),
        "claim_ends_at": _iso(pack.claim_ends_at),
        "authenticated": user_id is not None,
    }


def coupon_pack_audit(*, pack_id: int) -> dict[str, int]:
    """Counters and rows of a pack, for the on-call engineer and the tests:
    `taken` (total_stock - remaining) must equal page claims + generated codes,
    and coupons must equal claims x coupons per pack."""
    pack = CouponPack.objects.get(pk=pack_id)
    per_pack = sum(pack.items.values_list("quantity", flat=True))
    claims = Claim.objects.filter(pack=pack).aggregate(
        page=Count("pk", filter=Q(source=ClaimSource.PAGE)), code=Count("pk", filter=Q(source=ClaimSource.CODE))
    )
    codes = RedeemCode.objects.filter(pack=pack).count()
    coupons = Coupon.objects.filter(claim__pack=pack).count()
    remaining = coupon_pack_remaining(pack=pack)
    taken = pack.total_stock - remaining
    return {
        "total_stock": pack.total_stock,
        "remaining": remaining,
        "taken": taken,
        "page_claims": claims["page"],
        "code_claims": claims["code"],
        "codes": codes,
        "coupons": coupons,
        "coupons_expected": (claims["page"] + claims["code"]) * per_pack,
        "drift": taken - claims["page"] - codes,
    }


class PackCounts(TypedDict):
    claims_count: int
    redeemed_count: int


def coupon_packs_with_counts() -> QuerySet[WithAnnotations[CouponPack, PackCounts]]:
    """Packs annotated with their claim count and redeemed (used) coupon count,
    as subqueries (no join fan-out), for the admin list."""
    claims = Claim.objects.filter(pack=OuterRef("pk")).order_by().values("pack").annotate(n=Count("pk")).values("n")
    redeemed = (
        Coupon.objects.filter(claim__pack=OuterRef("pk"), status=CouponStatus.USED)
        .order_by()
        .values("claim__pack")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return CouponPack.objects.annotate(
        claims_count=Coalesce(Subquery(claims, output_field=IntegerField()), 0),
        redeemed_count=Coalesce(Subquery(redeemed, output_field=IntegerField()), 0),
    )
