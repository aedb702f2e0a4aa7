"""The audit trail of activities and their components: every write of
activities.services and components.services records one AuditEntry here."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from activities.models import Activity, AuditEntry


def _jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def audit_record(
    *, actor, action: str, object_type: str, object_id: int, activity: Activity | None, changes: dict | None = None
) -> AuditEntry:
    return AuditEntry.objects.create(
        activity=activity,
        activity_label=activity.name[:200] if activity else "",
        object_type=object_type,
        object_id=object_id,
        action=action,
        changes={k: [_jsonable(v) for v in pair] for k, pair in (changes or {}).items()},
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=(getattr(actor, "username", "") or "system")[:150],
    )


def activity_touch(activity: Activity, actor) -> None:
    """Mark the activity edited (a component of its draft changed)."""
    Activity.objects.filter(pk=activity.pk).update(
        updated_at=timezone.now(), updated_by=actor if getattr(actor, "pk", None) else None
    )
