"""Paid sales: reads."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from payments.models import Entitlement, Order, OrderState, Product, ProductBuyer


def product_of_component(component_id: int) -> Product | None:
    return Product.objects.filter(component_id=component_id).first()


def sale_status(product: Product, now=None) -> str:
    now = now or timezone.now()
    if product.sale_starts_at and now < product.sale_starts_at:
        return "not_started"
    if product.sale_ends_at and now >= product.sale_ends_at:
        return "ended"
    if product.held >= product.stock:
        return "sold_out"
    return "on_sale"


def _orders_public() -> QuerySet[Order]:
    """Orders with what order_public reads, in one query."""
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


def entitlement_public(entitlement: Entitlement, now=None) -> dict:
    now = now or timezone.now()
    return {
        "kind": entitlement.kind,
        "product": entitlement.product.name,
        "quantity": entitlement.quantity,
        "granted_at": timezone.localtime(entitlement.granted_at).isoformat(),
        "valid_from": timezone.localtime(entitlement.valid_from).isoformat(),
        "valid_until": timezone.localtime(entitlement.valid_until).isoformat() if entitlement.valid_until else None,
        "active": entitlement.valid_until is None or entitlement.valid_until > now,
        "order_no": entitlement.order.order_no,
    }


def order_public(order: Order) -> dict:
    try:
        entitlement = order.entitlement  # OneToOne: at most one, ever
    except Entitlement.DoesNotExist:
        entitlement = None
    if entitlement is not None and entitlement.revoked_at is not None:
        entitlement = None
    return {
        "order_no": order.order_no,
        "status": order.state,
        "amount_fen": order.amount_fen,
        "product": {"id": order.product_id, "name": order.product.name},
        "paycode": order.paycode or None,
        "cashier_url": order.cashier_url or None,
        "expires_at": timezone.localtime(order.expires_at).isoformat(),
        "paid_at": timezone.localtime(order.paid_at).isoformat()
        if order.paid_at and order.state == OrderState.PAID
        else None,
        "closed_at": timezone.localtime(order.closed_at).isoformat() if order.closed_at else None,
        "close_cause": order.close_cause or None,
        "refund_required": order.refund_required,
        "created_at": timezone.localtime(order.created_at).isoformat(),
        "entitlement": entitlement_public(entitlement) if entitlement else None,
    }


def products_with_counts() -> QuerySet[Product]:
    """Products annotated with their sold (paid) and reserved (pending) orders, for the admin."""
    return Product.objects.annotate(
        sold_count=Count("orders", filter=Q(orders__state=OrderState.PAID)),
        reserved_count=Count("orders", filter=Q(orders__state=OrderState.PENDING)),
    )


def paid_sale_state(*, component, user) -> dict:
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
        entitlements = [
            entitlement_public(e, now) for e in entitlements_for_user(user_id=str(user_id)).filter(product=product)[:5]
        ]
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
