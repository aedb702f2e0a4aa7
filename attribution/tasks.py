"""Celery doors of attribution: postback delivery and periodic repairs."""

from __future__ import annotations

from celery import shared_task

from attribution import services


@shared_task(
    name="attribution.postback_deliver",
    bind=True,
    acks_late=True,
    max_retries=len(services.BACKOFF_SCHEDULE),
    ignore_result=True,
)
def postback_deliver_task(self, postback_id: int) -> str:
    """One attempt; on failure Celery retries after the backoff countdown. Run eagerly
    (tests, CELERY_TASK_ALWAYS_EAGER) there is no broker to hold a countdown, so the
    next attempt runs at once: the schedule itself is `services.postback_backoff`."""
    while True:
        result = services.postback_deliver(postback_id=postback_id)
        if result.outcome != services.DeliveryOutcome.RETRY:
            return result.outcome
        if not self.request.is_eager:
            raise self.retry(countdown=result.retry_in)


@shared_task(name="attribution.postbacks_sweep", ignore_result=True)
def postbacks_sweep_task() -> int:
    return services.postbacks_sweep()


@shared_task(name="attribution.tracking_links_resync", ignore_result=True)
def tracking_links_resync_task() -> dict:
    return services.tracking_links_resync()


@shared_task(name="attribution.pending_events_retry", ignore_result=True)
def pending_events_retry_task() -> dict:
    return services.pending_events_retry()
