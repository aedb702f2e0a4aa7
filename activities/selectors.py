"""Reads (never write, not even the cache): the public (published) view of an activity
as the cache keeps it (activities.cache caches it), drafts for preview, the schedule."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core import signing
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from activities.models import Activity, ActivityRevision, ActivityStatus
from components import registry
from components.models import Component
from core.auth import EndUser
from core.errors import Forbidden, Message, NotFound

logger = logging.getLogger(__name__)

# Why an activity is not served, by status (the 404's machine code, then the message in
# the request's language).
NOT_FOUND: tuple[str, Message] = ("activity_not_found", _("No such activity."))
NOT_SERVED: dict[str, tuple[str, Message]] = {
    ActivityStatus.DRAFT: ("activity_not_found", _("No such activity.")),
    ActivityStatus.SCHEDULED: ("activity_not_started", _("This activity has not started yet.")),
    ActivityStatus.OFFLINE: ("activity_offline", _("This activity is offline for now.")),
    ActivityStatus.ENDED: ("activity_ended", _("This activity has ended.")),
    ActivityStatus.ARCHIVED: ("activity_ended", _("This activity has ended.")),
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


# --- the public view ----------------------------------------------------------
# Cached by activities.cache (the one module that reads and writes the cache); these
# functions read the database and shape what the cache holds.


@dataclass(frozen=True)
class PublicActivity:
    served: bool
    status: str
    body: dict | None  # the snapshot with status/revision/published_at, when served
    error: tuple[str, Message] | None  # (code, message) when not served
    generation: int
    page_html: str | None = None  # the cached page of this generation, when asked for and filled

    def why_not_served(self) -> tuple[str, Message]:
        """(code, message) of a view that is not served."""
        return self.error or NOT_FOUND


def public_entry_load(slug: str) -> dict:
    """What the cache keeps for `slug`: {"status", "body"} (status None: no such activity;
    body None: not served)."""
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


def public_activity_of(entry: dict, *, generation: int, page_html: str | None = None) -> PublicActivity:
    """The served view (or why it is not served) of a cache entry."""
    status = entry["status"]
    if entry["body"] is not None:
        return PublicActivity(True, status, entry["body"], None, generation, page_html)
    error = NOT_SERVED.get(status, NOT_FOUND)
    return PublicActivity(False, status or "", None, error, generation)


def public_activity_body(public: PublicActivity, user: EndUser | None) -> dict:
    """The API's body of a served view: the snapshot with each component's live state
    for `user` (None when anonymous)."""
    if public.body is None:
        raise ValueError("the activity is not served: public_activity_of() says why")
    return {**public.body, "components": components_live_state(public.body["components"], user)}


# --- signed previews of drafts ------------------------------------------------------
PREVIEW_SALT = "activities.preview"


def preview_token_make(activity: Activity) -> str:
    """A signed link token to the draft of `activity` (valid ACTIVITY_PREVIEW_TTL_SECONDS)."""
    return signing.dumps({"activity": activity.pk}, salt=PREVIEW_SALT, compress=True)


def preview_activity_get(token: str) -> Activity:
    """The activity a preview token names; DomainError preview_expired / preview_invalid
    (Forbidden), NotFound when the activity is gone."""
    try:
        data = signing.loads(token, salt=PREVIEW_SALT, max_age=settings.ACTIVITY_PREVIEW_TTL_SECONDS)
    except signing.SignatureExpired:
        raise Forbidden(_("This preview link has expired; ask for a new one."), code="preview_expired") from None
    except signing.BadSignature:
        raise Forbidden(_("This preview link is not valid."), code="preview_invalid") from None
    activity = Activity.objects.filter(pk=data.get("activity")).first()
    if activity is None:
        raise NotFound(_("No such activity."), code="activity_not_found")
    return activity


def components_live_state(components: list[dict], user: EndUser | None) -> list[dict]:
    """Adds each component's per-request `state` (types with a live_state hook only).
    A failing hook is logged and yields `"state": null`, never a broken page."""
    wanted: dict[int, registry.ComponentType] = {}
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
        wanted_type = wanted.get(item["id"])
        if wanted_type is None or wanted_type.live_state is None:
            out.append(item)
            continue
        component = rows.get(item["id"])
        state = None
        if component is not None:
            try:
                state = wanted_type.live_state(component=component, user=user)
            except Exception:
                logger.exception("live_state failed", extra={"component_id": item["id"], "type": item["type"]})
        out.append({**item, "state": state})
    return out


def revisions_of(activity: Activity) -> list[ActivityRevision]:
    return list(ActivityRevision.objects.filter(activity=activity).select_related("created_by").order_by("-number"))


def preview_body(activity: Activity) -> dict:
    """The current draft, built live (never cached), in the API's shape."""
    return {**snapshot_build(activity), "status": activity.status, "revision": None, "published_at": None}


def activities_due(now: datetime | None = None) -> tuple[list[int], list[int]]:
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
