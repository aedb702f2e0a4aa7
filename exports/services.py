"""Exports of contract §9: one partition at a time, and what beat asks for hourly.

`partition_export` is the one way a partition is written (beat's task, the
`export_raw` command and the admin all call it). It refuses an hour that is not yet
closed plus EXPORT_DELAY_MINUTES unless forced; a click dataset first drains the
click log up to the moment of the call. A failure is recorded on the partition
(status failed, the error) and raised again, so the Celery task retries it.
"""

from __future__ import annotations

import logging
import traceback
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from redis.lock import Lock

from core.errors import Conflict, DomainError, Unavailable
from core.redis import get_redis
from exports import datasets, drain, storage
from exports.models import ClickLogChunk, Partition, PartitionStatus
from exports.schemas import DATASETS, LOG_DATASETS, SCHEMAS

logger = logging.getLogger("huodong.exports")

HOUR = timedelta(hours=1)


def hour_parse(text: str) -> datetime:
    """`YYYY-MM-DDTHH` (UTC) -> the hour's start."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H").replace(tzinfo=UTC)
    except ValueError:
        raise DomainError(
            _("Hour %(hour)s is not YYYY-MM-DDTHH (UTC).") % {"hour": repr(text)}, code="bad_hour"
        ) from None


def hour_floor(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_ready_at(hour: datetime) -> datetime:
    return hour + HOUR + timedelta(minutes=settings.EXPORT_DELAY_MINUTES)


def _partition_lock(dataset: str, hour: datetime) -> Lock:
    lock: Lock = get_redis().lock(
        f"{settings.ATTRIBUTION_REDIS_PREFIX}:export:{dataset}:{hour:%Y%m%d%H}",
        timeout=settings.EXPORT_PARTITION_LOCK_SECONDS,
    )
    return lock


def partition_export(*, dataset: str, hour: datetime, force: bool = False, now: datetime | None = None) -> Partition:
    """Export (or with force, re-export) one dataset's UTC hour; return its partition."""
    if dataset not in DATASETS:
        raise DomainError(
            _("Unknown dataset %(dataset)s; one of %(datasets)s.")
            % {"dataset": repr(dataset), "datasets": ", ".join(DATASETS)},
            code="unknown_dataset",
        )
    now = now or timezone.now()
    hour = hour_floor(hour)
    if hour > now:
        raise Conflict(
            _("%(dataset)s %(hour)s has not started yet.") % {"dataset": dataset, "hour": f"{hour:%Y-%m-%dT%H}"},
            code="hour_not_started",
        )
    if not force and now < hour_ready_at(hour):
        raise Conflict(
            _("%(dataset)s %(hour)s is not closed and settled yet.")
            % {"dataset": dataset, "hour": f"{hour:%Y-%m-%dT%H}"},
            code="hour_not_ready",
        )
    partition, _created = Partition.objects.get_or_create(dataset=dataset, hour=hour)
    if partition.status == PartitionStatus.DONE and not force and partition_settled(partition):
        return partition
    if dataset in LOG_DATASETS and partition.staging_purged:
        raise Conflict(
            _("%(partition)s: the click log of this hour was purged; it cannot be re-exported.")
            % {"partition": partition},
            code="purged",
        )
    lock = _partition_lock(dataset, hour)
    if not lock.acquire(blocking=False):
        raise Conflict(
            _("%(partition)s is being exported right now.") % {"partition": partition}, code="export_running"
        )
    try:
        Partition.objects.filter(pk=partition.pk).update(
            status=PartitionStatus.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(), error=""
        )
        try:
            if dataset in LOG_DATASETS:
                drained = drain.click_log_drain(
                    wait_seconds=settings.EXPORT_DRAIN_LOCK_SECONDS * 2, max_seconds=settings.EXPORT_DRAIN_SECONDS * 2
                )
                if not drained.complete:  # a backlog: the periodic drain keeps at it, we retry
                    raise Unavailable(_("The click log is not drained up to now; retry shortly."), code="drain_backlog")
            written = storage.partition_write(
                dataset=dataset, hour=hour, schema=SCHEMAS[dataset], batches=datasets.dataset_batches(dataset, hour)
            )
        except Exception as exc:
            error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
            Partition.objects.filter(pk=partition.pk).update(status=PartitionStatus.FAILED, error=error)
            logger.error("export failed", extra={"dataset": dataset, "hour": hour.isoformat(), "error": error})
            raise
        Partition.objects.filter(pk=partition.pk).update(
            status=PartitionStatus.DONE,
            rows=written.rows,
            bytes=written.bytes,
            files=written.files,
            location=written.location,
            exported_at=timezone.now(),
        )
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            pass
    partition.refresh_from_db()
    logger.info("partition exported", extra={"partition": str(partition), "rows": partition.rows})
    return partition


def partition_settled(partition: Partition) -> bool:
    """Done after its hour settled; a partition forced out earlier is exported again."""
    return partition.exported_at is not None and partition.exported_at >= hour_ready_at(partition.hour)


def partitions_due(*, now: datetime | None = None) -> list[tuple[str, datetime]]:
    """(dataset, hour) pairs that beat should export now: settled hours of the last
    EXPORT_CATCHUP_HOURS without a partition exported after they settled, and not
    started recently (a running export, or one Celery is retrying, is left to finish)."""
    now = now or timezone.now()
    latest = hour_floor(now - HOUR - timedelta(minutes=settings.EXPORT_DELAY_MINUTES))
    hours = [latest - HOUR * n for n in range(settings.EXPORT_CATCHUP_HOURS)]
    stale = now - timedelta(seconds=settings.EXPORT_PARTITION_LOCK_SECONDS)
    busy = set()
    for partition in Partition.objects.filter(hour__gte=hours[-1]):
        if partition.status == PartitionStatus.DONE:
            if partition_settled(partition):
                busy.add((partition.dataset, partition.hour))
        elif partition.started_at and partition.started_at >= stale:
            busy.add((partition.dataset, partition.hour))
    return [(dataset, hour) for hour in reversed(hours) for dataset in DATASETS if (dataset, hour) not in busy]


def click_log_purge(*, now: datetime | None = None) -> int:
    """Delete staged click-log chunks of exported hours older than EXPORT_CLICK_LOG_KEEP_HOURS
    (until then `--force` can re-export them); return how many chunks went."""
    now = now or timezone.now()
    cutoff = hour_floor(now) - timedelta(hours=settings.EXPORT_CLICK_LOG_KEEP_HOURS)
    done = Partition.objects.filter(
        dataset__in=LOG_DATASETS, status=PartitionStatus.DONE, hour__lt=cutoff, staging_purged=False
    )
    purged = 0
    for partition in done:
        with transaction.atomic():
            purged += ClickLogChunk.objects.filter(dataset=partition.dataset, hour=partition.hour).delete()[0]
            Partition.objects.filter(pk=partition.pk).update(staging_purged=True)
    return purged
