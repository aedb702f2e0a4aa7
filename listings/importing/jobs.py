"""Import jobs: store an upload, run it once (the Celery task's body), apply a dry
run, purge old files."""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.files import File
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from components.models import Component
from listings import progress as import_progress
from listings import services
from listings.errors import ImportRefused
from listings.importing.parse import FileRefused
from listings.importing.write import APPLY, CHECK, PREVIEW, Importer, MysqlStage, ProgressCallback, Spool
from listings.models import ImportJob, ImportStatus

logger = logging.getLogger("huodong.listings")


def listing_import_start(
    *,
    component: Component,
    upload: File,
    filename: str,
    dry_run: bool = False,
    all_or_nothing: bool = True,
    user=None,
    run_async: bool = True,
) -> ImportJob:
    """Store the uploaded file and queue its import (Celery, after commit).
    Refuses a file over LISTINGS_IMPORT_MAX_BYTES before reading any of it."""
    services.listing_component_check(component)
    size = upload.size
    limit = settings.LISTINGS_IMPORT_MAX_BYTES
    if size is not None and size > limit:
        raise ImportRefused(
            _(
                "The file is %(size)s MB; the limit is %(limit)s MB. "
                "Split it into several files (each with the header row) and upload them one by one."
            )
            % {"size": f"{size / 1048576:.1f}", "limit": f"{limit / 1048576:.0f}"}
        )
    if not size:
        raise ImportRefused(_("The file is empty."))
    with transaction.atomic():
        job = ImportJob(
            component=component,
            original_name=os.path.basename(filename)[:255],
            file_size=size,
            dry_run=dry_run,
            all_or_nothing=all_or_nothing,
            created_by=user if getattr(user, "pk", None) else None,
        )
        job.file.save(os.path.basename(filename)[-100:], upload, save=False)
        job.save()
        if run_async:
            from listings.tasks import listing_import_task

            job_id = job.pk
            transaction.on_commit(lambda: listing_import_task.delay(job_id))
    return job


def import_apply_refusal(job: ImportJob, *, all_or_nothing: bool | None = None) -> str | None:
    """Why `job` cannot be applied (None: it can). A dry run whose rows have errors
    cannot be applied all or nothing: it could only be rejected."""
    if job.status != ImportStatus.PREVIEWED:
        return _("Only a finished dry run can be applied.")
    if not job.file:
        return _("The file of this dry run has been deleted (kept for a limited time); upload it again.")
    strict = job.all_or_nothing if all_or_nothing is None else all_or_nothing
    if job.rejected_count and not (job.created_count or job.updated_count or job.unchanged_count):
        return _(
            "Every row of this dry run has errors: there is nothing to import. Download the rows with their "
            "errors, fix them and upload the file again."
        )
    if strict and job.rejected_count:
        return _(
            "This dry run found %(n)s row(s) with errors, so applying it all or nothing would "
            "import nothing. Download the rows with their errors, fix them and upload the file again "
            "(or apply it skipping the rows with errors)."
        ) % {"n": job.rejected_count}
    return None


@transaction.atomic
def listing_import_apply(*, job: ImportJob, user=None, all_or_nothing: bool | None = None) -> ImportJob:
    """Run the file of a finished dry run for real (a new job, same stored file)."""
    refusal = import_apply_refusal(job, all_or_nothing=all_or_nothing)
    if refusal:
        raise ImportRefused(refusal)
    new = ImportJob.objects.create(
        component=job.component,
        file=job.file.name,
        original_name=job.original_name,
        file_size=job.file_size,
        dry_run=False,
        all_or_nothing=job.all_or_nothing if all_or_nothing is None else all_or_nothing,
        created_by=user if getattr(user, "pk", None) else None,
    )
    job_id = new.pk
    from listings.tasks import listing_import_task

    transaction.on_commit(lambda: listing_import_task.delay(job_id))
    return new


def _time_limit_message(importer: Importer) -> str:
    limit = settings.CELERY_TASK_SOFT_TIME_LIMIT
    if not importer.apply or not importer.written_to_line:
        return _(
            "The import hit its time limit (%(limit)s s) while reading row %(line)s of the file; nothing was "
            "changed. Split the file into smaller files and upload them one by one."
        ) % {"limit": limit, "line": importer.line}
    return _(
        "The import hit its time limit (%(limit)s s) while reading row %(line)s of the file: the rows up to "
        "row %(written)s were imported, the rest were not. Upload the file again to finish (rows already "
        "imported stay as they are), or split it into smaller files."
    ) % {"limit": limit, "line": importer.line, "written": importer.written_to_line}


