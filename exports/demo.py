"""Demo: a few clicks through the real click path, then the current hour exported
(forced early; beat exports it again once the hour has settled), so the admin lists
partitions and var/export holds Parquet files (idempotent: once per database)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.utils import timezone

from attribution.clicks import click_handle
from attribution.models import TrackingLink
from exports import services
from exports.models import Partition
from exports.schemas import DATASETS


def finalize(stdout) -> None:
    if Partition.objects.exists():
        return
    links = list(TrackingLink.objects.filter(enabled=True)[:2])
    for n, link in enumerate(links * 5):
        query = urlencode(
            {"idfa": f"6D92078A-8246-4BA4-AE5B-{n:012d}", "ip": f"203.0.113.{n + 1}", "ua": "Mozilla/5.0 (demo)"}
        )
        click_handle(platform=link.platform, token=link.token, query=query, source_ip="127.0.0.1")
    click_handle(platform="generic", token="no-such-link", query="ip=198.51.100.7", source_ip="127.0.0.1")
    hour = services.hour_floor(timezone.now())
    for dataset in DATASETS:
        partition = services.partition_export(dataset=dataset, hour=hour, force=True)
        if dataset in ("clicks", "click_rejects"):
            stdout.write(f"  export {partition}: {partition.rows} rows -> {partition.location}")


def seed(stdout) -> None:
    """Nothing before the other apps' demo data exists (see finalize)."""
