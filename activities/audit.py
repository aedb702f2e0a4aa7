"""The audit trail of activities and their components: every write of
activities.services and components.services records one AuditEntry here."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from activities.models import Activity, AuditEntry

# Who made a change: the operator's user, or None for the system (beat, commands).
Actor: TypeAlias = User | AnonymousUser | None


def actor_user(actor: Actor) -> User | None:
    """The user to store as the author of a change (None for the system)."""
    return actor if isinstance(actor, User) and actor.pk else None


def _jsonable(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def audit_record(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: int,
    activity: Activity | None,
    changes: dict | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        activity=activity,
        activity_label=activity.name[:200] if activity else "",
        object_type=object_type,
        object_id=object_id,
        action=action,
        changes={k: [_jsonable(v) for v in pair] for k, pair in (changes or {}).items()},
        actor=actor_user(actor),
        actor_label=(getattr(actor, "username", "") or "system")[:150],
    )


def activity_touch(activity: Activity, actor: Actor) -> None:
    """Mark the activity edited (a component of its draft changed)."""
    Activity.objects.filter(pk=activity.pk).update(updated_at=timezone.now(), updated_by=actor_user(actor))
