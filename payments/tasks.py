"""Celery doors of the paid-sale jobs."""

from __future__ import annotations

from datetime import date, timedelta

from celery import shared_task
from django.utils import timezone

from payments import services


@shared_task(name="payments.orders_expire", acks_late=True)
def orders_expire() -> dict:
    """Close pending orders past their expiry (idempotent: conditional moves)."""
    return services.orders_expire()


@shared_task(name="payments.reconciliation_run", acks_late=True)
def reconcile(day: str | None = None) -> dict:
    """对账 for `day` (ISO date; default yesterday, Asia/Shanghai)."""
    target = date.fromisoformat(day) if day else timezone.localdate() - timedelta(days=1)
    report = services.reconciliation_run(day=target)
    return {"report": report.pk, "differences": report.differences, "repaired": report.repaired}
