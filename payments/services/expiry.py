"""Expiry: pending orders past their expiry are closed (their paycode first)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.utils import timezone

from payments import client
from payments.models import CloseCause, Order, OrderState, ResultOutcome, ResultSource
from payments.services.orders import _paycode_ensure, order_close
from payments.services.results import payment_result_apply

logger = logging.getLogger("huodong.payments")


def order_expire(*, order_id: int) -> str:
    """Close one pending order past its expiry: close the paycode at the payment
    service first; "already paid" (client.PaycodeAlreadyPaid) means the user paid,
    so query and apply that instead. Returns what happened: closed | paid | skipped | service_error (down or slow) |
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
            result = payment_result_apply(payload=answer, source=ResultSource.QUERY)
            return "paid" if result.outcome == ResultOutcome.APPLIED else result.outcome
    except client.PaymentServiceError as exc:
        logger.warning("paycode close failed", extra={"order_no": order.order_no, "reason": str(exc)})
        return "bad_response" if exc.kind == "bad_response" else "service_error"
    return "closed" if order_close(order_id=order.pk, cause=CloseCause.EXPIRED) else "skipped"


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
