"""Celery doors of exports: the click-log drain, hourly partitions, retries."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from core.errors import Conflict
from exports import drain, services


@shared_task(name="exports.click_log_drain", ignore_result=True)
def click_log_drain_task() -> dict:
    try:
        return drain.click_log_drain(max_seconds=settings.EXPORT_DRAIN_SECONDS).stored
    except drain.DrainBusy:
        return {}


@shared_task(name="exports.partition_export", bind=True, acks_late=True, max_retries=12, ignore_result=True)
def partition_export_task(self, dataset: str, hour: str, force: bool = False) -> str:
    """Export one partition; a failure is retried with backoff (1 min doubling, at most
    an hour apart) and, in between, shows as failed in the admin."""
    try:
        partition = services.partition_export(dataset=dataset, hour=services.hour_parse(hour), force=force)
    except Conflict as exc:
        if exc.code != "export_running":
            return exc.code
        raise self.retry(countdown=60) from exc
    except Exception as exc:
        if self.request.is_eager:
            raise
        raise self.retry(exc=exc, countdown=min(60 * 2**self.request.retries, 3600)) from exc
    return partition.status


@shared_task(name="exports.partitions_due", ignore_result=True)
def partitions_due_task() -> int:
    due = services.partitions_due()
    for dataset, hour in due:
        partition_export_task.delay(dataset, f"{hour:%Y-%m-%dT%H}")
    return len(due)


@shared_task(name="exports.click_log_purge", ignore_result=True)
def click_log_purge_task() -> int:
    return services.click_log_purge()
