from django.db import models


class ProcessedEvent(models.Model):
    """An inbound event that was applied. The unique constraint is what makes a
    redelivered event a no-op: the marker row and the handler's writes commit in
    one transaction, so either both exist or neither does."""

    source = models.CharField(max_length=64)
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64)
    processed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "event_id"], name="uniq_processed_event")]
        indexes = [models.Index(fields=["processed_at"])]

    def __str__(self) -> str:
        return f"{self.source}:{self.event_type}:{self.event_id}"


class DeadLetter(models.Model):
    """A copy of what went to the dead-letter queue, for the on-call engineer."""

    source = models.CharField(max_length=64)
    routing_key = models.CharField(max_length=128, blank=True)
    event_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField()
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"])]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.source}:{self.routing_key}: {self.reason[:60]}"


class IdempotencyRecord(models.Model):
    """The first answer to a POST carrying an `Idempotency-Key`, replayed on repeats."""

    scope = models.CharField(max_length=64)
    user_id = models.CharField(max_length=64)
    key = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "user_id", "key"], name="uniq_idempotency_key")]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.scope}:{self.user_id}:{self.key}"


class ProfileKind(models.TextChoices):
    REQUEST = "request", "HTTP request"
    TASK = "task", "Celery task"


class ProfileTrigger(models.TextChoices):
    ON_DEMAND = "on_demand", "Asked for (signed token)"
    SLOW = "slow", "Slow request (sampled)"
    SETTING = "setting", "Task named in PROFILE_CELERY_TASKS"


class Profile(models.Model):
    """One pyinstrument profile of a request or a task (core/profiling.py)."""

    kind = models.CharField(max_length=16, choices=ProfileKind.choices)
    trigger = models.CharField(max_length=16, choices=ProfileTrigger.choices)
    name = models.CharField(max_length=255)
    duration_ms = models.FloatField()
    requested_by = models.CharField(max_length=150, blank=True)
    trace_id = models.CharField(max_length=32, blank=True)
    text = models.TextField()
    html = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"])]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.duration_ms:.0f} ms)"
