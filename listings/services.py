"""Writes of the listings app: imports, groups, cloning."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.db import connection, reset_queries, transaction
from django.db.models import Max, Q
from django.utils import timezone

from components.models import Component
from listings import progress as import_progress
from listings.importing import FileRefused, RowError, RowSource, row_parse
from listings.models import ImportJob, ImportStatus, Listing, ListingGroup

logger = logging.getLogger("huodong.listings")

LISTING_TYPE = "listing"
BATCH_SIZE = 1000
MAX_STORED_ERRORS = 500
MAX_PREVIEW = 20
CONTENT_FIELDS = (
    "title",
    "district",
    "address",
    "price_fen",
    "area_m2",
    "layout",
    "cover_image_url",
    "detail_url",
    "tags",
    "sort_order",
    "is_active",
)
UPSERT_FIELDS = [*CONTENT_FIELDS, "group", "import_job", "import_line", "updated_at"]

ProgressCallback = Callable[[int, int | None], None]


class ImportRefused(Exception):
    """An upload refused before any work (size, component type); for the operator."""


def listing_cities_invalidate(*, component_id: int) -> None:
    """After a change to a component's listings commits, the public cities (cached
    by listings.selectors) are recomputed on the next request."""

    def bump() -> None:
        key = f"listings:gen:{component_id}"
        cache.add(key, 0, None)
        cache.incr(key)

    transaction.on_commit(bump)


def listing_component_check(component: Component) -> None:
    if component.type != LISTING_TYPE:
        raise ImportRefused(f"Component #{component.pk} is a {component.type!r} component, not a listing component.")


# --- groups -------------------------------------------------------------------


@transaction.atomic
def listing_group_ensure(*, component: Component, city: str) -> tuple[ListingGroup, bool]:
    """The component's group of that city, created (at the end) when new."""
    group = ListingGroup.objects.filter(component=component, city=city).first()
    if group is not None:
        return group, False
    last = ListingGroup.objects.filter(component=component).aggregate(p=Max("position"))["p"]
    group, created = ListingGroup.objects.get_or_create(
        component=component, city=city, defaults={"position": 0 if last is None else last + 1}
    )
    return group, created


# --- import -------------------------------------------------------------------


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
    listing_component_check(component)
    size = upload.size
    limit = settings.LISTINGS_IMPORT_MAX_BYTES
    if size is not None and size > limit:
        raise ImportRefused(
            f"The file is {size / 1048576:.1f} MB; the limit is {limit / 1048576:.0f} MB. "
            "Split it into several files (each with the header row) and upload them one by one."
        )
    if not size:
        raise ImportRefused("The file is empty.")
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


@transaction.atomic
def listing_import_apply(*, job: ImportJob, user=None, all_or_nothing: bool | None = None) -> ImportJob:
    """Run the file of a finished dry run for real (a new job, same stored file)."""
    if job.status != ImportStatus.PREVIEWED:
        raise ImportRefused("Only a finished dry run can be applied.")
    if not job.file:
        raise ImportRefused("The file of this dry run has been deleted (kept for a limited time); upload it again.")
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


class _Rollback(Exception):
    pass


