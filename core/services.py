"""Platform-wide writes: operator and analyst groups."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db import transaction

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


@transaction.atomic
def groups_sync() -> dict[str, int]:
    """Operators build activities: every permission on the domain apps' models.
    Analysts read reports: view permissions only, on the domain apps and the
    platform's event records. Returns how many permissions each group holds."""
    operator, _ = Group.objects.get_or_create(name=OPERATOR_GROUP)
    analyst, _ = Group.objects.get_or_create(name=ANALYST_GROUP)
    domain = Permission.objects.filter(content_type__app_label__in=DOMAIN_APPS)
    platform_view = Permission.objects.filter(content_type__app_label="config", codename__startswith="view_")
    # Operators unlock admin logins locked after failed attempts (django-axes).
    unlock = Permission.objects.filter(
        content_type__app_label="axes", codename__in=["view_accessattempt", "delete_accessattempt"]
    )
    operator.permissions.set(list(domain) + list(platform_view) + list(unlock))
    analyst.permissions.set(list(domain.filter(codename__startswith="view_")) + list(platform_view))
    return {OPERATOR_GROUP: operator.permissions.count(), ANALYST_GROUP: analyst.permissions.count()}


@transaction.atomic
def staff_user_ensure(*, username: str, password: str, group: str, superuser: bool = False):
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
):
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
