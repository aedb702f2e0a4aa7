"""Reconciliation (对账): every order that changed on a day is queried at the payment
service; differences are repaired where we can and listed in the report."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta

from django.utils import timezone

from payments import client
from payments.models import (
    CloseCause,
    DifferenceKind,
    Order,
    OrderEvent,
    OrderState,
    ReconciliationItem,
    ReconciliationReport,
    ResultOutcome,
    ResultSource,
    ServiceStatus,
)
from payments.services.orders import order_void
from payments.services.results import payment_result_apply

logger = logging.getLogger("huodong.payments")


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
    if status == ServiceStatus.PAID:
        if ours == OrderState.PENDING or (ours == OrderState.CLOSED and order.paid_at is None):
            result = payment_result_apply(payload=answer, source=ResultSource.QUERY)
            repaired = result.outcome in (ResultOutcome.APPLIED, ResultOutcome.REFUND_FLAGGED)
            return DifferenceKind.PAID_UNKNOWN, repaired, result.reason or "applied the payment"
        return None
    if status in (ServiceStatus.CLOSED, ServiceStatus.FAILED) and ours == OrderState.PAID:
        repaired = order_void(
            order_id=order.pk,
            cause=CloseCause.RECONCILED_NOT_PAID,
            detail={"service_status": status, "by": "reconciliation"},
        )
        return DifferenceKind.PAID_NOT_PAID, repaired, "voided the order and revoked the entitlement"
    if status == ServiceStatus.PENDING and ours == OrderState.PAID:
        return DifferenceKind.PAID_NOT_PAID, False, "service still PENDING: check with the payment team"
    if status == ServiceStatus.REFUNDED and ours == OrderState.PAID:
        result = payment_result_apply(payload=answer, source=ResultSource.QUERY)
        return DifferenceKind.REFUNDED_UNKNOWN, result.outcome == ResultOutcome.APPLIED, "applied the refund"
    if status == ServiceStatus.PENDING and ours == OrderState.CLOSED:
        try:
            client.paycode_close(paycode=order.paycode)
        except client.PaycodeAlreadyPaid:
            answer = client.paycode_query(paycode=order.paycode)
            result = payment_result_apply(payload=answer, source=ResultSource.QUERY)
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
