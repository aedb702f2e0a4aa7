"""Demo data: a coupon_pack component on the demo activity, with its pack and a
few offline codes to try code redemption with. Idempotent."""

from __future__ import annotations

from activities import services as activity_services
from activities.demo import demo_activity
from components.models import Component
from coupons.models import CouponPack, CouponTemplate, RedeemCode, ValidityKind
from coupons.services import coupon_pack_create, redeem_codes_generate

DEMO_TEMPLATES = (
    {"name": "满100减20", "kind": "threshold", "value": 2000, "min_spend_fen": 10000, "valid_days": 7},
    {"name": "无门槛5元", "kind": "fixed", "value": 500, "min_spend_fen": 0, "valid_days": 3},
    {"name": "全场9折", "kind": "percent", "value": 10, "min_spend_fen": 0, "max_discount_fen": 5000, "valid_days": 14},
)
DEMO_CODE_BATCH = "demo"


def _template(spec: dict) -> CouponTemplate:
    template = CouponTemplate.objects.filter(name=spec["name"]).first()
    if template is None:
        template = CouponTemplate.objects.create(
            validity_kind=ValidityKind.RELATIVE, usage_notes="仅限双十二活动商品使用，不与其他优惠同享。", **spec
        )
    return template


def seed(stdout) -> None:
    activity = demo_activity()
    component = Component.objects.filter(activity=activity, type="coupon_pack").first()
    if component is None:
        component = activity_services.component_create(
            activity=activity,
            actor=None,
            type="coupon_pack",
            title="领券中心",
            config={"button_text": "一键领取", "note": "券包数量有限，领完即止；每人限领 2 次。"},
        )
    pack = CouponPack.objects.filter(component=component).first()
    if pack is None:
        pack = coupon_pack_create(
            component=component,
            name="双十二新人券包",
            description="3 张券：满减、无门槛、全场折扣",
            total_stock=1000,
            per_user_limit=2,
            items=[(_template(spec), 1) for spec in DEMO_TEMPLATES],
        )
    if not RedeemCode.objects.filter(pack=pack, batch=DEMO_CODE_BATCH).exists():
        redeem_codes_generate(pack=pack, count=5, batch=DEMO_CODE_BATCH)
    free = RedeemCode.objects.filter(pack=pack, batch=DEMO_CODE_BATCH, redeemed_at__isnull=True).first()
    stdout.write(
        f"coupons: pack {pack.name!r} on /a/{activity.slug}/ ({pack.remaining}/{pack.total_stock} left)"
        + (f"; try offline code {free.code}" if free else "")
    )
