from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ActivityStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    ONLINE = "online", _("Online")
    OFFLINE = "offline", _("Offline")
    ENDED = "ended", _("Ended")
    ARCHIVED = "archived", _("Archived")


class Activity(models.Model):
    """A campaign page (活动). Status moves only through activities.services."""

    name = models.CharField(max_length=200, verbose_name=_("name"))
    slug = models.SlugField(max_length=80, unique=True, verbose_name=_("slug"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    status = models.CharField(
        max_length=16,
        choices=ActivityStatus.choices,
        default=ActivityStatus.DRAFT,
        db_index=True,
        verbose_name=_("status"),
    )
    starts_at = models.DateTimeField(null=True, blank=True, verbose_name=_("starts at"))
    ends_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ends at"))
    is_template = models.BooleanField(default=False, db_index=True, verbose_name=_("is template"))
    published_revision = models.ForeignKey(
        "activities.ActivityRevision",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("published revision"),
    )
    published_at = models.DateTimeField(null=True, blank=True, verbose_name=_("published at"))

    theme_background_color = models.CharField(max_length=9, default="#FFF5E6", verbose_name=_("theme background color"))
    theme_header_image = models.URLField(max_length=500, blank=True, verbose_name=_("theme header image"))
    theme_share_title = models.CharField(max_length=120, blank=True, verbose_name=_("theme share title"))
    theme_share_image = models.URLField(max_length=500, blank=True, verbose_name=_("theme share image"))

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("updated by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
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

    activity = models.ForeignKey(
        Activity, on_delete=models.CASCADE, related_name="revisions", verbose_name=_("activity")
    )
    number = models.PositiveIntegerField(verbose_name=_("number"))
    snapshot = models.JSONField(verbose_name=_("snapshot"))
    note = models.CharField(max_length=200, blank=True, verbose_name=_("note"))
    rolled_back_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("rolled back from")
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("activity revision")
        verbose_name_plural = _("activity revisions")
        ordering = ["activity_id", "-number"]
        constraints = [models.UniqueConstraint(fields=["activity", "number"], name="activity_revision_number_unique")]

    def __str__(self) -> str:
        return f"{self.activity} r{self.number}"


class AuditAction(models.TextChoices):
    CREATE = "create", _("Created")
    UPDATE = "update", _("Updated")
    DELETE = "delete", _("Deleted")
    PUBLISH = "publish", _("Published")
    ROLLBACK = "rollback", _("Rolled back")
    TRANSITION = "transition", _("Status changed")
    CLONE = "clone", _("Cloned")
    REORDER = "reorder", _("Reordered")


class AuditEntry(models.Model):
    """Who changed what and when, for activities and their components. Written by
    activities.services only; `changes` maps a field to [old, new]."""

    activity = models.ForeignKey(
        Activity, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit", verbose_name=_("activity")
    )
    activity_label = models.CharField(max_length=200, blank=True, verbose_name=_("activity label"))
    object_type = models.CharField(max_length=16, verbose_name=_("object type"))  # "activity" | "component"
    object_id = models.BigIntegerField(verbose_name=_("object id"))
    action = models.CharField(max_length=16, choices=AuditAction.choices, verbose_name=_("action"))
    changes = models.JSONField(default=dict, blank=True, verbose_name=_("changes"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_label = models.CharField(max_length=150, blank=True, verbose_name=_("actor label"))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("audit entry")
        ordering = ["-created_at", "-id"]
        verbose_name_plural = _("audit entries")
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.actor_label or 'system'} {self.action} {self.object_type} #{self.object_id}"
