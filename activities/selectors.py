"""Reads: the public (published) view of an activity, cached, and drafts for preview."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from activities.models import Activity, ActivityRevision, ActivityStatus
from components import registry
from components.models import Component
from core.redis import get_redis

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
# bumps it after commit. Each cache entry (the public entry, the page HTML) is one
# Redis key per slug whose value starts with the generation it was filled under,
# and counts only while that is the current generation: a reader that raced a
# publish can only ever write an entry nobody will accept. Since every key is
# known from the slug alone, a warm read is one MGET on the shared client.


def _public_key(kind: str, slug: str) -> str:
    return f"huodong:activities:{kind}:{slug}"


def public_cache_invalidate(slug: str) -> None:
    get_redis().incr(_public_key("gen", slug))


def _entry_pack(generation: int, payload: bytes) -> bytes:
    return b"%d\n%b" % (generation, payload)


def _entry_unpack(raw: bytes | None, generation: int) -> bytes | None:
    """The payload of an entry filled under `generation`, else None (missing or stale)."""
    if raw is None:
        return None
    filled_under, _, payload = raw.partition(b"\n")
    return payload if int(filled_under) == generation else None


def _entry_fill(kind: str, slug: str, generation: int, payload: bytes) -> None:
    get_redis().set(_public_key(kind, slug), _entry_pack(generation, payload), ex=settings.ACTIVITY_CACHE_SECONDS)


@dataclass(frozen=True)
class PublicActivity:
    served: bool
    status: str
    body: dict | None  # the snapshot with status/revision/published_at, when served
    error: tuple[str, str] | None  # (code, message) when not served
    generation: int
    page_html: str | None = None  # the cached page of this generation, when asked for and filled


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
        "published_at": timezone.localtime(revision.created_at).isoformat(),
    }
    return {"status": activity.status, "body": body}


def public_activity_get(slug: str, *, with_page: bool = False) -> PublicActivity:
    """The served view of `slug`, from the cache when warm (one Redis round trip,
    which also brings the cached page HTML when `with_page`). Never writes a cache
    entry for a slug that names no activity."""
    kinds = ("gen", "public", "page") if with_page else ("gen", "public")
    raw_generation, raw_entry, *raw_page = get_redis().mget([_public_key(kind, slug) for kind in kinds])
    generation = int(raw_generation) if raw_generation else 0
    payload = _entry_unpack(raw_entry, generation)
    if payload is None:
        entry = _public_load(slug)
        # Only slugs of real activities get an entry: a negative entry per unknown slug
        # would let anyone fill Redis by asking for made-up slugs (an unknown slug costs
        # one indexed query instead).
        if entry["status"] is not None:
            _entry_fill("public", slug, generation, json.dumps(entry, ensure_ascii=False).encode())
    else:
        entry = json.loads(payload)
    status = entry["status"]
    if entry["body"] is not None:
        page = _entry_unpack(raw_page[0], generation) if raw_page else None
        html = page.decode() if page is not None else None
        return PublicActivity(True, status, entry["body"], None, generation, html)
    error = NOT_SERVED.get(status, ("activity_not_found", "No such activity."))
    return PublicActivity(False, status or "", None, error, generation)


def public_page_fill(slug: str, generation: int, html: str) -> None:
    """Cache the rendered page of a served view, under the generation it was read at."""
    _entry_fill("page", slug, generation, html.encode())


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
