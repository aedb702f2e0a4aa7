"""Paid sales: writes.

Order life cycle (every move recorded in OrderEvent with its cause):

    pending --paid--> paid --refunded--> refunded
    pending --expired | payment_failed | payment_closed | payment_unavailable--> closed
    closed  --paid_after_close--> paid          (the user paid at the last second, stock allowed)
    paid    --reconciled_not_paid--> closed     (reconciliation: the service says no money was taken)

Moves are conditional updates on the current state, so concurrent writers (the
result handler, the expiry job, reconciliation) can never move an order twice.
Stock: `Product.held` counts orders holding stock and can never exceed `stock`
(conditional update + CheckConstraint); the per-user limit is a conditional update
of `ProductBuyer.held`.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django.utils import timezone

from activities.models import ActivityStatus
from components.models import Component
from core import metrics
from core.errors import ApiError
from core.idempotency import idempotent_call
from payments import client
from payments.models import (
    DifferenceKind,
    Entitlement,
    EntitlementKind,
    Order,
    OrderEvent,
    OrderState,
    PaymentResult,
    Product,
    ProductBuyer,
    ReconciliationItem,
    ReconciliationReport,
    ResultOutcome,
)
from payments.selectors import sale_status
from payments.signing import result_signature_valid

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
    order: Order, *, from_states: tuple[str, ...], to_state: str, cause: str, detail: dict | None = None, **fields
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


@transaction.atomic
def order_close(*, order_id: int, cause: str, detail: dict | None = None) -> bool:
    """pending -> closed, releasing the stock. False if the order was no longer pending."""
    order = Order.objects.select_for_update().get(pk=order_id)
    if order.state != OrderState.PENDING:
        return False
    _move(
        order,
        from_states=(OrderState.PENDING,),
        to_state=OrderState.CLOSED,
        cause=cause,
        detail=detail,
        holds_stock=False,
        closed_at=timezone.now(),
        close_cause=cause,
    )
    _stock_release(product_id=order.product_id, user_id=order.user_id)
    return True


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


# --- placing an order -----------------------------------------------------------


def _order_no() -> str:
    return "P" + timezone.localtime().strftime("%Y%m%d%H%M%S") + secrets.token_hex(5).upper()


def _product_for_sale(component_id: int) -> Product:
    component = Component.objects.filter(pk=component_id, type=PAID_TYPE).select_related("activity").first()
    if component is None or not component.enabled:
        raise ApiError("component_not_found", "No such paid-sale component.", 404)
    product = Product.objects.filter(component=component).first()
    if product is None:
        raise ApiError("not_on_sale", "This component has no product on sale.", 409)
    if component.activity.status != ActivityStatus.ONLINE:
        raise ApiError("not_on_sale", "This activity is not online.", 409)
    status = sale_status(product)  # the window the page shows (sold out is the stock update's to decide)
    if status == "not_started":
        raise ApiError("sale_not_started", "The sale has not started yet.", 409)
    if status == "ended":
        raise ApiError("sale_ended", "The sale has ended.", 409)
    return product


def _order_reserve(*, product: Product, user_id: str, idempotency_key: str) -> Order:
    """Runs inside idempotent_call's transaction: take stock, create the order."""
    refused = _stock_take(product_id=product.pk, user_id=user_id, per_user_limit=product.per_user_limit)
    if refused == "limit_reached":
        raise ApiError(
            "limit_reached",
            f"You can hold at most {product.per_user_limit} of this product (pending orders count).",
            409,
        )
    if refused == "sold_out":
        raise ApiError("sold_out", "Sold out.", 409)
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


UNAVAILABLE = ("payment_unavailable", "The payment service is not answering; nothing was charged, try again shortly.")


def order_place(*, component_id: int, user_id: str, idempotency_key: str | None) -> tuple[Order, bool]:
    """Place an order: (order, replayed).

    Not one transaction, on purpose: the stock is reserved and committed first
    (inside the shared Idempotency-Key helper, so repeats replay and business
    refusals are stored), then the payment service is called with no lock held,
    and on failure the order is closed and its stock released. A repeat of the
    same key finds the order and finishes it (the paycode call is idempotent).
    """
    product = _product_for_sale(component_id)
    _status, body, replayed = idempotent_call(
        scope="payments.order",
        user_id=user_id,
        key=idempotency_key,
        fingerprint=f"component:{component_id}",
        compute=lambda: (
            201,
            {
                "order_no": _order_reserve(
                    product=product, user_id=user_id, idempotency_key=idempotency_key.strip()
                ).order_no
            },
        ),
    )
    if "error" in body:
        raise ApiError(body["error"]["code"], body["error"]["message"], _status)
    order = Order.objects.select_related("product").get(order_no=body["order_no"])
    if order.state == OrderState.CLOSED and order.close_cause == "payment_unavailable":
        raise ApiError(*UNAVAILABLE, 503)
    if order.state == OrderState.PENDING and not order.paycode:
        try:
            order = _paycode_ensure(order)
        except client.PaymentServiceError as exc:
            logger.warning("paycode create failed", extra={"order_no": order.order_no, "reason": str(exc)})
            # a concurrent repeat of this key may have stored a paycode meanwhile: keep that order
            if not Order.objects.filter(pk=order.pk).exclude(paycode="").exists():
                order_close(order_id=order.pk, cause="payment_unavailable", detail={"error": str(exc)[:500]})
            raise ApiError(*UNAVAILABLE, 503) from None
    return order, replayed


