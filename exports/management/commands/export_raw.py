"""`manage.py export_raw --hour YYYY-MM-DDTHH [--dataset NAME] [--force]` (docs/export.md)."""

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from exports import services
from exports.schemas import DATASETS


class Command(BaseCommand):
    help = "Export (or with --force re-export) one UTC hour of raw data as Parquet partitions (contract §9)."

    def add_arguments(self, parser):
        parser.add_argument("--hour", required=True, help="UTC hour, YYYY-MM-DDTHH")
        parser.add_argument("--dataset", choices=DATASETS, help="One dataset (default: all)")
        parser.add_argument(
            "--force", action="store_true", help="Re-export a done partition; export an open or unsettled hour"
        )

    def handle(self, *args, hour, dataset, force, **options):
        try:
            start = services.hour_parse(hour)
        except DomainError as exc:
            raise CommandError(exc.message) from None
        failed = []
        for name in [dataset] if dataset else DATASETS:
            try:
                partition = services.partition_export(dataset=name, hour=start, force=force)
            except DomainError as exc:
                failed.append(name)
                self.stderr.write(f"{name}: {exc.message}")
                continue
            self.stdout.write(
                f"{partition}: {partition.rows} rows, {partition.files} file(s), {partition.bytes} bytes"
                f" -> {partition.location}"
            )
        if failed:
            raise CommandError(f"not exported: {', '.join(failed)}")
