"""Celery doors of alerts: one task per delivery, the sweep, the traffic check."""

from __future__ import annotations

from celery import shared_task

from alerts import services


@shared_task(
    name="alerts.delivery_attempt",
    bind=True,
    acks_late=True,
    max_retries=len(services.DELIVERY_BACKOFF),
    ignore_result=True,
)
def alert_delivery_task(self, delivery_id: int) -> str:
    """One attempt; on failure Celery retries after the backoff countdown. Eagerly
    run (tests) the retry waits for the sweep, at its due time."""
    result = services.delivery_attempt(delivery_id=delivery_id)
    if result.outcome == services.DeliveryOutcome.RETRY and not self.request.is_eager:
        raise self.retry(countdown=result.retry_in)
    return result.outcome


@shared_task(name="alerts.deliveries_sweep", ignore_result=True)
def alert_deliveries_sweep_task() -> int:
    return services.deliveries_sweep()


@shared_task(name="alerts.traffic_check", ignore_result=True, expires=55)
def traffic_check_task() -> int:
    from alerts.checks import traffic_check

    return len(traffic_check())
