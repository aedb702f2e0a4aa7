"""Writes on activities: editing, publishing, status changes, rollback, templates and
scheduling. Every write records an AuditEntry (activities.audit). Errors are domain
errors (config.errors: Conflict, DomainError), mapped to statuses by the API layer and
to messages by the admin. Component writes live in components.services (re-exported
here)."""

from __future__ import annotations

import copy
import re
import secrets
from datetime import datetime

from django.db import transaction
from django.db.models import Max, ProtectedError, RestrictedError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from activities import cache, selectors
from activities.audit import Actor, actor_user, audit_record
from activities.models import Activity, ActivityRevision, ActivityStatus, AuditAction
from components import registry
from components.models import Component
from components.services import (  # noqa: F401 (re-exported: the component writes)
    component_create,
    component_delete,
    component_update,
    components_reorder,
)
from core.errors import Conflict, DomainError, Message

S = ActivityStatus

# The state machine. Publishing moves a draft to scheduled (and on to online when
# its start has come); beat moves scheduled -> online at the start and online or
# offline -> ended at the end. scheduled -> draft un-schedules.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.SCHEDULED}),
    S.SCHEDULED: frozenset({S.ONLINE, S.DRAFT}),
    S.ONLINE: frozenset({S.OFFLINE, S.ENDED}),
    S.OFFLINE: frozenset({S.ONLINE, S.ENDED, S.ARCHIVED}),
    S.ENDED: frozenset({S.ARCHIVED}),
    S.ARCHIVED: frozenset(),
}

EDITABLE_FIELDS = (
    "name",
    "slug",
    "description",
    "starts_at",
    "ends_at",
    "theme_background_color",
    "theme_header_image",
    "theme_share_title",
    "theme_share_image",
)
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


def _invalidate_on_commit(slug: str) -> None:
    transaction.on_commit(lambda: cache.public_cache_invalidate(slug))


# --- activities -----------------------------------------------------------------


def _status_words(status: str) -> str:
    """A status as a sentence reads it, in the active language ("offline", "下线")."""
    try:
        return str(S(status).label).lower()
    except ValueError:
        return status


def activity_values_errors(values: dict) -> dict[str, list[Message]]:
    """Field errors of activity values (used by the services and the admin form)."""
    errors: dict[str, list[Message]] = {}
    if "name" in values and not (values["name"] or "").strip():
        errors["name"] = [_("is required")]
    if "slug" in values and not SLUG_RE.match(values["slug"] or ""):
        errors["slug"] = [_("use lower-case letters, digits and hyphens (at most 80)")]
    color = values.get("theme_background_color")
    if color is not None and not COLOR_RE.match(color):
        errors["theme_background_color"] = [_("must be a colour like #FFF5E6")]
    for key in ("theme_header_image", "theme_share_image"):
        url = values.get(key)
        if url and not re.match(r"^https?://\S+$", url):
            errors[key] = [_("must be an http(s) URL")]
    starts_at, ends_at = values.get("starts_at"), values.get("ends_at")
    if starts_at and ends_at and ends_at <= starts_at:
        errors["ends_at"] = [_("must be after the start")]
    return errors


def _activity_validate(values: dict) -> None:
    errors = activity_values_errors(values)
    if errors:
        message = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in errors.items())
        raise DomainError(message, code="activity_invalid", details=errors)


@transaction.atomic
def activity_create(
    *,
    actor: Actor,
    name: str,
    slug: str,
    description: str = "",
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    is_template: bool = False,
    **theme: str,
) -> Activity:
    unknown = set(theme) - {f for f in EDITABLE_FIELDS if f.startswith("theme_")}
    if unknown:
        raise TypeError(f"unknown activity fields: {sorted(unknown)}")
    values = {"name": name, "slug": slug, "description": description, "starts_at": starts_at, "ends_at": ends_at}
    values.update(theme)
    _activity_validate(values)
    if Activity.objects.filter(slug=slug).exists():
        raise Conflict(
            _("The slug %(slug)s is already used by another activity.") % {"slug": repr(slug)}, code="slug_taken"
        )
    user = actor_user(actor)
    activity = Activity.objects.create(**values, is_template=is_template, created_by=user, updated_by=user)
    audit_record(
        actor=actor,
        action=AuditAction.CREATE,
        object_type="activity",
        object_id=activity.pk,
        activity=activity,
        changes={k: [None, v] for k, v in values.items() if v not in (None, "")},
    )
    return activity


