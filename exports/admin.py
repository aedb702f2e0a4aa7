"""The exported partitions, read-only: row counts, sizes, failures (docs/export.md)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from core.admin_kit import ReadOnlyAdmin
from exports.models import Partition


@admin.register(Partition)
class PartitionAdmin(ReadOnlyAdmin):
    list_display = ("dataset", "hour", "status", "rows", "bytes", "files", "attempts", "exported_at", "short_error")
    list_filter = ("status", "dataset")
    search_fields = ("dataset", "error")
    readonly_fields = [field.name for field in Partition._meta.fields]

    @admin.display(description=_("error"))
    def short_error(self, obj: Partition) -> str:
        return obj.error[:120]