def listing_import_run(*, job_id: int, progress: ProgressCallback | None = None) -> ImportJob:
    """Run a queued import job once (a repeat delivery of the task does nothing).

    A dry run is one read-only pass (no transaction, no write lock): what would be
    created, updated, unchanged and rejected. An all-or-nothing import first makes a
    checking pass over the file (the file is refused as a whole, or for any row error,
    before anything is written; the clean rows are spooled to a temporary file), then
    writes the spooled rows in batches of BATCH_SIZE, each committed on its own (one
    multi-row upsert on (component, external_id)), so other writes proceed during a
    long import. A partial import (all_or_nothing=False) writes in the one pass: a file
    refused part-way keeps the batches before, and says so. Memory holds one batch and
    the external ids seen so far (to refuse a repeated id). A job that hits the task's
    soft time limit says so, and how far it got."""
    now = timezone.now()
    # A job left running by a worker that died is taken again once the task time
    # limit has passed (its committed batches are upserted again, unchanged).
    stale = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    claimed = (
        ImportJob.objects.filter(pk=job_id)
        .filter(Q(status=ImportStatus.QUEUED) | Q(status=ImportStatus.RUNNING, started_at__lt=stale))
        .update(status=ImportStatus.RUNNING, started_at=now)
    )
    job = ImportJob.objects.select_related("component").get(pk=job_id)
    if not claimed:
        return job

    def report(processed: int, total: int | None) -> None:
        import_progress.progress_set(job_id=job_id, processed=processed, total=total)
        if progress:
            progress(processed, total)

    spool = Spool() if job.all_or_nothing and not job.dry_run else None
    # MySQL/MariaDB: the checked rows are also staged on the server during the checking pass
    stage = _stage() if spool is not None and connection.vendor == "mysql" else None
    mode = PREVIEW if job.dry_run else CHECK if job.all_or_nothing else APPLY
    importer = Importer(job, report, mode=mode, spool=spool, stage=stage)
    status = ImportStatus.PREVIEWED
    message = ""
    warnings: list[str] = []
    try:
        warnings = importer.read(job)
        if importer.apply:
            status = ImportStatus.APPLIED
        elif not job.dry_run and importer.rejected:
            status = ImportStatus.ROLLED_BACK
            message = _(
                "%(n)s row(s) have errors, so nothing was imported (all-or-nothing). "
                "Download the rows with their errors, fix them and upload the file again."
            ) % {"n": importer.rejected}
        elif spool is not None:
            checked = importer
            checked.close()
            importer = Importer(job, report, mode=APPLY, stage=stage)
            importer.groups_created = []  # counted by the writing pass, under the lock
            importer.write_spooled(spool, total=checked.processed)
            status = ImportStatus.APPLIED
    except FileRefused as exc:
        status, message = ImportStatus.FAILED, str(exc)
        if importer.apply and importer.written_to_line:
            message += " " + _("The rows up to row %(n)s were imported; the rest were not.") % {
                "n": importer.written_to_line
            }
    except SoftTimeLimitExceeded:
        status, message = ImportStatus.FAILED, _time_limit_message(importer)
        logger.warning("listing import hit its time limit", extra={"job_id": job_id, "line": importer.line})
    except Exception:
        logger.exception("listing import failed", extra={"job_id": job_id})
        status, message = ImportStatus.FAILED, _("The import stopped on an internal error. It has been logged.")
        if importer.apply and importer.written_to_line:
            message += " " + _("The rows up to row %(n)s were imported.") % {"n": importer.written_to_line}
            services.listing_cities_invalidate(component_id=job.component_id)
        else:
            message += " " + _("Nothing was changed.")
        _finish(job, importer, status, message, warnings)
        raise
    finally:
        importer.close()
        if spool is not None:
            spool.close()
        if stage is not None:
            stage.close()
    applied = importer.apply and bool(importer.written_to_line or status == ImportStatus.APPLIED)
    if applied:
        services.listing_cities_invalidate(component_id=job.component_id)
    if status == ImportStatus.APPLIED and importer.rejected:
        message = _("Imported; %(n)s row(s) with errors were skipped.") % {"n": importer.rejected}
    _finish(job, importer, status, message, warnings)
    return job


def _stage() -> MysqlStage | None:
    """The import's stage table, or None when the database refuses it (a user without
    CREATE TEMPORARY TABLES): then the writing pass sends the rows itself, as SQLite's."""
    try:
        return MysqlStage()
    except DatabaseError:
        logger.warning("could not create the listing import's stage table: importing without it", exc_info=True)
        return None


def _finish(job: ImportJob, importer: Importer, status: str, message: str, warnings: list[str]) -> None:
    job.status = status
    job.message = message
    job.warnings = warnings
    job.total_rows = importer.processed
    job.processed_rows = importer.processed
    wrote_or_would = importer.mode == PREVIEW or importer.apply  # a rejected or refused check wrote nothing
    job.created_count = importer.created if wrote_or_would else 0
    job.updated_count = importer.updated if wrote_or_would else 0
    job.unchanged_count = importer.unchanged if wrote_or_would else 0
    job.rejected_count = importer.rejected
    job.groups_created = importer.groups_created if wrote_or_would else []
    job.errors = importer.errors
    job.preview = importer.preview if wrote_or_would else {"created": [], "updated": []}
    job.finished_at = timezone.now()
    job.save()
    import_progress.progress_clear(job_id=job.pk)


def import_files_purge(*, older_than: timedelta) -> int:
    """Delete the stored upload files of jobs finished before `older_than` ago
    (the job records stay). A file shared with a newer job (an applied dry run)
    is kept until that job is old too. Returns how many files were deleted."""
    from django.core.files.storage import default_storage

    cutoff = timezone.now() - older_than
    names = set(ImportJob.objects.filter(finished_at__lt=cutoff).exclude(file="").values_list("file", flat=True))
    deleted = 0
    for name in sorted(names):
        in_use = ImportJob.objects.filter(file=name).filter(Q(finished_at__isnull=True) | Q(finished_at__gte=cutoff))
        if in_use.exists():
            continue
        default_storage.delete(name)
        ImportJob.objects.filter(file=name).update(file="")
        deleted += 1
    return deleted
