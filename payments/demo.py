"""Demo data: a paid_sale component selling a 30-day membership on the demo
activity. Idempotent. Buy it at /a/demo/ with a token from
`manage.py mint_user_token`; `make run` pays through the sandbox cashier."""

from __future__ import annotations

from activities import services as activity_services
from activities.demo import demo_activity
from components.models import Component
from payments.models import EntitlementKind, Product
from payments.services import product_create


def seed(stdout) -> None:
    activity = demo_activity()
    component = Component.objects.filter(activity=activity, type="paid_sale").first()
    if component is None:
        component = activity_services.component_create(
            activity=activity,
            actor=None,
            type="paid_sale",
            title="会员限时购",
            config={"button_text": "立即购买", "show_stock": True, "note": "支付成功后权益即时到账；每人限购 1 份。"},
        )
    product = Product.objects.filter(component=component).first()
    if product is None:
        product = product_create(
            component=component,
            name="VIP 月卡（30 天）",
            description="30 天会员：免广告、专属客服、每月 3 次免费加急。",
            price_fen=990,
            stock=500,
            per_user_limit=1,
            entitlement_kind=EntitlementKind.MEMBERSHIP,
            entitlement_days=30,
        )
    stdout.write(
        f"payments: {product.name!r} on /a/{activity.slug}/ for ¥{product.price_fen / 100:.2f} "
        f"({product.remaining}/{product.stock} left); pay in the sandbox cashier"
    )
