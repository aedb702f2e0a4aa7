"""Orders: stock, state moves, placing, closing, voiding and refunding.

Lock order: order, then product, then buyer (see the package docstring)."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from activities.models import ActivityStatus
from components.models import Component
from core.errors import Conflict, NotFound, Unavailable
from payments import client
from payments.models import (
    CloseCause,
    Entitlement,
    EntitlementKind,
    Order,
    OrderEvent,
    OrderState,
    Product,
    ProductBuyer,
)
from payments.selectors import sale_status

logger = logging.getLogger("huodong.payments")

PAID_TYPE = "paid_sale"


# --- stock ------------------------------------------------------------------


class _Refused(Exception):
    pass


def _stock_take(*, product_id: int, user_id: str, per_user_limit: int) -> str | None:
    """Reserve one unit for the user; returns None, or why not ("sold_out",
    "limit_reached") with nothing changed. Runs inside the caller's transaction.

    The product row is updated first: that takes its exclusive lock before any
    child row is inserted (an insert's foreign-key check takes a shared lock on
    the product, and two shared holders both upgrading would deadlock on InnoDB).
    Every path locks product, then buyer."""
    try:
        with transaction.atomic():
            if not Product.objects.filter(pk=product_id, held__lt=F("stock")).update(held=F("held") + 1):
                raise _Refused("sold_out")
            try:
                with transaction.atomic():
                    ProductBuyer.objects.get_or_create(product_id=product_id, user_id=user_id)
            except IntegrityError:  # a concurrent first order of the same user created it
                pass
            if not ProductBuyer.objects.filter(product_id=product_id, user_id=user_id, held__lt=per_user_limit).update(
                held=F("held") + 1
            ):
                raise _Refused("limit_reached")
    except _Refused as refused:
        return str(refused)
    return None


def _stock_release(*, product_id: int, user_id: str) -> None:
    Product.objects.filter(pk=product_id, held__gt=0).update(held=F("held") - 1)
    ProductBuyer.objects.filter(product_id=product_id, user_id=user_id, held__gt=0).update(held=F("held") - 1)


# --- state moves --------------------------------------------------------------


def _move(
    order: Order, *, from_states: tuple[str, ...], to_state: str, cause: str, detail: dict | None = None, **fields: Any
) -> bool:
    """Conditional state move; records the timeline entry only if it happened.
    The caller holds the order's row lock, so `order` is brought up to date in memory."""
    fields = {"state": to_state, "updated_at": timezone.now(), **fields}
    moved = Order.objects.filter(pk=order.pk, state__in=from_states).update(**fields)
    if moved:
        OrderEvent.objects.create(
            order=order, from_state=order.state, to_state=to_state, cause=cause, detail=detail or {}
        )
        for name, value in fields.items():
            setattr(order, name, value)
    return bool(moved)


def _note(order: Order, *, cause: str, detail: dict | None = None) -> None:
    """A timeline entry that is not a state move (a flag, a refused result)."""
    OrderEvent.objects.create(
        order=order, from_state=order.state, to_state=order.state, cause=cause, detail=detail or {}
    )


def _close(*, order_id: int, from_state: str, cause: CloseCause, detail: dict | None) -> bool:
    """The one way to close an order (pending or paid): move it, revoke what a paid
    order granted, release its stock. False if it was no longer in `from_state`."""
    order = Order.objects.select_for_update().get(pk=order_id)
    if not _move(
        order,
        from_states=(from_state,),
        to_state=OrderState.CLOSED,
        cause=cause,
        detail=detail,
        holds_stock=False,
        closed_at=timezone.now(),
        close_cause=cause,
    ):
        return False
    if from_state == OrderState.PAID:
        _entitlement_revoke(order)
    _stock_release(product_id=order.product_id, user_id=order.user_id)
    return True


@transaction.atomic
def order_close(*, order_id: int, cause: CloseCause, detail: dict | None = None) -> bool:
    """pending -> closed, releasing the stock. False if the order was no longer pending."""
    return _close(order_id=order_id, from_state=OrderState.PENDING, cause=cause, detail=detail)


