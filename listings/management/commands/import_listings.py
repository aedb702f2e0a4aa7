"""`manage.py import_listings COMPONENT_ID FILE`: bulk upload listings from a CSV
or XLSX file, with a progress bar. Same checks and job record as the admin."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from components.models import Component
from listings import importing, services
from listings import progress as import_progress
from listings.importing import column_label
from listings.models import ImportJob, ImportStatus


class Command(BaseCommand):
    help = "Import listings from a CSV (UTF-8) or XLSX file into a listing component (upsert by external id)."

    def add_arguments(self, parser):
        parser.add_argument("component_id", type=int)
        parser.add_argument("file", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="Show what would change; change nothing.")
        parser.add_argument(
            "--skip-bad-rows",
            action="store_true",
            help="Import the good rows and skip rows with errors (default: all or nothing).",
        )
        parser.add_argument(
            "--background",
            action="store_true",
            help="Queue the job for the Celery workers and follow its progress (default: run here).",
        )

    def handle(self, *args, component_id: int, file: Path, dry_run: bool, skip_bad_rows: bool, background: bool, **_):
        component = Component.objects.filter(pk=component_id).first()
        if component is None:
            raise CommandError(f"No component #{component_id}.")
        if not file.is_file():
            raise CommandError(f"No file at {file}.")
        try:
            with open(file, "rb") as handle:
                job = importing.listing_import_start(
                    component=component,
                    upload=File(handle, name=file.name),
                    filename=file.name,
                    dry_run=dry_run,
                    all_or_nothing=not skip_bad_rows,
                    run_async=background,
                )
        except services.ImportRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Import job #{job.pk}: {file.name} → component #{component.pk}")
        if background:
            job = self._follow(job)
        else:
            job = importing.listing_import_run(job_id=job.pk, progress=self._bar)
            self.stdout.write("")
        self._report(job)
        if job.status in (ImportStatus.FAILED, ImportStatus.ROLLED_BACK):
            raise CommandError(job.message)

    def _bar(self, processed: int, total: int | None) -> None:
        if total:
            done = min(processed / total, 1.0)
            filled = int(done * 30)
            self.stdout.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {processed}/{total} rows", ending="")
        else:
            self.stdout.write(f"\r{processed} rows", ending="")
        self.stdout.flush()

    def _follow(self, job: ImportJob) -> ImportJob:
        while True:
            job.refresh_from_db()
            if job.finished:
                self._bar(job.processed_rows, job.total_rows)
                self.stdout.write("")
                return job
            live = import_progress.progress_get(job_id=job.pk)
            if live:
                self._bar(*live)
            time.sleep(0.5)

    def _report(self, job: ImportJob) -> None:
        verb = "would be " if job.dry_run else ""
        self.stdout.write(f"Status: {job.get_status_display()}")
        self.stdout.write(
            f"  {verb}created {job.created_count}, {verb}updated {job.updated_count}, "
            f"unchanged {job.unchanged_count}, rejected {job.rejected_count} of {job.processed_rows} rows"
        )
        if job.groups_created:
            self.stdout.write(f"  new cities: {', '.join(job.groups_created)}")
        for warning in job.warnings:
            self.stdout.write(self.style.WARNING(f"  {warning}"))
        for error in job.errors[:50]:
            where = f"row {error['line']}" if error["line"] else "file"
            column = f", column {column_label(error['column'])}" if error["column"] else ""
            self.stdout.write(self.style.ERROR(f"  {where}{column}: {error['message']}"))
        if job.rejected_count > 50:
            self.stdout.write(f"  … see admin › Import jobs › #{job.pk} for all errors")
        if job.status == ImportStatus.APPLIED:
            self.stdout.write(self.style.SUCCESS(job.message or "Imported."))
