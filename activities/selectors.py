"""Reads: the public (published) view of an activity, cached, and drafts for preview."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.core.cache import cache
from django.utils import timezone

from activities import conf
from activities.models import Activity, ActivityRevision, ActivityStatus
from components import registry
from components.models import Component
from config.redis import get_redis

logger = logging.getLogger(__name__)

# Why an activity is not served, by status (the 404's machine code).
NOT_SERVED = {
    ActivityStatus.DRAFT: ("activity_not_found", "No such activity."),
    ActivityStatus.SCHEDULED: ("activity_not_started", "This activity has not started yet."),
    ActivityStatus.OFFLINE: ("activity_offline", "This activity is offline for now."),
    ActivityStatus.ENDED: ("activity_ended", "This activity has ended."),
    ActivityStatus.ARCHIVED: ("activity_ended", "This activity has ended."),
}


def activity_theme(activity: Activity) -> dict:
    return {
        "background_color": activity.theme_background_color,
        "header_image": activity.theme_header_image,
        "share_title": activity.theme_share_title or activity.name,
        "share_image": activity.theme_share_image,
    }


def component_public(component: Component) -> dict:
    """The public dict of one component, as frozen in a snapshot."""
    ctype = registry.get(component.type)
    return {
        "id": component.pk,
        "type": component.type,
        "position": component.position,
        "title": component.title,
        "config": ctype.serializer(component).data,
    }


def activity_components(activity: Activity, *, enabled_only: bool = False) -> list[Component]:
    qs = Component.objects.filter(activity=activity).select_related("activity").order_by("position", "id")
    if enabled_only:
        qs = qs.filter(enabled=True)
    return list(qs)


def snapshot_build(activity: Activity) -> dict:
    """What publishing freezes: the activity, its theme and every enabled component's
    public config, in page order."""
    components = activity_components(activity, enabled_only=True)
    return {
        "slug": activity.slug,
        "name": activity.name,
        "description": activity.description,
        "starts_at": timezone.localtime(activity.starts_at).isoformat() if activity.starts_at else None,
        "ends_at": timezone.localtime(activity.ends_at).isoformat() if activity.ends_at else None,
        "theme": activity_theme(activity),
        "components": [component_public(c) for c in components],
    }


# --- the public view, cached --------------------------------------------------
# A per-slug generation number lives in Redis; publishing (or any status change)
# bumps it after commit, so a reader that raced a publish can only ever fill the
# cache entry of a generation nobody reads any more.


def _generation_key(slug: str) -> str:
    return f"huodong:activities:gen:{slug}"


def public_generation(slug: str) -> int:
    raw = get_redis().get(_generation_key(slug))
    return int(raw) if raw else 0


def public_cache_invalidate(slug: str) -> None:
    get_redis().incr(_generation_key(slug))


@dataclass(frozen=True)
class PublicActivity:
    served: bool
    status: str
    body: dict | None  # the snapshot with status/revision/published_at, when served
    error: tuple[str, str] | None  # (code, message) when not served
    generation: int


def _public_load(slug: str) -> dict:
    activity = Activity.objects.filter(slug=slug, is_template=False).select_related("published_revision").first()
    if activity is None:
        return {"status": None, "body": None}
    revision = activity.published_revision
    if activity.status != ActivityStatus.ONLINE or revision is None:
        return {"status": activity.status, "body": None}
    body = {
        **revision.snapshot,
        "status": activity.status,
        "revision": revision.number,
        "published_at": revision.created_at.isoformat(),
    }
    return {"status": activity.status, "body": body}


def public_activity_get(slug: str) -> PublicActivity:
    generation = public_generation(slug)
    key = f"activities:public:{slug}:{generation}"
    entry = cache.get(key)
    if entry is None:
        entry = _public_load(slug)
        cache.set(key, entry, conf.cache_seconds())
    status = entry["status"]
    if entry["body"] is not None:
        return PublicActivity(True, status, entry["body"], None, generation)
    error = NOT_SERVED.get(status, ("activity_not_found", "No such activity."))
    return PublicActivity(False, status or "", None, error, generation)


def components_live_state(components: list[dict], user) -> list[dict]:
    """Adds each component's per-request `state` (types with a live_state hook only).
    A failing hook is logged and yields `"state": null`, never a broken page."""
    wanted = {}
    for item in components:
        try:
            ctype = registry.get(item["type"])
        except registry.UnknownComponentType:
            continue
        if ctype.live_state is not None:
            wanted[item["id"]] = ctype
    if not wanted:
        return components
    rows = Component.objects.select_related("activity").in_bulk(list(wanted))
    out = []
    for item in components:
        ctype = wanted.get(item["id"])
        if ctype is None:
            out.append(item)
            continue
        component = rows.get(item["id"])
        state = None
        if component is not None:
            try:
                state = ctype.live_state(component=component, user=user)
            except Exception:
                logger.exception("live_state failed", extra={"component_id": item["id"], "type": item["type"]})
        out.append({**item, "state": state})
    return out


def revisions_of(activity: Activity) -> list[ActivityRevision]:
    return list(ActivityRevision.objects.filter(activity=activity).select_related("created_by").order_by("-number"))


def preview_body(activity: Activity) -> dict:
    """The current draft, built live (never cached), in the API's shape."""
    return {**snapshot_build(activity), "status": activity.status, "revision": None, "published_at": None}


def activities_due(now=None) -> tuple[list[int], list[int]]:
    """Ids of scheduled activities whose start has come, and of live ones whose end has."""
    from django.db.models import Q

    now = now or timezone.now()
    start = Activity.objects.filter(status=ActivityStatus.SCHEDULED, is_template=False).filter(
        Q(starts_at__isnull=True) | Q(starts_at__lte=now)
    )
    end = Activity.objects.filter(
        status__in=[ActivityStatus.ONLINE, ActivityStatus.OFFLINE, ActivityStatus.SCHEDULED],
        is_template=False,
        ends_at__lte=now,
    )
    return list(start.values_list("id", flat=True)), list(end.values_list("id", flat=True))