@transaction.atomic
def order_void(*, order_id: int, cause: CloseCause, detail: dict | None = None) -> bool:
    """paid -> closed when the payment service says no money was taken: the
    entitlement is revoked and the stock released (reconciliation only)."""
    return _close(order_id=order_id, from_state=OrderState.PAID, cause=cause, detail=detail)


def _entitlement_grant(order: Order) -> Entitlement:
    product = order.product
    now = timezone.now()
    valid_from, valid_until, quantity = now, None, product.entitlement_quantity
    if product.entitlement_kind == EntitlementKind.MEMBERSHIP:
        # Memberships of the same product stack: a second purchase extends the first.
        # Callers hold the product row's lock, so two grants of one user never interleave.
        latest = Entitlement.objects.filter(
            user_id=order.user_id, product=product, revoked_at__isnull=True, valid_until__gt=now
        ).aggregate(latest=Max("valid_until"))["latest"]
        valid_from = max(now, latest) if latest else now
        valid_until = valid_from + timedelta(days=product.entitlement_days or 0)
        quantity = 1
    # OneToOne on the order: the database refuses a second grant.
    return Entitlement.objects.create(
        order=order,
        product=product,
        user_id=order.user_id,
        kind=product.entitlement_kind,
        quantity=quantity,
        granted_at=now,
        valid_from=valid_from,
        valid_until=valid_until,
    )


def _entitlement_revoke(order: Order) -> None:
    Entitlement.objects.filter(order=order, revoked_at__isnull=True).update(revoked_at=timezone.now())


REFUNDABLE_STATES = (OrderState.PAID, OrderState.CLOSED)


@transaction.atomic
def order_refund(*, order_id: int, cause: str = "refunded", detail: dict | None = None) -> bool:
    """paid -> refunded: the entitlement is revoked and the stock returns to sale.
    (The money itself is returned in the payment team's console; contracts §4 has
    no refund call.) A closed order flagged for refund is marked settled."""
    order = Order.objects.select_for_update().get(pk=order_id)
    if order.state == OrderState.CLOSED and order.refund_required:
        Order.objects.filter(pk=order.pk).update(refund_required=False, refunded_at=timezone.now())
        _note(order, cause="refund_settled", detail=detail)
        return True
    if not _move(
        order,
        from_states=(OrderState.PAID,),
        to_state=OrderState.REFUNDED,
        cause=cause,
        detail=detail,
        holds_stock=False,
        refunded_at=timezone.now(),
    ):
        return False
    _entitlement_revoke(order)
    _stock_release(product_id=order.product_id, user_id=order.user_id)
    return True


def orders_refund(*, order_ids: list[int], operator: str) -> int:
    """An operator marks orders refunded (money returned in the payment console):
    the paid ones are refunded, the closed ones flagged for refund are settled,
    the others are left alone. Returns how many changed."""
    ids = Order.objects.filter(pk__in=order_ids, state__in=REFUNDABLE_STATES).values_list("pk", flat=True)
    return sum(
        order_refund(order_id=pk, cause="refunded_by_operator", detail={"operator": operator}) for pk in list(ids)
    )


# --- placing an order -----------------------------------------------------------


def _order_no() -> str:
    return "P" + timezone.localtime().strftime("%Y%m%d%H%M%S") + secrets.token_hex(5).upper()


def product_for_sale(*, component_id: int) -> Product:
    """The product a paid-sale component sells now, or why not (NotFound, Conflict)."""
    component = Component.objects.filter(pk=component_id, type=PAID_TYPE).select_related("activity").first()
    if component is None or not component.enabled:
        raise NotFound(_("No such paid-sale component."), code="component_not_found")
    product = Product.objects.filter(component=component).first()
    if product is None:
        raise Conflict(_("This component has no product on sale."), code="not_on_sale")
    if component.activity.status != ActivityStatus.ONLINE:
        raise Conflict(_("This activity is not online."), code="not_on_sale")
    status = sale_status(product)  # the window the page shows (sold out is the stock update's to decide)
    if status == "not_started":
        raise Conflict(_("The sale has not started yet."), code="sale_not_started")
    if status == "ended":
        raise Conflict(_("The sale has ended."), code="sale_ended")
    return product


