"""Platform-wide writes: operator and analyst groups, profiles, housekeeping."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group, Permission
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

if TYPE_CHECKING:
    from core.models import Profile

DOMAIN_APPS = (
    "activities",
    "components",
    "listings",
    "coupons",
    "attribution",
    "payments",
    "adreports",
    "exports",
    "analytics",
)
OPERATOR_GROUP = "operator"
ANALYST_GROUP = "analyst"
TECHNICAL_GROUP = "technical"
# Technical records (the event consumer's bookkeeping, sandboxes, job runs): for
# the technical group only; operators and analysts see campaign models.
TECHNICAL_MODELS = (
    ("config", "processedevent"),
    ("config", "deadletter"),
    ("config", "profile"),
    ("config", "idempotencyrecord"),
    ("payments", "sandboxpaycode"),
    ("attribution", "sandboxpostback"),
    ("alerts", "beatjobrun"),
    ("alerts", "clickoutage"),
    ("analytics", "rolluprun"),
    ("exports", "partition"),
)


def _technical_q() -> Q:

    q = Q(pk__in=[])
    for app_label, model in TECHNICAL_MODELS:
        q |= Q(content_type__app_label=app_label, content_type__model=model)
    return q


@transaction.atomic
def groups_sync() -> dict[str, int]:
    """Operators build activities: every permission on the domain apps' models.
    Analysts read reports: view permissions only, on the domain apps and the
    platform's event records. Returns how many permissions each group holds."""
    operator, _ = Group.objects.get_or_create(name=OPERATOR_GROUP)
    analyst, _ = Group.objects.get_or_create(name=ANALYST_GROUP)
    technical, _ = Group.objects.get_or_create(name=TECHNICAL_GROUP)
    technical_q = _technical_q()
    domain = Permission.objects.filter(content_type__app_label__in=DOMAIN_APPS).exclude(technical_q)
    platform_view = Permission.objects.filter(content_type__app_label="config", codename__startswith="view_").exclude(
        technical_q
    )
    technical.permissions.set(Permission.objects.filter(technical_q))
    # Operators unlock admin logins locked after failed attempts (django-axes).
    unlock = Permission.objects.filter(
        content_type__app_label="axes", codename__in=["view_accessattempt", "delete_accessattempt"]
    )
    operator.permissions.set(list(domain) + list(platform_view) + list(unlock))
    analyst.permissions.set(list(domain.filter(codename__startswith="view_")) + list(platform_view))
    return {OPERATOR_GROUP: operator.permissions.count(), ANALYST_GROUP: analyst.permissions.count()}


@transaction.atomic
def staff_user_ensure(*, username: str, password: str, group: str, superuser: bool = False) -> AbstractBaseUser:
    """Create or reset a staff login (used by seed_demo)."""
    from django.contrib.auth import get_user_model

    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
    user.is_staff = True
    user.is_superuser = superuser
    user.set_password(password)
    user.save()
    user.groups.add(Group.objects.get(name=group))
    return user


def profile_create(
    *,
    kind: str,
    trigger: str,
    name: str,
    duration_ms: float,
    requested_by: str,
    trace_id: str,
    text: str,
    html: str,
) -> Profile:
    """Store one profile report (core/profiling.py)."""
    from core.models import Profile

    return Profile.objects.create(
        kind=kind,
        trigger=trigger,
        name=name,
        duration_ms=round(duration_ms, 2),
        requested_by=requested_by,
        trace_id=trace_id,
        text=text,
        html=html,
    )


# --- housekeeping (core/tasks.py, nightly) ----------------------------------------

PURGE_BATCH = 5000


def _rows_purge(model: type[models.Model], *, field: str, before: datetime) -> int:
    """Delete `model` rows whose `field` is before `before`, in batches (short
    transactions: no long lock on a busy table). Returns how many went."""
    deleted = 0
    while True:
        ids = list(model._default_manager.filter(**{f"{field}__lt": before}).values_list("pk", flat=True)[:PURGE_BATCH])
        if not ids:
            return deleted
        count, _ = model._default_manager.filter(pk__in=ids).delete()
        deleted += count


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Forget the answers to `Idempotency-Key`s older than IDEMPOTENCY_RETENTION_DAYS."""
    from core.models import IdempotencyRecord

    before = (now or timezone.now()) - timedelta(days=settings.IDEMPOTENCY_RETENTION_DAYS)
    return _rows_purge(IdempotencyRecord, field="created_at", before=before)


def processed_events_purge(*, now: datetime | None = None) -> int:
    """Forget processed-event markers older than EVENTS_PROCESSED_RETENTION_DAYS."""
    from core.models import ProcessedEvent

    before = (now or timezone.now()) - timedelta(days=settings.EVENTS_PROCESSED_RETENTION_DAYS)
    return _rows_purge(ProcessedEvent, field="processed_at", before=before)


def dead_letters_purge(*, now: datetime | None = None) -> int:
    """Delete DeadLetter rows older than EVENTS_DEAD_LETTER_RETENTION_DAYS."""
    from core.models import DeadLetter

    before = (now or timezone.now()) - timedelta(days=settings.EVENTS_DEAD_LETTER_RETENTION_DAYS)
    return _rows_purge(DeadLetter, field="created_at", before=before)
