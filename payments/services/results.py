"""Payment results: the signed `payment.result` event, or a query answer of the payment service.

Lock order: order, then product (one FOR UPDATE with the join), then buyer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from core import metrics
from payments.models import Order, OrderState, PaymentResult, ResultOutcome, ServiceStatus
from payments.services.orders import _entitlement_grant, _move, _note, _stock_take, order_close, order_refund
from payments.signing import result_signature_valid

logger = logging.getLogger("huodong.payments")


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

    if f.status == ServiceStatus.PAID:
        return _apply_paid(order, payload, f, detail, finish)
    if f.status in (ServiceStatus.FAILED, ServiceStatus.CLOSED):
        cause = "payment_failed" if f.status == ServiceStatus.FAILED else "payment_closed"
        if order_close(order_id=order.pk, cause=cause, detail=detail):
            return finish(ResultOutcome.APPLIED)
        return finish(ResultOutcome.NO_CHANGE, f"order is {order.state}")
    if f.status == ServiceStatus.REFUNDED:
        if order_refund(order_id=order.pk, cause="refunded_by_payment_service", detail=detail):
            return finish(ResultOutcome.APPLIED)
        return finish(ResultOutcome.NO_CHANGE, f"order is {order.state}")
    return finish(ResultOutcome.NO_CHANGE, "PENDING changes nothing")


def _apply_paid(
    order: Order, payload: dict, f: ResultFields, detail: dict, finish: Callable[..., PaymentResult]
) -> PaymentResult:
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
