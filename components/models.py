from django.db import models


class Component(models.Model):
    """One block of an activity's page. `type` is a registry key
    (components.registry); `config` is validated against that type's schema.
    Component data (listings, coupon packs, products) lives in the owning app's
    tables, linked to this row."""

    activity = models.ForeignKey("activities.Activity", on_delete=models.CASCADE, related_name="components")
    type = models.CharField(max_length=32, db_index=True)
    position = models.PositiveIntegerField(default=0)
    enabled = models.BooleanField(default=True)
    title = models.CharField(max_length=120, blank=True)
    config = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["activity_id", "position", "id"]
        indexes = [models.Index(fields=["activity", "position"])]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"
