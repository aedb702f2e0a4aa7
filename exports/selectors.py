"""Reads of exports (never write)."""

from __future__ import annotations

from django.db.models import QuerySet

from exports.models import ClickLogChunk, Partition


def partitions_list(*, dataset: str | None = None) -> QuerySet[Partition]:
    queryset = Partition.objects.all()
    return queryset.filter(dataset=dataset) if dataset else queryset


def click_log_staged(*, dataset: str) -> int:
    """Rows drained from the click log and not yet purged."""
    return sum(ClickLogChunk.objects.filter(dataset=dataset).values_list("rows", flat=True))