@transaction.atomic
def activity_update(*, activity: Activity, actor: Actor, **values: object) -> Activity:
    """Edit the draft. Users keep seeing the published revision until the next publish
    (the schedule, starts_at and ends_at, drives beat at once)."""
    unknown = set(values) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable: {sorted(unknown)}")
    activity = Activity.objects.select_for_update().get(pk=activity.pk)
    if activity.status == S.ARCHIVED:
        raise Conflict(_("An archived activity cannot be edited."), code="activity_archived")
    merged = {f: getattr(activity, f) for f in EDITABLE_FIELDS} | values
    _activity_validate(merged)
    changes = {k: [getattr(activity, k), v] for k, v in values.items() if getattr(activity, k) != v}
    if "slug" in changes:
        if activity.published_revision_id is not None:
            raise Conflict(_("The slug of a published activity cannot change (its links are out)."), code="slug_locked")
        if Activity.objects.filter(slug=values["slug"]).exclude(pk=activity.pk).exists():
            raise Conflict(_("The slug %(slug)s is already used.") % {"slug": repr(values["slug"])}, code="slug_taken")
    if not changes:
        return activity
    for key, (_old, new) in changes.items():
        setattr(activity, key, new)
    activity.updated_by = actor_user(actor)
    activity.save()
    audit_record(
        actor=actor,
        action=AuditAction.UPDATE,
        object_type="activity",
        object_id=activity.pk,
        activity=activity,
        changes=changes,
    )
    return activity


