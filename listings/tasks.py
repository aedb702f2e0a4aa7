from celery import shared_task

from listings import services


@shared_task(acks_late=True, name="listings.import")
def listing_import_task(job_id: int) -> None:
    """Idempotent: only a queued job runs, so a redelivery does nothing."""
    services.listing_import_run(job_id=job_id)
