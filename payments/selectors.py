"""Paid sales: reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from components.models import Component
from payments.models import Entitlement, Order, OrderState, Product, ProductBuyer


def product_of_component(component_id: int) -> Product | None:
    return Product.objects.filter(component_id=component_id).first()


def sale_status(product: Product, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if product.sale_starts_at and now < product.sale_starts_at:
        return "not_started"
    if product.sale_ends_at and now >= product.sale_ends_at:
        return "ended"
    if product.held >= product.stock:
        return "sold_out"
    return "on_sale"


def _orders_public() -> QuerySet[Order]:
    """Orders with what OrderSerializer reads, in one query."""
    return Order.objects.select_related("product", "entitlement__product")


def order_for_user(*, user_id: str, order_no: str) -> Order | None:
    return _orders_public().filter(user_id=user_id, order_no=order_no).first()


def orders_for_user(*, user_id: str) -> QuerySet[Order]:
    return _orders_public().filter(user_id=user_id).order_by("-created_at", "-id")


def entitlements_for_user(*, user_id: str) -> QuerySet[Entitlement]:
    return (
        Entitlement.objects.select_related("order", "product")
        .filter(user_id=user_id, revoked_at__isnull=True)
        .order_by("-granted_at", "-id")
    )


def products_with_counts() -> QuerySet[Product]:
    """Products annotated with their sold (paid) and reserved (pending) orders, for the admin."""
    return Product.objects.annotate(
        sold_count=Count("orders", filter=Q(orders__state=OrderState.PAID)),
        reserved_count=Count("orders", filter=Q(orders__state=OrderState.PENDING)),
    )


def paid_sale_state(*, component: Component, user: Any) -> dict:
    """live_state of a `paid_sale` component: price, remaining stock, the user's state."""
    product = product_of_component(component.pk)
    if product is None:
        return {"available": False, "sale_status": "unavailable"}
    now = timezone.now()
    state: dict = {
        "available": True,
        "price_fen": product.price_fen,
        "stock": product.stock,
        "remaining": product.remaining,
        "sold_out": product.held >= product.stock,
        "sale_status": sale_status(product, now),
        "per_user_limit": product.per_user_limit,
        "user": None,
    }
    user_id = getattr(user, "id", None) if getattr(user, "is_authenticated", False) else None
    if user_id:
        buyer = ProductBuyer.objects.filter(product=product, user_id=user_id).first()
        pending = (
            Order.objects.filter(product=product, user_id=user_id, state=OrderState.PENDING, expires_at__gt=now)
            .exclude(paycode="")
            .order_by("-created_at")
            .first()
        )
        from payments.serializers import EntitlementSerializer  # serializers read products through this module

        entitlements = EntitlementSerializer(
            entitlements_for_user(user_id=str(user_id)).filter(product=product)[:5], many=True, context={"now": now}
        ).data
        held = buyer.held if buyer else 0
        state["user"] = {
            "held": held,
            "can_buy": held < product.per_user_limit and state["sale_status"] == "on_sale",
            "pending_order": {
                "order_no": pending.order_no,
                "cashier_url": pending.cashier_url,
                "expires_at": timezone.localtime(pending.expires_at).isoformat(),
                "amount_fen": pending.amount_fen,
            }
            if pending
            else None,
            "entitlements": entitlements,
        }
    return state
