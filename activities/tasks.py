from celery import shared_task

from activities import services


@shared_task(name="activities.activities_advance", acks_late=True)
def activities_tick() -> dict[str, int]:
    """Put scheduled activities online at their start, end them at their end
    (idempotent: safe to run twice or concurrently)."""
    return services.activities_advance()