def _transition(activity: Activity, to: str, actor: Actor, reason: str = "", *, allow_past_end: bool = False) -> None:
    """Move a locked activity row; the caller holds the lock. Going online after the
    end is refused unless `allow_past_end` (beat, which ends it in the same transaction)."""
    if to not in TRANSITIONS.get(activity.status, ()):
        raise Conflict(
            _("An activity cannot go from %(from)s to %(to)s.")
            % {"from": _status_words(activity.status), "to": _status_words(to)},
            code="transition_not_allowed",
        )
    if to == S.ONLINE and activity.published_revision_id is None:
        raise Conflict(_("Publish the activity before putting it online."), code="not_published")
    if to == S.ONLINE and not allow_past_end and activity.ends_at and activity.ends_at <= timezone.now():
        raise DomainError(
            _("The activity's end time has passed; move it before going online."), code="invalid_schedule"
        )
    old = activity.status
    activity.status = to
    activity.save(update_fields=["status", "updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.TRANSITION,
        object_type="activity",
        object_id=activity.pk,
        activity=activity,
        changes={"status": [old, to], **({"reason": ["", reason]} if reason else {})},
    )
    _invalidate_on_commit(activity.slug)


@transaction.atomic
def activity_transition(*, activity: Activity, to: str, actor: Actor, reason: str = "") -> Activity:
    """Operators' status changes: take offline, bring back online, end, archive,
    un-schedule. Refused (Conflict transition_not_allowed) unless the state machine allows it."""
    if to not in S.values:
        raise DomainError(_("Unknown status %(status)s.") % {"status": repr(to)}, code="invalid_status")
    locked = Activity.objects.select_for_update().get(pk=activity.pk)
    if locked.is_template:
        raise Conflict(_("A template is never online; create an activity from it."), code="is_template")
    _transition(locked, to, actor, reason)
    return locked


def _revision_add(
    *, activity: Activity, snapshot: dict, actor: Actor, note: str, rolled_back_from: ActivityRevision | None = None
) -> ActivityRevision:
    number = (ActivityRevision.objects.filter(activity=activity).aggregate(n=Max("number"))["n"] or 0) + 1
    revision = ActivityRevision.objects.create(
        activity=activity,
        number=number,
        snapshot=snapshot,
        note=note[:200],
        rolled_back_from=rolled_back_from,
        created_by=actor_user(actor),
    )
    activity.published_revision = revision
    activity.published_at = revision.created_at
    activity.save(update_fields=["published_revision", "published_at", "updated_at"])
    return revision


def _publishable(activity: Activity) -> None:
    if activity.is_template:
        raise Conflict(_("A template cannot be published; create an activity from it."), code="is_template")
    if activity.status in (S.ENDED, S.ARCHIVED):
        raise Conflict(
            _("An %(status)s activity cannot be published.") % {"status": _status_words(activity.status)},
            code="activity_closed",
        )
    if activity.starts_at and activity.ends_at and activity.ends_at <= activity.starts_at:
        raise DomainError(_("The activity ends before it starts."), code="invalid_schedule")
    if activity.ends_at and activity.ends_at <= timezone.now():
        raise DomainError(_("The activity's end time has already passed."), code="invalid_schedule")
    components = selectors.activity_components(activity, enabled_only=True)
    if not components:
        raise DomainError(_("Add at least one enabled component before publishing."), code="no_components")
    errors = {}
    for component in components:
        try:
            registry.config_validate(component.type, component.config)
        except registry.UnknownComponentType:
            errors[f"component {component.pk}"] = [
                _("unknown component type %(type)s") % {"type": repr(component.type)}
            ]
        except registry.ConfigInvalid as exc:
            errors[f"component {component.pk} ({component.type})"] = [str(exc)]
    if errors:
        message = "; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items())
        raise DomainError(
            _("Fix these components first: %(problems)s") % {"problems": message}, code="config_invalid", details=errors
        )


@transaction.atomic
def activity_publish(*, activity: Activity, actor: Actor, note: str = "") -> ActivityRevision:
    """Freeze the current activity, theme and enabled components as a new revision,
    which the page and the API serve from now on. A draft becomes scheduled, and
    online at once if its start has come. Publishing unchanged content again
    returns the current revision."""
    locked = Activity.objects.select_for_update().get(pk=activity.pk)
    _publishable(locked)
    snapshot = selectors.snapshot_build(locked)
    current = locked.published_revision
    if current is not None and current.snapshot == snapshot:
        revision = current  # nothing changed: no new revision
    else:
        revision = _revision_add(activity=locked, snapshot=snapshot, actor=actor, note=note)
        audit_record(
            actor=actor,
            action=AuditAction.PUBLISH,
            object_type="activity",
            object_id=locked.pk,
            activity=locked,
            changes={"revision": [current.number if current else None, revision.number]},
        )
    if locked.status == S.DRAFT:
        _transition(locked, S.SCHEDULED, actor, "published")
    if locked.status == S.SCHEDULED and (locked.starts_at is None or locked.starts_at <= timezone.now()):
        _transition(locked, S.ONLINE, actor, "start reached")
    _invalidate_on_commit(locked.slug)
    activity.refresh_from_db()
    return revision


@transaction.atomic
def activity_rollback(*, activity: Activity, revision: ActivityRevision, actor: Actor) -> ActivityRevision:
    """Serve an earlier revision again, as a new revision (history stays linear).
    The draft (components being edited) is left as it is."""
    locked = Activity.objects.select_for_update().get(pk=activity.pk)
    if revision.activity_id != locked.pk:
        raise DomainError(_("That revision belongs to another activity."), code="revision_mismatch")
    if locked.status in (S.ENDED, S.ARCHIVED):
        raise Conflict(
            _("An %(status)s activity cannot be rolled back.") % {"status": _status_words(locked.status)},
            code="activity_closed",
        )
    if locked.published_revision_id == revision.pk:
        raise Conflict(
            _("Revision %(number)s is already the one served.") % {"number": revision.number}, code="already_current"
        )
    previous = locked.published_revision
    new = _revision_add(
        activity=locked,
        snapshot=copy.deepcopy(revision.snapshot),
        actor=actor,
        note=f"rollback to r{revision.number}",
        rolled_back_from=revision,
    )
    audit_record(
        actor=actor,
        action=AuditAction.ROLLBACK,
        object_type="activity",
        object_id=locked.pk,
        activity=locked,
        changes={"revision": [previous.number if previous else None, new.number], "copy_of": [None, revision.number]},
    )
    _invalidate_on_commit(locked.slug)
    activity.refresh_from_db()
    return new


@transaction.atomic
def activity_delete(*, activity: Activity, actor: Actor) -> None:
    if activity.status in (S.SCHEDULED, S.ONLINE):
        raise Conflict(_("Take the activity offline (or un-schedule it) before deleting it."), code="activity_live")
    audit_record(
        actor=actor,
        action=AuditAction.DELETE,
        object_type="activity",
        object_id=activity.pk,
        activity=None,
        changes={"name": [activity.name, None], "slug": [activity.slug, None]},
    )
    slug = activity.slug
    try:
        activity.delete()
    except (ProtectedError, RestrictedError) as exc:
        raise Conflict(
            _("Records still point at this activity: %(records)s") % {"records": exc.args[0]}, code="activity_in_use"
        ) from None
    _invalidate_on_commit(slug)


# --- templates (clone) ----------------------------------------------------------


def _free_slug(base: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", base.lower()).strip("-")[:70] or "activity"
    while True:
        slug = f"{base}-{secrets.token_hex(3)}"
        if not Activity.objects.filter(slug=slug).exists():
            return slug


@transaction.atomic
def activity_clone(
    *, source: Activity, actor: Actor, is_template: bool, name: str | None = None, slug: str | None = None
) -> Activity:
    """A deep copy as a new draft: the activity, its theme, every component with its
    config, and each component's data (through its type's clone hook), all in one
    transaction. Dates are not copied: a copy is scheduled anew."""
    slug = slug or _free_slug(("tpl-" if is_template else "") + source.slug)
    target = activity_create(
        actor=actor,
        name=name or (f"{source.name} (template)" if is_template else f"{source.name} (copy)"),
        slug=slug,
        description=source.description,
        is_template=is_template,
        theme_background_color=source.theme_background_color,
        theme_header_image=source.theme_header_image,
        theme_share_title=source.theme_share_title,
        theme_share_image=source.theme_share_image,
    )
    for component in Component.objects.filter(activity=source).order_by("position", "id"):
        try:
            ctype = registry.get(component.type)
        except registry.UnknownComponentType:
            raise DomainError(
                _("Component %(id)s has an unknown type %(type)s.")
                % {"id": component.pk, "type": repr(component.type)},
                code="unknown_component_type",
            ) from None
        copy_row = Component.objects.create(
            activity=target,
            type=component.type,
            position=component.position,
            enabled=component.enabled,
            title=component.title,
            config=copy.deepcopy(component.config),
        )
        ctype.clone(source=component, target=copy_row)
    audit_record(
        actor=actor,
        action=AuditAction.CLONE,
        object_type="activity",
        object_id=target.pk,
        activity=target,
        changes={"cloned_from": [None, source.pk], "is_template": [None, is_template]},
    )
    return target


def activity_save_as_template(*, activity: Activity, actor: Actor, name: str | None = None) -> Activity:
    return activity_clone(source=activity, actor=actor, is_template=True, name=name)


def activity_create_from_template(
    *, template: Activity, actor: Actor, name: str | None = None, slug: str | None = None
) -> Activity:
    if not template.is_template:
        raise DomainError(_("Pick a template to create an activity from."), code="not_a_template")
    return activity_clone(source=template, actor=actor, is_template=False, name=name, slug=slug)


# --- scheduling (beat) ----------------------------------------------------------


def activities_advance(*, now: datetime | None = None) -> dict[str, int]:
    """Put scheduled activities online at their start and end live ones at their
    end. Idempotent: each activity is re-checked under its row lock, so a second
    run (or a concurrent one) changes nothing."""
    now = now or timezone.now()
    started_ids, ending_ids = selectors.activities_due(now)
    counts = {"started": 0, "ended": 0}
    for pk in started_ids:
        with transaction.atomic():
            activity = Activity.objects.select_for_update().filter(pk=pk).first()
            if (
                activity
                and activity.status == S.SCHEDULED
                and (activity.starts_at is None or activity.starts_at <= now)
            ):
                if activity.published_revision_id is None:
                    continue
                _transition(activity, S.ONLINE, None, "start reached", allow_past_end=True)
                counts["started"] += 1
                if activity.ends_at and activity.ends_at <= now:
                    # a late tick (beat was down): its end has come too, so it is
                    # ended in the same transaction and never served past its end
                    _transition(activity, S.ENDED, None, "end reached")
                    counts["ended"] += 1
    for pk in ending_ids:
        with transaction.atomic():
            activity = Activity.objects.select_for_update().filter(pk=pk).first()
            if activity and activity.ends_at and activity.ends_at <= now and activity.status in (S.ONLINE, S.OFFLINE):
                _transition(activity, S.ENDED, None, "end reached")
                counts["ended"] += 1
    return counts
