"""Writes on the components of an activity's draft: add, change, delete, reorder.
Each config is checked against its type's schema (components.registry); every write
records an AuditEntry and marks the activity edited. Errors are domain errors
(config.errors): Conflict when the activity is archived or rows still point at a
component, DomainError (400) for a bad config, type or order.

Re-exported by activities.services (its callers keep working)."""

from __future__ import annotations

from typing import Any  # actor: the operator (a User) or None for the system

from django.db import transaction
from django.db.models import Max, ProtectedError, RestrictedError
from django.utils.translation import gettext_lazy as _

from activities.audit import activity_touch, audit_record
from activities.models import Activity, ActivityStatus, AuditAction
from components import registry
from components.models import Component
from core.errors import Conflict, DomainError

S = ActivityStatus


def _config_checked(type_key: str, config: Any) -> dict:
    try:
        return registry.config_validate(type_key, config)
    except registry.UnknownComponentType:
        raise DomainError(
            _("Unknown component type %(type)s.") % {"type": repr(type_key)}, code="unknown_component_type"
        ) from None
    except registry.ConfigInvalid as exc:
        raise DomainError(str(exc), code="config_invalid", details=exc.errors) from None


@transaction.atomic
def component_create(
    *,
    activity: Activity,
    actor: Any,
    type: str,
    config: dict | None = None,
    title: str = "",
    enabled: bool = True,
    position: int | None = None,
) -> Component:
    """Add a component (at the end unless a position is given). Its config is
    validated against its type's schema, defaults filled in, unknown keys refused."""
    locked = Activity.objects.select_for_update().get(pk=activity.pk)
    if locked.status == S.ARCHIVED:
        raise Conflict(_("An archived activity cannot be edited."), code="activity_archived")
    checked = _config_checked(type, config if config is not None else {})
    if position is None:
        position = (Component.objects.filter(activity=locked).aggregate(p=Max("position"))["p"] or 0) + 1
    component = Component.objects.create(
        activity=locked, type=type, config=checked, title=title, enabled=enabled, position=position
    )
    audit_record(
        actor=actor,
        action=AuditAction.CREATE,
        object_type="component",
        object_id=component.pk,
        activity=locked,
        changes={"type": [None, type], "title": [None, title], "config": [None, checked], "position": [None, position]},
    )
    activity_touch(locked, actor)
    return component


@transaction.atomic
def component_update(
    *,
    component: Component,
    actor: Any,
    config: dict | None = None,
    title: str | None = None,
    enabled: bool | None = None,
    position: int | None = None,
) -> Component:
    component = Component.objects.select_for_update().select_related("activity").get(pk=component.pk)
    if component.activity.status == S.ARCHIVED:
        raise Conflict(_("An archived activity cannot be edited."), code="activity_archived")
    values: dict[str, Any] = {"title": title, "enabled": enabled, "position": position}
    if config is not None:
        values["config"] = _config_checked(component.type, config)
    changes = {k: [getattr(component, k), v] for k, v in values.items() if v is not None and getattr(component, k) != v}
    if not changes:
        return component
    for key, (_old, new) in changes.items():
        setattr(component, key, new)
    component.save()
    audit_record(
        actor=actor,
        action=AuditAction.UPDATE,
        object_type="component",
        object_id=component.pk,
        activity=component.activity,
        changes=changes,
    )
    activity_touch(component.activity, actor)
    return component


@transaction.atomic
def component_delete(*, component: Component, actor: Any) -> None:
    activity = component.activity
    if activity.status == S.ARCHIVED:
        raise Conflict(_("An archived activity cannot be edited."), code="activity_archived")
    audit_record(
        actor=actor,
        action=AuditAction.DELETE,
        object_type="component",
        object_id=component.pk,
        activity=activity,
        changes={"type": [component.type, None], "title": [component.title, None], "config": [component.config, None]},
    )
    try:
        component.delete()
    except (ProtectedError, RestrictedError) as exc:
        raise Conflict(
            _("Records still point at this component: %(records)s") % {"records": exc.args[0]}, code="component_in_use"
        ) from None
    activity_touch(activity, actor)


@transaction.atomic
def components_reorder(*, activity: Activity, actor: Any, component_ids: list[int]) -> list[Component]:
    """Put the activity's components in this order (positions 1..n). The list must
    name every component of the activity exactly once."""
    locked = Activity.objects.select_for_update().get(pk=activity.pk)
    components = {c.pk: c for c in Component.objects.filter(activity=locked)}
    if sorted(component_ids) != sorted(components) or len(set(component_ids)) != len(component_ids):
        raise DomainError(_("List every component of this activity exactly once."), code="reorder_mismatch")
    before = [c.pk for c in sorted(components.values(), key=lambda c: (c.position, c.pk))]
    ordered = []
    for position, pk in enumerate(component_ids, start=1):
        component = components[pk]
        if component.position != position:
            component.position = position
            component.save(update_fields=["position", "updated_at"])
        ordered.append(component)
    if before != list(component_ids):
        audit_record(
            actor=actor,
            action=AuditAction.REORDER,
            object_type="activity",
            object_id=locked.pk,
            activity=locked,
            changes={"order": [before, list(component_ids)]},
        )
        activity_touch(locked, actor)
    return ordered
