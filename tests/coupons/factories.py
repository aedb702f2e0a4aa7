"""Coupon test data, built through the services as an operator would."""

from __future__ import annotations

from datetime import datetime

import factory

from components import registry
from coupons.models import CouponTemplate, ValidityKind
from coupons.services import coupon_pack_create
from tests.factories import ActivityFactory, ComponentFactory


class CouponTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CouponTemplate

    name = factory.Sequence(lambda n: f"满100减{n % 50 + 1}")
    kind = "threshold"
    value = 1000
    min_spend_fen = 10000
    validity_kind = ValidityKind.RELATIVE
    valid_days = 7


def coupon_pack_make(
    *,
    total_stock: int = 100,
    per_user_limit: int = 1,
    templates: list[tuple[CouponTemplate, int]] | None = None,
    activity_status: str = "online",
    claim_starts_at: datetime | None = None,
    claim_ends_at: datetime | None = None,
    enabled: bool = True,
    redis_gate: bool = False,
    stock_shards: int = 1,
):
    """A coupon_pack component on an online activity, with its pack."""
    activity = ActivityFactory(status=activity_status)
    component = ComponentFactory(
        activity=activity, type="coupon_pack", config=registry.config_validate("coupon_pack", {})
    )
    if templates is None:
        templates = [
            (CouponTemplateFactory(kind="threshold", value=1000, min_spend_fen=10000), 2),
            (CouponTemplateFactory(kind="fixed", value=500, min_spend_fen=0, name="无门槛5元"), 1),
        ]
    return coupon_pack_create(
        component=component,
        name="双十二券包",
        total_stock=total_stock,
        per_user_limit=per_user_limit,
        items=templates,
        claim_starts_at=claim_starts_at,
        claim_ends_at=claim_ends_at,
        enabled=enabled,
        redis_gate=redis_gate,
        stock_shards=stock_shards,
    )
