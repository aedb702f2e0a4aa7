from datetime import timedelta

import pytest
from django.utils import timezone

from activities import services
from activities.models import Activity, AuditEntry
from core.errors import DomainError, domain_status

pytestmark = pytest.mark.django_db

STATUSES = ["draft", "scheduled", "online", "offline", "ended", "archived"]
# The state machine: draft -> scheduled -> online -> offline|ended -> archived,
# online <-> offline; plus un-scheduling (scheduled -> draft) and ending while offline.
ALLOWED = {
    ("draft", "scheduled"),
    ("scheduled", "online"),
    ("scheduled", "draft"),
    ("online", "offline"),
    ("online", "ended"),
    ("offline", "online"),
    ("offline", "ended"),
    ("offline", "archived"),
    ("ended", "archived"),
}


@pytest.mark.parametrize("source", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_every_transition_is_allowed_or_refused_as_the_state_machine_says(
    make_activity, publish, operator, source, target
):
    activity = make_activity()
    publish(activity)  # has a published revision, so "online" is reachable
    Activity.objects.filter(pk=activity.pk).update(status=source)
    entries = AuditEntry.objects.count()
    if (source, target) in ALLOWED:
        services.activity_transition(activity=activity, to=target, actor=operator)
        activity.refresh_from_db()
        assert activity.status == target
        entry = AuditEntry.objects.order_by("-id").first()
        assert entry.action == "transition" and entry.changes["status"] == [source, target]
        assert entry.actor == operator
    else:
        with pytest.raises(DomainError) as exc:
            services.activity_transition(activity=activity, to=target, actor=operator)
        assert exc.value.code == "transition_not_allowed" and domain_status(exc.value) == 409
        activity.refresh_from_db()
        assert activity.status == source
        assert AuditEntry.objects.count() == entries


def test_going_online_without_a_published_revision_is_refused(make_activity, operator):
    activity = make_activity()
    Activity.objects.filter(pk=activity.pk).update(status="scheduled")
    with pytest.raises(DomainError) as exc:
        services.activity_transition(activity=activity, to="online", actor=operator)
    assert exc.value.code == "not_published"


def test_unknown_status_is_refused(make_activity, operator):
    with pytest.raises(DomainError) as exc:
        services.activity_transition(activity=make_activity(), to="live", actor=operator)
    assert exc.value.code == "invalid_status"


def test_publishing_a_draft_whose_start_has_come_puts_it_online(make_activity, publish):
    activity = make_activity(starts_at=timezone.now() - timedelta(minutes=1))
    publish(activity)
    assert activity.status == "online"
    steps = list(AuditEntry.objects.filter(action="transition").order_by("id").values_list("changes", flat=True))
    assert [s["status"] for s in steps] == [["draft", "scheduled"], ["scheduled", "online"]]


def test_publishing_a_draft_with_a_future_start_schedules_it(make_activity, publish):
    activity = make_activity(starts_at=timezone.now() + timedelta(days=1))
    publish(activity)
    assert activity.status == "scheduled"


def test_publishing_without_an_enabled_component_is_refused(make_activity, operator):
    activity = make_activity()
    services.component_update(component=activity.components.get(), actor=operator, enabled=False)
    with pytest.raises(DomainError) as exc:
        services.activity_publish(activity=activity, actor=operator)
    assert exc.value.code == "no_components"
    activity.refresh_from_db()
    assert activity.status == "draft" and activity.revisions.count() == 0


def test_publishing_with_no_component_at_all_is_refused(make_activity, operator):
    with pytest.raises(DomainError) as exc:
        services.activity_publish(activity=make_activity(components=()), actor=operator)
    assert exc.value.code == "no_components"


def test_an_end_before_the_start_is_refused(make_activity, operator):
    now = timezone.now()
    activity = make_activity(starts_at=now + timedelta(days=2))
    with pytest.raises(DomainError) as exc:
        services.activity_update(activity=activity, actor=operator, ends_at=now + timedelta(days=1))
    assert exc.value.code == "activity_invalid" and "ends_at" in exc.value.details
    with pytest.raises(DomainError):
        services.activity_create(actor=operator, name="x", slug="x-bad", starts_at=now, ends_at=now)
    activity.refresh_from_db()
    assert activity.ends_at is None and not Activity.objects.filter(slug="x-bad").exists()


def test_publishing_an_activity_whose_end_has_passed_is_refused(make_activity, operator):
    now = timezone.now()
    activity = make_activity(starts_at=now - timedelta(days=2), ends_at=now - timedelta(days=1))
    with pytest.raises(DomainError) as exc:
        services.activity_publish(activity=activity, actor=operator)
    assert exc.value.code == "invalid_schedule"


@pytest.mark.parametrize("status", ["ended", "archived"])
def test_publishing_a_closed_activity_is_refused(make_activity, publish, operator, status):
    activity = make_activity()
    publish(activity)
    Activity.objects.filter(pk=activity.pk).update(status=status)
    with pytest.raises(DomainError) as exc:
        services.activity_publish(activity=activity, actor=operator)
    assert exc.value.code == "activity_closed"


def test_republishing_an_offline_activity_keeps_it_offline(make_activity, publish, operator):
    activity = make_activity()
    publish(activity)
    services.activity_transition(activity=activity, to="offline", actor=operator)
    services.component_create(activity=activity, actor=operator, type="rich_text", config={"html": "<p>new</p>"})
    revision = publish(activity)
    assert activity.status == "offline" and revision.number == 2


def test_bringing_an_activity_back_online_after_its_end_is_refused(make_activity, publish, operator):
    from datetime import timedelta

    now = timezone.now()
    activity = make_activity(starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))
    publish(activity)
    services.activity_transition(activity=activity, to="offline", actor=operator)
    Activity.objects.filter(pk=activity.pk).update(ends_at=now - timedelta(minutes=1))
    with pytest.raises(DomainError) as exc:
        services.activity_transition(activity=activity, to="online", actor=operator)
    assert exc.value.code == "invalid_schedule"
