from django.db import models
from django.utils.translation import gettext_lazy as _


class ProcessedEvent(models.Model):
    """An inbound event that was applied. The unique constraint is what makes a
    redelivered event a no-op: the marker row and the handler's writes commit in
    one transaction, so either both exist or neither does."""

    source = models.CharField(max_length=64, verbose_name=_("source"))
    event_id = models.CharField(max_length=64, verbose_name=_("event id"))
    event_type = models.CharField(max_length=64, verbose_name=_("event type"))
    processed_at = models.DateTimeField(auto_now_add=True, verbose_name=_("processed at"))

    class Meta:
        verbose_name = _("processed event")
        verbose_name_plural = _("processed events")
        constraints = [models.UniqueConstraint(fields=["source", "event_id"], name="uniq_processed_event")]
        indexes = [models.Index(fields=["processed_at"])]

    def __str__(self) -> str:
        return f"{self.source}:{self.event_type}:{self.event_id}"


class DeadLetter(models.Model):
    """A copy of what went to the dead-letter queue, for the on-call engineer."""

    source = models.CharField(max_length=64, verbose_name=_("source"))
    routing_key = models.CharField(max_length=128, blank=True, verbose_name=_("routing key"))
    event_id = models.CharField(max_length=64, blank=True, verbose_name=_("event id"))
    reason = models.TextField(verbose_name=_("reason"))
    body = models.TextField(verbose_name=_("body"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("dead letter")
        verbose_name_plural = _("dead letters")
        indexes = [models.Index(fields=["created_at"])]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.source}:{self.routing_key}: {self.reason[:60]}"


class IdempotencyRecord(models.Model):
    """The first answer to a POST carrying an `Idempotency-Key`, replayed on repeats."""

    scope = models.CharField(max_length=64, verbose_name=_("scope"))
    user_id = models.CharField(max_length=64, verbose_name=_("user id"))
    key = models.CharField(max_length=128, verbose_name=_("key"))
    fingerprint = models.CharField(max_length=64, verbose_name=_("fingerprint"))
    response_status = models.PositiveSmallIntegerField(verbose_name=_("response status"))
    response_body = models.JSONField(verbose_name=_("response body"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [models.UniqueConstraint(fields=["scope", "user_id", "key"], name="uniq_idempotency_key")]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.scope}:{self.user_id}:{self.key}"


class ProfileKind(models.TextChoices):
    REQUEST = "request", _("HTTP request")
    TASK = "task", _("Celery task")


class ProfileTrigger(models.TextChoices):
    ON_DEMAND = "on_demand", _("Asked for (signed token)")
    SLOW = "slow", _("Slow request (sampled)")
    SETTING = "setting", _("Task named in PROFILE_CELERY_TASKS")


class Profile(models.Model):
    """One pyinstrument profile of a request or a task (core/profiling.py)."""

    kind = models.CharField(max_length=16, choices=ProfileKind.choices, verbose_name=_("kind"))
    trigger = models.CharField(max_length=16, choices=ProfileTrigger.choices, verbose_name=_("trigger"))
    name = models.CharField(max_length=255, verbose_name=_("name"))
    duration_ms = models.FloatField(verbose_name=_("duration ms"))
    requested_by = models.CharField(max_length=150, blank=True, verbose_name=_("requested by"))
    trace_id = models.CharField(max_length=32, blank=True, verbose_name=_("trace id"))
    text = models.TextField(verbose_name=_("text"))
    html = models.TextField(verbose_name=_("html"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("profile")
        verbose_name_plural = _("profiles")
        indexes = [models.Index(fields=["created_at"])]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.duration_ms:.0f} ms)"
