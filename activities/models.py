from django.conf import settings
from django.db import models


class ActivityStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    ONLINE = "online", "Online"
    OFFLINE = "offline", "Offline"
    ENDED = "ended", "Ended"
    ARCHIVED = "archived", "Archived"


class Activity(models.Model):
    """A campaign page (活动). Status moves only through activities.services."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=ActivityStatus.choices, default=ActivityStatus.DRAFT, db_index=True
    )
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    is_template = models.BooleanField(default=False, db_index=True)
    published_revision = models.ForeignKey(
        "activities.ActivityRevision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)

    theme_background_color = models.CharField(max_length=9, default="#FFF5E6")
    theme_header_image = models.URLField(max_length=500, blank=True)
    theme_share_title = models.CharField(max_length=120, blank=True)
    theme_share_image = models.URLField(max_length=500, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "activities"
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(starts_at__isnull=True)
                | models.Q(ends_at__isnull=True)
                | models.Q(ends_at__gt=models.F("starts_at")),
                name="activity_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return self.name


class ActivityRevision(models.Model):
    """A frozen, published state of an activity: what the public page and the API
    serve. Revisions are numbered per activity and never change; a rollback adds a
    new revision that copies an older one."""

    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    snapshot = models.JSONField()
    note = models.CharField(max_length=200, blank=True)
    rolled_back_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["activity_id", "-number"]
        constraints = [models.UniqueConstraint(fields=["activity", "number"], name="activity_revision_number_unique")]

    def __str__(self) -> str:
        return f"{self.activity} r{self.number}"


class AuditAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Updated"
    DELETE = "delete", "Deleted"
    PUBLISH = "publish", "Published"
    ROLLBACK = "rollback", "Rolled back"
    TRANSITION = "transition", "Status changed"
    CLONE = "clone", "Cloned"
    REORDER = "reorder", "Reordered"


class AuditEntry(models.Model):
    """Who changed what and when, for activities and their components. Written by
    activities.services only; `changes` maps a field to [old, new]."""

    activity = models.ForeignKey(Activity, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit")
    activity_label = models.CharField(max_length=200, blank=True)
    object_type = models.CharField(max_length=16)  # "activity" | "component"
    object_id = models.BigIntegerField()
    action = models.CharField(max_length=16, choices=AuditAction.choices)
    changes = models.JSONField(default=dict, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.actor_label or 'system'} {self.action} {self.object_type} #{self.object_id}"