# --- payment results --------------------------------------------------------------


@dataclass(frozen=True)
class ResultFields:
    merchant_order_no: str
    paycode: str
    status: str
    amount_fen: int | None
    channel: str
    transaction_id: str


def _fields(payload: dict) -> ResultFields:
    amount = payload.get("amount_fen")
    return ResultFields(
        merchant_order_no=str(payload.get("merchant_order_no") or "")[:64],
        paycode=str(payload.get("paycode") or "")[:64],
        status=str(payload.get("status") or "")[:16],
        amount_fen=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        channel=str(payload.get("channel") or "")[:16],
        transaction_id=str(payload.get("transaction_id") or "")[:128],
    )


def _paid_at(payload: dict) -> datetime:
    for key in ("paid_at", "occurred_at"):
        raw = payload.get(key)
        if isinstance(raw, str):
            try:
                value = datetime.fromisoformat(raw)
            except ValueError:
                continue
            if value.tzinfo is not None:
                return value
    return timezone.now()


@transaction.atomic
def payment_result_apply(*, payload: dict, source: str = "event") -> PaymentResult:
    """Apply one payment result (the signed `payment.result` event, or a query
    answer of the payment service). Idempotent by order: a duplicate or stale
    result changes nothing, and an order's entitlement is granted at most once.
    A bad signature, an unknown order, another paycode or a wrong amount is
    refused: recorded, flagged, never applied."""
    f = _fields(payload)
    record = PaymentResult(
        source=source,
        event_id=str(payload.get("event_id") or "")[:64],
        merchant_order_no=f.merchant_order_no,
        paycode=f.paycode,
        status=f.status,
        amount_fen=f.amount_fen,
        channel=f.channel,
        transaction_id=f.transaction_id,
        occurred_at=str(payload.get("occurred_at") or payload.get("paid_at") or "")[:40],
        payload=payload,
    )

    def finish(outcome: str, reason: str = "", *, flagged: bool = False) -> PaymentResult:
        record.outcome, record.reason, record.flagged = outcome, reason[:255], flagged
        record.save()
        metrics.PAYMENT_RESULTS.labels(source, outcome).inc()
        if flagged:
            logger.warning(
                "payment result flagged",
                extra={"order_no": f.merchant_order_no, "status": f.status, "outcome": outcome, "reason": reason},
            )
        return record

    if source == "event" and not result_signature_valid(payload):
        return finish(ResultOutcome.REFUSED, "bad signature", flagged=True)
    # FOR UPDATE with the join locks the product row too (order, then product: the
    # order every path takes), so results of one product apply one at a time; the
    # stacking of memberships in _entitlement_grant relies on it.
    order = Order.objects.select_for_update().select_related("product").filter(order_no=f.merchant_order_no).first()
    if order is None:
        return finish(ResultOutcome.REFUSED, "unknown order", flagged=True)
    record.order = order
    if order.paycode and f.paycode and f.paycode != order.paycode:
        _note(order, cause="result_refused", detail={"reason": "paycode mismatch", "paycode": f.paycode})
        return finish(ResultOutcome.REFUSED, f"paycode {f.paycode} is not the order's {order.paycode}", flagged=True)
    if f.amount_fen != order.amount_fen:
        _note(order, cause="result_refused", detail={"reason": "amount mismatch", "amount_fen": f.amount_fen})
        return finish(ResultOutcome.REFUSED, f"amount {f.amount_fen} differs from {order.amount_fen}", flagged=True)
    if f.paycode and not order.paycode:
        Order.objects.filter(pk=order.pk, paycode="").update(paycode=f.paycode)
    detail = {"source": source, "event_id": record.event_id, "transaction_id": f.transaction_id}

    if f.status == "PAID":
        return _apply_paid(order, payload, f, detail, finish)
    if f.status in ("FAILED", "CLOSED"):
        cause = "payment_failed" if f.status == "FAILED" else "payment_closed"
        if order_close(order_id=order.pk, cause=cause, detail=detail):
            return finish(ResultOutcome.APPLIED)
        return finish(ResultOutcome.NO_CHANGE, f"order is {order.state}")
    if f.status == "REFUNDED":
        if order_refund(order_id=order.pk, cause="refunded_by_payment_service", detail=detail):
            return finish(ResultOutcome.APPLIED)
        return finish(ResultOutcome.NO_CHANGE, f"order is {order.state}")
    return finish(ResultOutcome.NO_CHANGE, "PENDING changes nothing")


