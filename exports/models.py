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


class ClickLogChunk(models.Model):
    dataset = models.CharField(max_length=32)
    hour = models.DateTimeField(help_text="Start of the UTC hour of the entries' receipt time.")
    first_id = models.CharField(max_length=32, help_text="Stream id of the first entry.")
    last_id = models.CharField(max_length=32)
    rows = models.PositiveIntegerField()
    data = models.BinaryField(help_text="Arrow IPC stream (lz4-compressed) in the dataset's schema.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "hour", "first_id"], name="exp_chunk_unique")]
        indexes = [models.Index(fields=["dataset", "hour"])]

    def __str__(self) -> str:
        return f"{self.dataset} {self.hour:%Y-%m-%dT%H} {self.first_id}..{self.last_id}"


class ClickLogCursor(models.Model):
    stream = models.CharField(max_length=32, unique=True)
    last_id = models.CharField(max_length=32, default="0-0")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.stream} @ {self.last_id}"


class PartitionStatus(models.TextChoices):
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


class Partition(models.Model):
    dataset = models.CharField(max_length=32)
    hour = models.DateTimeField(help_text="Start of the UTC hour.")
    status = models.CharField(max_length=16, choices=PartitionStatus.choices, default=PartitionStatus.RUNNING)
    rows = models.PositiveBigIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)
    files = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    location = models.CharField(max_length=1000, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    exported_at = models.DateTimeField(null=True, blank=True)
    staging_purged = models.BooleanField(
        default=False, help_text="Click-log datasets: the staged chunks were purged, so it cannot be re-exported."
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "hour"], name="exp_partition_unique")]
        indexes = [models.Index(fields=["status", "hour"])]
        ordering = ["-hour", "dataset"]

    def __str__(self) -> str:
        return f"{self.dataset}/dt={self.hour:%Y-%m-%d}/hour={self.hour:%H}"
