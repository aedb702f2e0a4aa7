"""Writes of the listings app: imports, groups, cloning."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
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


class _Importer:
    """One pass over an import file. `apply=False` (a dry run, and the check pass of
    an applying import) only reads the database, outside any transaction, so it takes
    no write lock. `apply=True` writes each batch in its own short transaction under
    the component's row lock, so other writes (claims, orders, other imports) proceed
    between batches."""

    def __init__(self, job: ImportJob, progress: ProgressCallback | None, *, apply: bool):
        self.job = job
        self.component = job.component
        self.progress = progress
        self.apply = apply
        self.processed = 0
        self.created = 0
        self.updated = 0
        self.unchanged = 0
        self.rejected = 0
        self.written_to_line = 0  # the last line of the last committed batch
        self.line = 0
        self.errors: list[dict] = []
        self.preview: dict[str, list] = {"created": [], "updated": []}
        self.groups_created: list[str] = []
        self.city_groups: dict[str, int] = {}
        self.group_cities: dict[int, str] = {}  # the reverse, to show where a listing moves from
        self.seen: dict[str, int] = {}  # external id -> its first line in this file
        self.next_position = 0
        self.max_cities = settings.LISTINGS_MAX_CITIES

    def load(self) -> None:
        """The component's cities, and (applying) its row lock: batches of imports into
        one component run one after the other and each sees the groups the last created."""
        if self.apply:
            Component.objects.select_for_update().filter(pk=self.component.pk).values_list("pk").get()
        for city, group_id in ListingGroup.objects.filter(component=self.component).values_list("city", "id"):
            self.city_groups[city] = group_id
            self.group_cities[group_id] = city
        last = ListingGroup.objects.filter(component=self.component).aggregate(p=Max("position"))["p"]
        self.next_position = max(self.next_position, 0 if last is None else last + 1)

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
        if self.apply:
            group_id = ListingGroup.objects.create(component=self.component, city=city, position=self.next_position).pk
        else:
            group_id = -1 - len(self.groups_created)  # a group the import would create
        self.next_position += 1
        self.city_groups[city] = group_id
        self.group_cities[group_id] = city
        self.groups_created.append(city)
        return group_id

    def flush(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        if not batch:
            return
        if self.apply:
            with transaction.atomic():
                self.load()
                self._flush(batch)
            self.written_to_line = batch[-1][0]
        else:
            self._flush(batch)
        if settings.DEBUG:
            reset_queries()  # DEBUG keeps every SQL string: memory would grow with the file

    def _flush(self, batch: list[tuple[int, dict[str, Any]]]) -> None:
        rows: list[tuple[int, dict[str, Any], int]] = []
        for line, values in batch:
            ext = values["external_id"]
            if ext in self.seen:
                self.reject(
                    [RowError(line, "external_id", f"{ext!r} already appears on row {self.seen[ext]} of this file")]
                )
                continue
            group_id = self.group_id(values["city"], line)
            if group_id is None:
                continue
            self.seen[ext] = line
            rows.append((line, values, group_id))
        existing = {
            row["external_id"]: row
            for row in Listing.objects.filter(
                component=self.component, external_id__in=[values["external_id"] for _, values, _ in rows]
            ).values("id", "external_id", "group_id", *CONTENT_FIELDS)
        }
        to_write: list[Listing] = []
        job_id = self.job.pk
        for line, values, group_id in rows:
            ext = values["external_id"]
            old = existing.get(ext)
            if old is not None:
                changes = {f: [_plain(old[f]), _plain(values[f])] for f in CONTENT_FIELDS if old[f] != values[f]}
                if old["group_id"] != group_id:
                    changes["city"] = [self.group_cities.get(old["group_id"]), values["city"]]
                if not changes:
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
        if to_write and self.apply:
            target = {"unique_fields": ["component", "external_id"]}
            if not connection.features.supports_update_conflicts_with_target:
                target = {}  # MySQL/MariaDB: ON DUPLICATE KEY, the only unique key besides the id
            Listing.objects.bulk_create(to_write, update_conflicts=True, update_fields=UPSERT_FIELDS, **target)

    def read(self, job: ImportJob) -> list[str]:
        """One pass over the stored file; returns the header warnings."""
        limit = settings.LISTINGS_XLSX_MAX_UNPACKED_BYTES
        with (
            job.file.storage.open(job.file.name, "rb") as stream,
            RowSource(stream, job.original_name, max_unpacked_bytes=limit) as source,
        ):
            if self.progress:
                self.progress(0, source.estimated_rows)
            if not self.apply:
                self.load()  # applying, each batch loads the cities under the component's lock
            self.run(source)
            return source.warnings

    def run(self, source: RowSource) -> None:
        total = source.estimated_rows
        batch: list[tuple[int, dict[str, Any]]] = []
        for line, raw in source.rows:
            self.line = line
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
                self.progress(self.processed, total)  # never inside a transaction
        self.flush(batch)
        if self.processed == 0:
            raise FileRefused("The file has a header row but no listings.")
        if self.progress:
            self.progress(self.processed, self.processed)


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def _time_limit_message(importer: _Importer) -> str:
    limit = settings.CELERY_TASK_SOFT_TIME_LIMIT
    head = f"The import hit its time limit ({limit} s) while reading row {importer.line} of the file"
    if not importer.apply or not importer.written_to_line:
        return f"{head}; nothing was changed. Split the file into smaller files and upload them one by one."
    return (
        f"{head}: the rows up to row {importer.written_to_line} were imported, the rest were not. Upload the "
        "file again to finish (rows already imported stay as they are), or split it into smaller files."
    )


def listing_import_run(*, job_id: int, progress: ProgressCallback | None = None) -> ImportJob:
    """Run a queued import job once (a repeat delivery of the task does nothing).

    A dry run is one read-only pass (no transaction, no write lock): what would be
    created, updated, unchanged and rejected. An all-or-nothing import first makes the
    same read-only pass (the file is refused as a whole, or for any row error, before
    anything is written), then a second pass writes in batches of BATCH_SIZE rows, each
    committed on its own (upserts on (component, external_id)), so other writes
    proceed during a long import. A partial import (all_or_nothing=False) writes in
    the one pass: a file refused part-way keeps the batches before, and says so. Memory holds one batch and the
    external ids seen so far (to refuse a repeated id). A job that hits the task's
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

    # Read-only first pass: a dry run, and the check of an all-or-nothing import.
    importer = _Importer(job, report, apply=not (job.dry_run or job.all_or_nothing))
    status = ImportStatus.PREVIEWED
    message = ""
    warnings: list[str] = []
    try:
        warnings = importer.read(job)
        if importer.apply:
            status = ImportStatus.APPLIED
        elif not job.dry_run and importer.rejected:
            status = ImportStatus.ROLLED_BACK
            message = (
                f"{importer.rejected} row(s) have errors, so nothing was imported (all-or-nothing). "
                "Fix the rows listed below and upload the file again."
            )
        elif not job.dry_run:
            importer = _Importer(job, report, apply=True)
            importer.read(job)
            status = ImportStatus.APPLIED
    except FileRefused as exc:
        status, message = ImportStatus.FAILED, str(exc)
        if importer.apply and importer.written_to_line:
            message += f" The rows up to row {importer.written_to_line} were imported; the rest were not."
    except SoftTimeLimitExceeded:
        status, message = ImportStatus.FAILED, _time_limit_message(importer)
        logger.warning("listing import hit its time limit", extra={"job_id": job_id, "line": importer.line})
    except Exception:
        logger.exception("listing import failed", extra={"job_id": job_id})
        status, message = ImportStatus.FAILED, "The import stopped on an internal error. It has been logged."
        if importer.apply and importer.written_to_line:
            message += f" The rows up to row {importer.written_to_line} were imported."
        else:
            message += " Nothing was changed."
        if importer.apply and importer.written_to_line:
            listing_cities_invalidate(component_id=job.component_id)
        _finish(job, importer, status, message, warnings, applied=importer.apply)
        raise
    applied = importer.apply and bool(importer.written_to_line or status == ImportStatus.APPLIED)
    if applied:
        listing_cities_invalidate(component_id=job.component_id)
    if status == ImportStatus.APPLIED and importer.rejected:
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
