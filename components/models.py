from django.db import models
from django.utils.translation import gettext_lazy as _


class Component(models.Model):
    """One block of an activity's page. `type` is a registry key
    (components.registry); `config` is validated against that type's schema.
    Component data (listings, coupon packs, products) lives in the owning app's
    tables, linked to this row."""

    activity = models.ForeignKey(
        "activities.Activity", on_delete=models.CASCADE, related_name="components", verbose_name=_("activity")
    )
    type = models.CharField(max_length=32, db_index=True, verbose_name=_("type"))
    position = models.PositiveIntegerField(default=0, verbose_name=_("position"))
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    title = models.CharField(max_length=120, blank=True, verbose_name=_("title"))
    config = models.JSONField(default=dict, blank=True, verbose_name=_("config"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("component")
        verbose_name_plural = _("components")
        ordering = ["activity_id", "position", "id"]
        indexes = [models.Index(fields=["activity", "position"])]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"
