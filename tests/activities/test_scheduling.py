import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from activities import services
from activities.models import Activity, AuditEntry
from activities.tasks import activities_tick

pytestmark = pytest.mark.django_db


@pytest.fixture
def scheduled(make_activity, publish):
    start = timezone.now() + timedelta(hours=1)
    activity = make_activity(starts_at=start, ends_at=start + timedelta(hours=2))
    publish(activity)
    assert activity.status == "scheduled"
    return activity


def _status(activity):
    activity.refresh_from_db()
    return activity.status


def test_scheduled_activity_goes_online_at_its_start_and_only_then(scheduled, api_client):
    start = scheduled.starts_at
    assert services.activities_advance(now=start - timedelta(seconds=1)) == {"started": 0, "ended": 0}
    assert _status(scheduled) == "scheduled"
    assert services.activities_advance(now=start) == {"started": 1, "ended": 0}
    assert _status(scheduled) == "online"
    assert services.activities_advance(now=start + timedelta(seconds=30)) == {"started": 0, "ended": 0}
    entries = AuditEntry.objects.filter(activity=scheduled, action="transition", actor=None)
    assert [e.changes["status"] for e in entries] == [["scheduled", "online"]]
    assert entries.get().actor_label == "system"


def test_online_and_offline_activities_end_at_their_end(scheduled, make_activity, publish, operator):
    services.activities_advance(now=scheduled.starts_at)
    now = timezone.now()
    other = make_activity(starts_at=now - timedelta(hours=1), ends_at=now + timedelta(minutes=30))
    publish(other)
    services.activity_transition(activity=other, to="offline", actor=operator)
    assert services.activities_advance(now=now + timedelta(minutes=30)) == {"started": 0, "ended": 1}
    assert _status(other) == "ended" and _status(scheduled) == "online"
    assert services.activities_advance(now=scheduled.ends_at) == {"started": 0, "ended": 1}
    assert _status(scheduled) == "ended"
    assert services.activities_advance(now=scheduled.ends_at + timedelta(minutes=5)) == {"started": 0, "ended": 0}


def test_a_tick_that_comes_late_runs_start_and_end_in_order(scheduled):
    assert services.activities_advance(now=scheduled.ends_at + timedelta(seconds=1)) == {"started": 1, "ended": 1}
    steps = AuditEntry.objects.filter(activity=scheduled, action="transition").order_by("id")
    assert [e.changes["status"] for e in steps][-2:] == [["scheduled", "online"], ["online", "ended"]]


def test_a_tick_after_beat_was_down_past_the_end_ends_it_and_still_serves_the_others(scheduled, make_activity, publish):
    # beat was down through this activity's whole run: by the real clock both its
    # start and its end have passed when the next tick comes
    now = timezone.now()
    Activity.objects.filter(pk=scheduled.pk).update(
        starts_at=now - timedelta(minutes=2), ends_at=now - timedelta(minutes=1)
    )
    other = make_activity(starts_at=now + timedelta(hours=1), ends_at=now + timedelta(days=1))
    publish(other)
    Activity.objects.filter(pk=other.pk).update(starts_at=now - timedelta(minutes=1))
    assert activities_tick.delay().get() == {"started": 2, "ended": 1}
    assert _status(scheduled) == "ended" and _status(other) == "online"
    steps = AuditEntry.objects.filter(activity=scheduled, action="transition").order_by("id")
    assert [e.changes["status"] for e in steps][-2:] == [["scheduled", "online"], ["online", "ended"]]


def test_beat_runs_the_tick_at_least_every_minute():
    from config.celery import app

    app.loader.import_default_modules()
    app.finalize()
    entry = app.conf.beat_schedule["activities.activities_advance"]
    assert entry["task"] == activities_tick.name and entry["schedule"] <= 60
    assert activities_tick.name in app.tasks


def test_the_celery_task_applies_due_changes(make_activity, publish):
    now = timezone.now()
    activity = make_activity(starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(days=1))
    publish(activity)
    Activity.objects.filter(pk=activity.pk).update(status="scheduled")
    activities_tick.delay()
    assert _status(activity) == "online"


@pytest.mark.django_db(transaction=True)
def test_concurrent_ticks_change_each_activity_once(make_activity, operator):
    now = timezone.now()
    activity = make_activity(starts_at=now + timedelta(minutes=1), ends_at=now + timedelta(hours=1))
    services.activity_publish(activity=activity, actor=operator)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def tick():
        try:
            barrier.wait()
            results.append(services.activities_advance(now=now + timedelta(minutes=2)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r["started"] for r in results) == 1
    assert (
        AuditEntry.objects.filter(
            activity=activity, action="transition", changes__status=["scheduled", "online"]
        ).count()
        == 1
    )
    assert _status(activity) == "online"
