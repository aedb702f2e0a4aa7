"""Settings of the activities app, with their defaults (set in config/settings.py)."""

from django.conf import settings


def cache_seconds() -> int:
    return getattr(settings, "ACTIVITY_CACHE_SECONDS", 600)


def preview_ttl_seconds() -> int:
    return getattr(settings, "ACTIVITY_PREVIEW_TTL_SECONDS", 72 * 3600)
