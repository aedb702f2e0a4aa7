"""Listings (房源) of a listing component, grouped by city (房源组), and the
bulk-import jobs that load them. Writes go through listings.services."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ListingGroup(models.Model):
    """One city of a listing component."""

    component = models.ForeignKey("components.Component", on_delete=models.CASCADE, related_name="listing_groups")
    city = models.CharField(max_length=32)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["component_id", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["component", "city"], name="listing_group_city_unique")]

    def __str__(self) -> str:
        return f"{self.city} (component #{self.component_id})"


class Listing(models.Model):
    """One listing (房源). `external_id` is the operator's id, unique within the
    component: imports upsert on it. `component` duplicates `group.component` so
    that the uniqueness is a database constraint."""

    component = models.ForeignKey("components.Component", on_delete=models.CASCADE, related_name="listings")
    group = models.ForeignKey(ListingGroup, on_delete=models.CASCADE, related_name="listings")
    external_id = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    district = models.CharField(max_length=64, blank=True)
    address = models.CharField(max_length=255, blank=True)
    price_fen = models.BigIntegerField(help_text="Price in fen (1 yuan = 100 fen).")
    area_m2 = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True)
    layout = models.CharField(max_length=32, blank=True, help_text="Rooms layout, e.g. 3室2厅")
    cover_image_url = models.URLField(max_length=500, blank=True)
    detail_url = models.URLField(max_length=500, blank=True)
    tags = models.JSONField(default=list, blank=True)
    sort_order = models.IntegerField(default=0)
    is_active = models.BooleanField(default=True)
    # Bookkeeping of the last import that saw this listing (finds duplicate rows
    # within one file without holding every id in memory).
    import_job = models.ForeignKey(
        "listings.ImportJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    import_line = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["group_id", "sort_order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["component", "external_id"], name="listing_external_id_unique"),
            models.CheckConstraint(condition=Q(price_fen__gte=0), name="listing_price_not_negative"),
            models.CheckConstraint(condition=Q(area_m2__isnull=True) | Q(area_m2__gt=0), name="listing_area_positive"),
        ]
        indexes = [models.Index(fields=["group", "is_active", "sort_order", "id"], name="listing_public_order")]

    def __str__(self) -> str:
        return f"{self.external_id} {self.title}"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    PREVIEWED = "previewed", "Dry run done (nothing changed)"
    APPLIED = "applied", "Applied"
    ROLLED_BACK = "rolled_back", "Rejected: row errors, nothing changed"
    FAILED = "failed", "Failed: file refused, nothing changed"


FINISHED_STATUSES = (ImportStatus.PREVIEWED, ImportStatus.APPLIED, ImportStatus.ROLLED_BACK, ImportStatus.FAILED)


class ImportJob(models.Model):
    """One upload of a listings file (CSV or XLSX) into a listing component."""

    component = models.ForeignKey("components.Component", on_delete=models.CASCADE, related_name="listing_imports")
    file = models.FileField(upload_to="listings/imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    file_size = models.BigIntegerField(default=0)
    dry_run = models.BooleanField(default=False)
    all_or_nothing = models.BooleanField(default=True)
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED, db_index=True)
    message = models.TextField(blank=True)
    total_rows = models.PositiveIntegerField(null=True, blank=True, help_text="Estimated before the run, exact after.")
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    groups_created = models.JSONField(default=list, blank=True)
    errors = models.JSONField(default=list, blank=True, help_text="The first row errors: line, column, message.")
    preview = models.JSONField(default=dict, blank=True, help_text="Samples of created and updated rows.")
    warnings = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Import #{self.pk} {self.original_name}"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES
