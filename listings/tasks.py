from celery import shared_task

from listings import importing


@shared_task(acks_late=True, name="listings.listing_import_run")
def listing_import_task(job_id: int) -> None:
    """Idempotent: only a queued job runs, so a redelivery does nothing."""
    importing.listing_import_run(job_id=job_id)


@shared_task(name="listings.import_files_purge")
def listing_import_files_purge_task() -> int:
    from datetime import timedelta

    from django.conf import settings

    return importing.import_files_purge(older_than=timedelta(days=settings.LISTINGS_IMPORT_KEEP_DAYS))