class _Importer:
    def __init__(self, job: ImportJob, progress: ProgressCallback | None):
        self.job = job
        self.component = job.component
        self.progress = progress
        self.processed = 0
        self.created = 0
        self.updated = 0
        self.unchanged = 0
        self.rejected = 0
        self.errors: list[dict] = []
        self.preview: dict[str, list] = {"created": [], "updated": []}
        self.groups_created: list[str] = []
        self.city_groups: dict[str, int] = {}
        self.group_cities: dict[int, str] = {}  # the reverse, to show where a listing moves from
        self.next_position = 0
        self.max_cities = settings.LISTINGS_MAX_CITIES

    def load(self) -> None:
        """Inside the import's transaction: lock the component, so imports into one
        component run one after the other (each sees the groups the last created),
        then read its cities."""
        Component.objects.select_for_update().filter(pk=self.component.pk).values_list("pk").get()
        self.city_groups = dict(ListingGroup.objects.filter(component=self.component).values_list("city", "id"))
        self.group_cities = {group_id: city for city, group_id in self.city_groups.items()}
        last = ListingGroup.objects.filter(component=self.component).aggregate(p=Max("position"))["p"]
        self.next_position = 0 if last is None else last + 1

    def reject(self, errors: list[RowError]) -> None:
        self.rejected += 1
        for error in errors:
            if len(self.errors) < MAX_STORED_ERRORS:
                self.errors.append(error.as_dict())

    def group_id(self, city: str, line: int) -> int | None:
        group_id = self.city_groups.get(city)
        if group_id is not None:
            return group_id
        if len(self.city_groups) >= self.max_cities:
            self.reject(
                [
                    RowError(
                        line,
                        "city",
                        f"{city!r} would be city number {self.max_cities + 1}; "
                        f"a listing component holds at most {self.max_cities} cities",
                    )
                ]
            )
            return None
        group = ListingGroup.objects.create(component=self.component, city=city, position=self.next_position)
        self.next_position += 1
        self.city_groups[city] = group.pk
        self.group_cities[group.pk] = city
        self.groups_created.append(city)
        return group.pk

    def flush(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        if not batch:
            return
        first_line: dict[str, int] = {}
        rows: list[tuple[int, dict[str, Any], int]] = []
        for line, values in batch:
            ext = values["external_id"]
            if ext in first_line:
                self.reject(
                    [RowError(line, "external_id", f"{ext!r} already appears on row {first_line[ext]} of this file")]
                )
                continue
            group_id = self.group_id(values["city"], line)
            if group_id is None:
                continue
            first_line[ext] = line
            rows.append((line, values, group_id))
        existing = {
            row["external_id"]: row
            for row in Listing.objects.filter(component=self.component, external_id__in=list(first_line)).values(
                "id", "external_id", "group_id", "import_job_id", "import_line", *CONTENT_FIELDS
            )
        }
        to_write: list[Listing] = []
        unchanged_ids: list[int] = []
        job_id = self.job.pk
        for line, values, group_id in rows:
            ext = values["external_id"]
            old = existing.get(ext)
            if old is not None and old["import_job_id"] == job_id:
                where = f"row {old['import_line']}" if old["import_line"] else "an earlier row"
                self.reject([RowError(line, "external_id", f"{ext!r} already appears on {where} of this file")])
                continue
            if old is not None:
                changes = {f: [_plain(old[f]), _plain(values[f])] for f in CONTENT_FIELDS if old[f] != values[f]}
                if old["group_id"] != group_id:
                    changes["city"] = [self.group_cities.get(old["group_id"]), values["city"]]
                if not changes:
                    unchanged_ids.append(old["id"])
                    self.unchanged += 1
                    continue
                self.updated += 1
                if len(self.preview["updated"]) < MAX_PREVIEW:
                    self.preview["updated"].append({"line": line, "external_id": ext, "changes": changes})
            else:
                self.created += 1
                if len(self.preview["created"]) < MAX_PREVIEW:
                    self.preview["created"].append(
                        {
                            "line": line,
                            "external_id": ext,
                            "city": values["city"],
                            "title": values["title"],
                            "price_fen": values["price_fen"],
                        }
                    )
            to_write.append(
                Listing(
                    component_id=self.component.pk,
                    group_id=group_id,
                    external_id=ext,
                    import_job_id=job_id,
                    import_line=line,
                    **{f: values[f] for f in CONTENT_FIELDS},
                )
            )
        if to_write:
            target = {"unique_fields": ["component", "external_id"]}
            if not connection.features.supports_update_conflicts_with_target:
                target = {}  # MySQL/MariaDB: ON DUPLICATE KEY, the only unique key besides the id
            Listing.objects.bulk_create(to_write, update_conflicts=True, update_fields=UPSERT_FIELDS, **target)
        if unchanged_ids:
            # Bookkeeping only (finds a repeat of this id later in the file);
            # QuerySet.update leaves updated_at alone.
            Listing.objects.filter(id__in=unchanged_ids).update(import_job_id=job_id, import_line=None)
        if settings.DEBUG:
            reset_queries()  # DEBUG keeps every SQL string: memory would grow with the file

    def run(self, source: RowSource) -> None:
        total = source.estimated_rows
        batch: list[tuple[int, dict[str, Any]]] = []
        for line, raw in source.rows:
            self.processed += 1
            values, errors = row_parse(line, raw)
            if errors:
                self.reject(errors)
            else:
                batch.append((line, values))
                if len(batch) >= BATCH_SIZE:
                    self.flush(batch)
                    batch = []
            if self.processed % BATCH_SIZE == 0 and self.progress:
                self.progress(self.processed, total)
        self.flush(batch)
        if self.processed == 0:
            raise FileRefused("The file has a header row but no listings.")
        if self.progress:
            self.progress(self.processed, self.processed)


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def listing_import_run(*, job_id: int, progress: ProgressCallback | None = None) -> ImportJob:
    """Run a queued import job once (a repeat delivery of the task does nothing).

    The whole file is read in one transaction, in batches of BATCH_SIZE rows
    (validated rows upserted on (component, external_id)); memory holds one batch.
    The transaction is rolled back for a dry run, for a file refused part-way,
    and, when the job is all-or-nothing, for any row error."""
    now = timezone.now()
    # A job left running by a worker that died (its transaction rolled back with
    # the connection) is taken again once the task time limit has passed.
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

    importer = _Importer(job, report)
    status = ImportStatus.APPLIED
    message = ""
    warnings: list[str] = []
    try:
        with job.file.open("rb") as stream, RowSource(stream, job.original_name) as source:
            warnings = source.warnings
            import_progress.progress_set(job_id=job_id, processed=0, total=source.estimated_rows)
            try:
                with transaction.atomic():
                    importer.load()
                    importer.run(source)
                    if job.dry_run:
                        status = ImportStatus.PREVIEWED
                        raise _Rollback
                    if importer.rejected and job.all_or_nothing:
                        status = ImportStatus.ROLLED_BACK
                        message = (
                            f"{importer.rejected} row(s) have errors, so nothing was imported (all-or-nothing). "
                            "Fix the rows listed below and upload the file again."
                        )
                        raise _Rollback
            except _Rollback:
                pass
    except FileRefused as exc:
        status, message = ImportStatus.FAILED, str(exc)
    except Exception:
        logger.exception("listing import failed", extra={"job_id": job_id})
        status, message = (
            ImportStatus.FAILED,
            "The import stopped on an internal error; nothing was changed. It has been logged.",
        )
        _finish(job, importer, status, message, warnings, applied=False)
        raise
    applied = status == ImportStatus.APPLIED
    if applied:
        listing_cities_invalidate(component_id=job.component_id)
    if applied and importer.rejected:
        message = f"Imported; {importer.rejected} row(s) with errors were skipped."
    _finish(job, importer, status, message, warnings, applied=applied)
    return job


def _finish(
    job: ImportJob, importer: _Importer, status: str, message: str, warnings: list[str], *, applied: bool
) -> None:
    job.status = status
    job.message = message
    job.warnings = warnings
    job.total_rows = importer.processed
    job.processed_rows = importer.processed
    job.created_count = importer.created
    job.updated_count = importer.updated
    job.unchanged_count = importer.unchanged
    job.rejected_count = importer.rejected
    job.groups_created = importer.groups_created
    job.errors = importer.errors
    job.preview = importer.preview
    job.finished_at = timezone.now()
    job.save()
    import_progress.progress_clear(job_id=job.pk)


# --- cloning ------------------------------------------------------------------


def listings_clone(*, source: Component, target: Component) -> None:
    """Clone hook of the listing type: copy the groups and their listings."""
    with transaction.atomic():
        group_map: dict[int, int] = {}
        for group in ListingGroup.objects.filter(component=source).order_by("position", "id"):
            copy = ListingGroup.objects.create(component=target, city=group.city, position=group.position)
            group_map[group.pk] = copy.pk
        batch: list[Listing] = []
        for listing in Listing.objects.filter(component=source).order_by("id").iterator(chunk_size=BATCH_SIZE):
            batch.append(
                Listing(
                    component=target,
                    group_id=group_map[listing.group_id],
                    external_id=listing.external_id,
                    **{f: getattr(listing, f) for f in CONTENT_FIELDS},
                )
            )
            if len(batch) >= BATCH_SIZE:
                Listing.objects.bulk_create(batch)
                batch = []
        if batch:
            Listing.objects.bulk_create(batch)


# --- single listings (demo data, scripts) -------------------------------------


@transaction.atomic
def listing_save(*, component: Component, city: str, external_id: str, title: str, price_fen: int, **fields) -> Listing:
    """Create or update one listing by external id (its group created when new)."""
    listing_component_check(component)
    unknown = set(fields) - set(CONTENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown listing fields: {', '.join(sorted(unknown))}")
    group, _ = listing_group_ensure(component=component, city=city)
    listing, _ = Listing.objects.update_or_create(
        component=component,
        external_id=external_id,
        defaults={"group": group, "title": title, "price_fen": price_fen, **fields},
    )
    listing_cities_invalidate(component_id=component.pk)
    return listing


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