def _apply_paid(order: Order, payload: dict, f: ResultFields, detail: dict, finish) -> PaymentResult:
    paid = {
        "paid_at": _paid_at(payload),
        "paid_amount_fen": f.amount_fen,
        "channel": f.channel,
        "transaction_id": f.transaction_id,
    }
    if order.state == OrderState.PENDING:
        _move(order, from_states=(OrderState.PENDING,), to_state=OrderState.PAID, cause="paid", detail=detail, **paid)
        _entitlement_grant(order)
        return finish(ResultOutcome.APPLIED)
    if order.state in (OrderState.PAID, OrderState.REFUNDED):
        return finish(ResultOutcome.NO_CHANGE, f"order already {order.state}")
    # closed: the user paid at the last second
    if order.paid_at is not None:
        return finish(ResultOutcome.NO_CHANGE, "payment after close already recorded")
    refused = _stock_take(
        product_id=order.product_id, user_id=order.user_id, per_user_limit=order.product.per_user_limit
    )
    if refused is None:
        _move(
            order,
            from_states=(OrderState.CLOSED,),
            to_state=OrderState.PAID,
            cause="paid_after_close",
            detail={**detail, "closed_by": order.close_cause},
            holds_stock=True,
            **paid,
        )
        _entitlement_grant(order)
        return finish(ResultOutcome.APPLIED, "paid after close; stock was still available")
    Order.objects.filter(pk=order.pk).update(refund_required=True, updated_at=timezone.now(), **paid)
    _note(order, cause="paid_after_close_refund_required", detail={**detail, "why": refused})
    return finish(
        ResultOutcome.REFUND_FLAGGED, f"paid after close, {refused.replace('_', ' ')}: refund it", flagged=True
    )


# --- expiry -------------------------------------------------------------------------


def order_expire(*, order_id: int) -> str:
    """Close one pending order past its expiry: close the paycode at the payment
    service first; a 409 PAID means the user paid, so query and apply that instead.
    Returns what happened: closed | paid | skipped | service_error (down or slow) |
    bad_response (answered outside the contract); on either error the order stays pending."""
    order = Order.objects.select_related("product").get(pk=order_id)
    if order.state != OrderState.PENDING:
        return "skipped"
    try:
        try:
            if not order.paycode:  # the process died between reserving and storing the paycode
                order = _paycode_ensure(order)
            client.paycode_close(paycode=order.paycode)
        except client.PaycodeAlreadyPaid:
            answer = client.paycode_query(paycode=order.paycode)
            result = payment_result_apply(payload=answer, source="query")
            return "paid" if result.outcome == ResultOutcome.APPLIED else result.outcome
    except client.PaymentServiceError as exc:
        logger.warning("paycode close failed", extra={"order_no": order.order_no, "reason": str(exc)})
        return "bad_response" if exc.kind == "bad_response" else "service_error"
    return "closed" if order_close(order_id=order.pk, cause="expired") else "skipped"


