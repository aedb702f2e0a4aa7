"""Reads of the ad-report data (never write)."""

from __future__ import annotations

from django.db.models import QuerySet

from adreports.models import AdWarning


def open_warnings() -> QuerySet[AdWarning]:
    return AdWarning.objects.filter(resolved_at__isnull=True).select_related("account").order_by("-last_at")
