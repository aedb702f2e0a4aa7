"""Celery doors of analytics."""

from __future__ import annotations

import smtplib
from datetime import date

from celery import shared_task

from analytics import reports, services


@shared_task(name="analytics.rollup_tick", ignore_result=True)
def rollup_tick_task() -> dict:
    return services.rollup_tick()


@shared_task(
    name="analytics.daily_report_send",
    bind=True,
    ignore_result=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=60,
    retry_backoff_max=1800,
    max_retries=6,
)
def daily_report_send_task(self, day: str, force: bool = False) -> None:
    """Send one day's report; SMTP failures are recorded on the archive row and retried
    with backoff (60 s, 120 s, … up to 30 min)."""
    reports.daily_report_send(day=date.fromisoformat(day), force=force)


@shared_task(name="analytics.daily_report_tick", ignore_result=True)
def daily_report_tick_task() -> str | None:
    """Beat, every few minutes: queue the previous day's report once REPORT_DAILY_AT has passed."""
    day = reports.daily_report_claim_due()
    if day is not None:
        daily_report_send_task.delay(day.isoformat())
        return day.isoformat()
    return None