def orders_expire(*, now: datetime | None = None, batch: int = 500) -> dict[str, int]:
    """One run of the expiry job. The payment service down or slow stops the run at
    the first order (the rest wait for the next run) rather than waiting out the
    timeout once per order; an answer about one paycode outside the contract does not."""
    now = now or timezone.now()
    ids = list(
        Order.objects.filter(state=OrderState.PENDING, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("pk", flat=True)[:batch]
    )
    counts: dict[str, int] = {}
    for order_id in ids:
        outcome = order_expire(order_id=order_id)
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "service_error":
            break
    return counts


# --- reconciliation (对账) -------------------------------------------------------------


@transaction.atomic
def order_void(*, order_id: int, cause: str, detail: dict | None = None) -> bool:
    """paid -> closed when the payment service says no money was taken: the
    entitlement is revoked and the stock released (reconciliation only)."""
    order = Order.objects.select_for_update().get(pk=order_id)
    if not _move(
        order,
        from_states=(OrderState.PAID,),
        to_state=OrderState.CLOSED,
        cause=cause,
        detail=detail,
        holds_stock=False,
        closed_at=timezone.now(),
        close_cause=cause,
    ):
        return False
    _entitlement_revoke(order)
    _stock_release(product_id=order.product_id, user_id=order.user_id)
    return True


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = timezone.make_aware(datetime.combine(day, time.min))
    return start, start + timedelta(days=1)


def _reconcile_order(order: Order, answer: dict) -> tuple[str, bool, str] | None:
    """Compare one order with the service's answer; repair. Returns
    (difference kind, repaired, detail) or None when they agree."""
    status = answer.get("status")
    ours = order.state
    if answer.get("amount_fen") != order.amount_fen:
        return DifferenceKind.AMOUNT_MISMATCH, False, f"service {answer.get('amount_fen')}, ours {order.amount_fen}"
    if status == "PAID":
        if ours == OrderState.PENDING or (ours == OrderState.CLOSED and order.paid_at is None):
            result = payment_result_apply(payload=answer, source="query")
            repaired = result.outcome in (ResultOutcome.APPLIED, ResultOutcome.REFUND_FLAGGED)
            return DifferenceKind.PAID_UNKNOWN, repaired, result.reason or "applied the payment"
        return None
    if status in ("CLOSED", "FAILED") and ours == OrderState.PAID:
        repaired = order_void(
            order_id=order.pk, cause="reconciled_not_paid", detail={"service_status": status, "by": "reconciliation"}
        )
        return DifferenceKind.PAID_NOT_PAID, repaired, "voided the order and revoked the entitlement"
    if status == "PENDING" and ours == OrderState.PAID:
        return DifferenceKind.PAID_NOT_PAID, False, "service still PENDING: check with the payment team"
    if status == "REFUNDED" and ours == OrderState.PAID:
        result = payment_result_apply(payload=answer, source="query")
        return DifferenceKind.REFUNDED_UNKNOWN, result.outcome == ResultOutcome.APPLIED, "applied the refund"
    if status == "PENDING" and ours == OrderState.CLOSED:
        try:
            client.paycode_close(paycode=order.paycode)
        except client.PaycodeAlreadyPaid:
            answer = client.paycode_query(paycode=order.paycode)
            result = payment_result_apply(payload=answer, source="query")
            return DifferenceKind.PAID_UNKNOWN, True, result.reason or "paid at close: applied the payment"
        return DifferenceKind.CLOSED_STILL_PENDING, True, "closed the paycode"
    return None


def reconciliation_run(*, day: date) -> ReconciliationReport:
    """对账 for one day: every order that changed that day is queried at the
    payment service; differences are repaired where we can and listed in the report."""
    start, end = _day_bounds(day)
    report = ReconciliationReport.objects.create(day=day)
    changed = OrderEvent.objects.filter(created_at__gte=start, created_at__lt=end).values("order_id")
    orders = Order.objects.filter(pk__in=changed).exclude(paycode="").order_by("pk")
    for order in orders.iterator(chunk_size=200):
        report.orders_checked += 1
        try:
            answer = client.paycode_query(paycode=order.paycode)
            found = _reconcile_order(order, answer)
        except client.PaymentServiceError as exc:
            report.errors += 1
            found = (DifferenceKind.QUERY_FAILED, False, str(exc)[:255])
            answer = {}
        if found is None:
            continue
        kind, repaired, detail = found
        report.differences += 1
        report.repaired += int(repaired)
        ReconciliationItem.objects.create(
            report=report,
            order=order,
            kind=kind,
            our_state=order.state,
            service_status=str(answer.get("status") or "")[:16],
            repaired=repaired,
            detail=detail[:255],
        )
    report.finished_at = timezone.now()
    report.save()
    logger.info(
        "reconciliation finished",
        extra={
            "day": day.isoformat(),
            "checked": report.orders_checked,
            "differences": report.differences,
            "repaired": report.repaired,
        },
    )
    return report


# --- products -------------------------------------------------------------------------


@transaction.atomic
def product_create(
    *,
    component: Component,
    name: str,
    price_fen: int,
    stock: int,
    entitlement_kind: str,
    entitlement_days: int | None = None,
    entitlement_quantity: int = 1,
    per_user_limit: int = 1,
    description: str = "",
    sale_starts_at: datetime | None = None,
    sale_ends_at: datetime | None = None,
) -> Product:
    if component.type != PAID_TYPE:
        raise ApiError("invalid", f"Component {component.pk} is a {component.type}, not a paid_sale.")
    return Product.objects.create(
        component=component,
        name=name,
        description=description,
        price_fen=price_fen,
        stock=stock,
        per_user_limit=per_user_limit,
        entitlement_kind=entitlement_kind,
        entitlement_days=entitlement_days,
        entitlement_quantity=entitlement_quantity,
        sale_starts_at=sale_starts_at,
        sale_ends_at=sale_ends_at,
    )
