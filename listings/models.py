"""Listings (房源) of a listing component, grouped by city (房源组), and the
bulk-import jobs that load them. Writes go through listings.services."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class ListingGroup(models.Model):
    """One city of a listing component."""

    component = models.ForeignKey(
        "components.Component", on_delete=models.CASCADE, related_name="listing_groups", verbose_name=_("component")
    )
    city = models.CharField(max_length=32, verbose_name=_("city"))
    position = models.PositiveIntegerField(default=0, verbose_name=_("position"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("listing group")
        verbose_name_plural = _("listing groups")
        ordering = ["component_id", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["component", "city"], name="listing_group_city_unique")]

    def __str__(self) -> str:
        return f"{self.city} (component #{self.component_id})"


class Listing(models.Model):
    """One listing (房源). `external_id` is the operator's id, unique within the
    component: imports upsert on it. `component` duplicates `group.component` so
    that the uniqueness is a database constraint."""

    component = models.ForeignKey(
        "components.Component", on_delete=models.CASCADE, related_name="listings", verbose_name=_("component")
    )
    group = models.ForeignKey(ListingGroup, on_delete=models.CASCADE, related_name="listings", verbose_name=_("group"))
    external_id = models.CharField(max_length=64, verbose_name=_("external id"))
    title = models.CharField(max_length=200, verbose_name=_("title"))
    district = models.CharField(max_length=64, blank=True, verbose_name=_("district"))
    address = models.CharField(max_length=255, blank=True, verbose_name=_("address"))
    price_fen = models.BigIntegerField(help_text=_("Price in fen (1 yuan = 100 fen)."), verbose_name=_("price fen"))
    area_m2 = models.DecimalField(max_digits=9, decimal_places=2, null=True, blank=True, verbose_name=_("area m2"))
    layout = models.CharField(
        max_length=32, blank=True, help_text=_("Rooms layout, e.g. 3室2厅"), verbose_name=_("layout")
    )
    cover_image_url = models.URLField(max_length=500, blank=True, verbose_name=_("cover image url"))
    # An uploaded cover (components.images: checked, stored once through Django's storage
    # API, served with year-long cache headers). When set it is what pages show; the
    # linked URL above stays for imports and as the fallback. The database default lets
    # the importer's own INSERTs (listings.importing.write) leave the column out.
    cover_image = models.FileField(
        max_length=200,
        blank=True,
        default="",
        db_default="",
        verbose_name=_("uploaded cover image"),
        help_text=_("An uploaded cover; shown instead of the cover image URL."),
    )
    detail_url = models.URLField(max_length=500, blank=True, verbose_name=_("detail url"))
    tags = models.JSONField(default=list, blank=True, verbose_name=_("tags"))
    sort_order = models.IntegerField(default=0, verbose_name=_("sort order"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    # Bookkeeping of the last import that saw this listing (finds duplicate rows
    # within one file without holding every id in memory).
    import_job = models.ForeignKey(
        "listings.ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        verbose_name=_("import job"),
    )
    import_line = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("import line"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("listing")
        verbose_name_plural = _("listings")
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
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    PREVIEWED = "previewed", _("Dry run done (nothing changed)")
    APPLIED = "applied", _("Applied")
    ROLLED_BACK = "rolled_back", _("Rejected: row errors, nothing changed")
    FAILED = "failed", _("Failed: file refused, nothing changed")


FINISHED_STATUSES = (ImportStatus.PREVIEWED, ImportStatus.APPLIED, ImportStatus.ROLLED_BACK, ImportStatus.FAILED)


class ImportJob(models.Model):
    """One upload of a listings file (CSV or XLSX) into a listing component."""

    component = models.ForeignKey(
        "components.Component", on_delete=models.CASCADE, related_name="listing_imports", verbose_name=_("component")
    )
    file = models.FileField(upload_to="listings/imports/%Y/%m/", verbose_name=_("file"))
    original_name = models.CharField(max_length=255, verbose_name=_("original name"))
    file_size = models.BigIntegerField(default=0, verbose_name=_("file size"))
    dry_run = models.BooleanField(default=False, verbose_name=_("dry run"))
    all_or_nothing = models.BooleanField(default=True, verbose_name=_("all or nothing"))
    status = models.CharField(
        max_length=16,
        choices=ImportStatus.choices,
        default=ImportStatus.QUEUED,
        db_index=True,
        verbose_name=_("status"),
    )
    message = models.TextField(blank=True, verbose_name=_("message"))
    total_rows = models.PositiveIntegerField(
        null=True, blank=True, help_text=_("Estimated before the run, exact after."), verbose_name=_("total rows")
    )
    processed_rows = models.PositiveIntegerField(default=0, verbose_name=_("processed rows"))
    created_count = models.PositiveIntegerField(default=0, verbose_name=_("created count"))
    updated_count = models.PositiveIntegerField(default=0, verbose_name=_("updated count"))
    unchanged_count = models.PositiveIntegerField(default=0, verbose_name=_("unchanged count"))
    rejected_count = models.PositiveIntegerField(default=0, verbose_name=_("rejected count"))
    groups_created = models.JSONField(default=list, blank=True, verbose_name=_("groups created"))
    errors = models.JSONField(
        default=list, blank=True, help_text=_("The first row errors: line, column, message."), verbose_name=_("errors")
    )
    preview = models.JSONField(
        default=dict, blank=True, help_text=_("Samples of created and updated rows."), verbose_name=_("preview")
    )
    warnings = models.JSONField(default=list, blank=True, verbose_name=_("warnings"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return gettext("Import #%(id)s %(name)s") % {"id": self.pk, "name": self.original_name}

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES
