"""Celery doors of the platform's housekeeping jobs (scheduled in core/beat.py)."""

from __future__ import annotations

from celery import shared_task

from core import services


@shared_task(name="core.idempotency_records_purge", ignore_result=True)
def idempotency_records_purge() -> int:
    return services.idempotency_records_purge()


@shared_task(name="core.processed_events_purge", ignore_result=True)
def processed_events_purge() -> int:
    return services.processed_events_purge()


@shared_task(name="core.dead_letters_purge", ignore_result=True)
def dead_letters_purge() -> int:
    return services.dead_letters_purge()
