"""Export bookkeeping: the click log's durable staging and one row per partition.

- `ClickLogChunk`: a batch of click-log entries (one dataset, one UTC hour) drained
  from Redis, stored as compressed Arrow IPC. The drain commits chunks and moves its
  cursor in one transaction, then acknowledges the stream entries: a crash before
  the commit re-reads them, a crash after it skips them by stream id.
- `ClickLogCursor`: per stream, the last entry id stored in a chunk.
- `Partition`: one (dataset, UTC hour) of contract §9 and its last export.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ClickLogChunk(models.Model):
    dataset = models.CharField(max_length=32, verbose_name=_("dataset"))
    hour = models.DateTimeField(
        help_text=_("Start of the UTC hour of the entries' receipt time."), verbose_name=_("hour")
    )
    first_id = models.CharField(max_length=32, help_text=_("Stream id of the first entry."), verbose_name=_("first id"))
    last_id = models.CharField(max_length=32, verbose_name=_("last id"))
    rows = models.PositiveIntegerField(verbose_name=_("rows"))
    data = models.BinaryField(
        help_text=_("Arrow IPC stream (lz4-compressed) in the dataset's schema."), verbose_name=_("data")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("click log chunk")
        verbose_name_plural = _("click log chunks")
        constraints = [models.UniqueConstraint(fields=["dataset", "hour", "first_id"], name="exp_chunk_unique")]
        indexes = [models.Index(fields=["dataset", "hour"])]

    def __str__(self) -> str:
        return f"{self.dataset} {self.hour:%Y-%m-%dT%H} {self.first_id}..{self.last_id}"


class ClickLogCursor(models.Model):
    stream = models.CharField(max_length=32, unique=True, verbose_name=_("stream"))
    last_id = models.CharField(max_length=32, default="0-0", verbose_name=_("last id"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("click log cursor")
        verbose_name_plural = _("click log cursors")

    def __str__(self) -> str:
        return f"{self.stream} @ {self.last_id}"


class PartitionStatus(models.TextChoices):
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class Partition(models.Model):
    dataset = models.CharField(max_length=32, verbose_name=_("dataset"))
    hour = models.DateTimeField(help_text=_("Start of the UTC hour."), verbose_name=_("hour"))
    status = models.CharField(
        max_length=16, choices=PartitionStatus.choices, default=PartitionStatus.RUNNING, verbose_name=_("status")
    )
    rows = models.PositiveBigIntegerField(default=0, verbose_name=_("rows"))
    bytes = models.PositiveBigIntegerField(default=0, verbose_name=_("bytes"))
    files = models.PositiveIntegerField(default=0, verbose_name=_("files"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    location = models.CharField(max_length=1000, blank=True, verbose_name=_("location"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    exported_at = models.DateTimeField(null=True, blank=True, verbose_name=_("exported at"))
    staging_purged = models.BooleanField(
        default=False,
        help_text=_("Click-log datasets: the staged chunks were purged, so it cannot be re-exported."),
        verbose_name=_("staging purged"),
    )

    class Meta:
        verbose_name = _("partition")
        verbose_name_plural = _("partitions")
        constraints = [models.UniqueConstraint(fields=["dataset", "hour"], name="exp_partition_unique")]
        indexes = [models.Index(fields=["status", "hour"])]
        ordering = ["-hour", "dataset"]

    def __str__(self) -> str:
        return f"{self.dataset}/dt={self.hour:%Y-%m-%d}/hour={self.hour:%H}"