@transaction.atomic
def order_reserve(*, product: Product, user_id: str, idempotency_key: str) -> Order:
    """Take one unit of stock for the user and create the pending order (one
    transaction; the API door runs it inside the Idempotency-Key record's, so a
    refusal is stored and replayed). Refused: Conflict sold_out / limit_reached."""
    refused = _stock_take(product_id=product.pk, user_id=user_id, per_user_limit=product.per_user_limit)
    if refused == "limit_reached":
        raise Conflict(
            _("You can hold at most %(limit)s of this product (pending orders count).")
            % {"limit": product.per_user_limit},
            code="limit_reached",
        )
    if refused == "sold_out":
        raise Conflict(_("Sold out."), code="sold_out")
    order = Order.objects.create(
        order_no=_order_no(),
        product=product,
        user_id=user_id,
        idempotency_key=idempotency_key,
        amount_fen=product.price_fen,
        expires_at=timezone.now() + timedelta(seconds=settings.PAYMENT_ORDER_TTL_SECONDS),
    )
    OrderEvent.objects.create(order=order, from_state="", to_state=OrderState.PENDING, cause="created")
    return order


def _paycode_ensure(order: Order) -> Order:
    """Ask the payment service for the order's paycode (idempotent on our order
    number, so a retry or a concurrent repeat gets the same one)."""
    remaining = int((order.expires_at - timezone.now()).total_seconds())
    paycode = client.paycode_create(
        merchant_order_no=order.order_no,
        amount_fen=order.amount_fen,
        subject=order.product.name[:120],
        user_id=order.user_id,
        expire_seconds=max(remaining, 1),
    )
    Order.objects.filter(pk=order.pk, paycode="").update(
        paycode=paycode.paycode, cashier_url=paycode.cashier_url, updated_at=timezone.now()
    )
    order.refresh_from_db()
    return order


def _unavailable() -> Unavailable:
    return Unavailable(
        _("The payment service is not answering; nothing was charged, try again shortly."), code="payment_unavailable"
    )


def order_checkout(*, order_no: str) -> Order:
    """Finish a reserved order: get its paycode from the payment service, with no
    lock held. When the service fails, the order is closed and its stock released
    (Unavailable payment_unavailable); a repeat finds it closed and says the same.
    A repeat of a pending order without a paycode finishes it (the paycode call is
    idempotent on our order number)."""
    order = Order.objects.select_related("product").get(order_no=order_no)
    if order.state == OrderState.CLOSED and order.close_cause == CloseCause.PAYMENT_UNAVAILABLE:
        raise _unavailable()
    if order.state == OrderState.PENDING and not order.paycode:
        try:
            order = _paycode_ensure(order)
        except client.PaymentServiceError as exc:
            logger.warning("paycode create failed", extra={"order_no": order.order_no, "reason": str(exc)})
            # a concurrent repeat of this key may have stored a paycode meanwhile: keep that order
            if not Order.objects.filter(pk=order.pk).exclude(paycode="").exists():
                order_close(order_id=order.pk, cause=CloseCause.PAYMENT_UNAVAILABLE, detail={"error": str(exc)[:500]})
            raise _unavailable() from None
    return order


def order_place(*, component_id: int, user_id: str, idempotency_key: str) -> Order:
    """Place an order in one call (jobs, the demo, tests): product check, reserve,
    checkout. Not one transaction, on purpose: the stock is reserved and committed
    first, then the payment service is called with no lock held. The HTTP door
    runs the same three steps with the Idempotency-Key record around the reserve."""
    product = product_for_sale(component_id=component_id)
    order = order_reserve(product=product, user_id=user_id, idempotency_key=idempotency_key)
    return order_checkout(order_no=order.order_no)
