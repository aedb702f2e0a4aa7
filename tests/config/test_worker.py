"""The event consumer inside a real Celery worker process: killed mid-handler and
restarted, it applies the event exactly once."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from kombu import Connection

from core.events.consumer import declare_topology
from core.events.liveness import consumer_status
from core.events.publish import publish_event
from core.models import ProcessedEvent
from tests.config.handlers import TEST_EVENT, applied

ROOT = Path(__file__).resolve().parents[2]


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db["USER"]
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"mysql://{user}{password}@{db['HOST']}:{db['PORT'] or 3306}/{db['NAME']}"


def _start_worker(marker: Path, **extra_env: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "EVENTS_QUEUE_PREFIX": settings.EVENTS_QUEUE_PREFIX,
        "EVENTS_BROKER_URL": settings.EVENTS_BROKER_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "REDIS_URL": settings.REDIS_URL,  # the test's Redis database: its heartbeat lands here
        "EVENTS_VISIBILITY_TIMEOUT": "3",
        "ECHO_STARTED_MARKER": str(marker),
        **extra_env,
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "config" / "run_worker.py")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_handler_applies_the_event_once_after_restart(tmp_path):
    with Connection(settings.EVENTS_BROKER_URL) as conn:
        declare_topology(conn, settings.EVENTS_QUEUE_PREFIX)
    event_id = str(uuid.uuid4())
    marker = tmp_path / "handler-started"
    publish_event("user_center", TEST_EVENT, {"event_id": event_id, "type": TEST_EVENT, "value": "v", "sleep": 60})

    first = _start_worker(marker)
    try:
        _wait(marker.exists, 60, "the handler to start in the first worker")
        assert applied(event_id) == 0  # its transaction is still open
    finally:
        _kill(first)
    assert applied(event_id) == 0  # killed mid-handler: rolled back, nothing applied

    second = _start_worker(marker)
    try:
        _wait(lambda: applied(event_id) == 1, 90, "the restarted worker to apply the redelivered event")
        time.sleep(1)
        assert applied(event_id) == 1
        assert ProcessedEvent.objects.filter(event_id=event_id).count() == 1
        # What /readyz reports: the worker's consumer heartbeat, read from Redis.
        _wait(lambda: consumer_status().get("handled", 0) >= 1, 20, "the worker's heartbeat")
        status = consumer_status()
        assert status["ok"] and status["consumers"] >= 1, status
    finally:
        _kill(second)
    _delete_queues()


def _delete_queues() -> None:
    with Connection(settings.EVENTS_BROKER_URL) as conn:
        from core.events.consumer import dead_letter_queue, event_queues

        for queue in [*event_queues(settings.EVENTS_QUEUE_PREFIX), dead_letter_queue(settings.EVENTS_QUEUE_PREFIX)]:
            queue(conn.default_channel).delete()


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_batch_applies_every_event_of_the_batch_once_after_restart(tmp_path):
    """The batch's events share one transaction: killed while its third handler runs,
    none of them is applied; the restarted worker gets the whole batch again and
    applies each exactly once."""
    with Connection(settings.EVENTS_BROKER_URL) as conn:
        declare_topology(conn, settings.EVENTS_QUEUE_PREFIX)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    marker = tmp_path / "handler-started"
    for n, event_id in enumerate(ids):
        extra = {"sleep": 60} if n == 2 else {}
        publish_event("user_center", TEST_EVENT, {"event_id": event_id, "type": TEST_EVENT, "value": "v", **extra})

    # all five are queued before the worker starts: one batch (waiting up to 1 s for them)
    batch_env = {"EVENTS_BATCH_SIZE": "20", "EVENTS_BATCH_WAIT_MS": "1000"}
    first = _start_worker(marker, **batch_env)
    try:
        _wait(marker.exists, 60, "the third handler to start in the first worker")
        assert marker.read_text() == ids[2]
        assert [applied(event_id) for event_id in ids] == [0] * 5  # the batch's transaction is open
    finally:
        _kill(first)
    assert [applied(event_id) for event_id in ids] == [0] * 5  # killed before commit: nothing applied

    second = _start_worker(marker, **batch_env)
    try:
        _wait(lambda: all(applied(event_id) == 1 for event_id in ids), 90, "the restarted worker to apply the batch")
        time.sleep(1)
        assert [applied(event_id) for event_id in ids] == [1] * 5
        assert ProcessedEvent.objects.filter(event_id__in=ids).count() == 5
    finally:
        _kill(second)
    _delete_queues()


@pytest.mark.django_db(transaction=True)
def test_worker_killed_inside_a_batch_handler_applies_each_event_once_after_restart(tmp_path):
    """Killed while the batch handler runs (its markers inserted, its writes made, not
    committed): nothing is applied; the restarted worker applies each event once."""
    from tests.config.handlers import applied_in_batch

    with Connection(settings.EVENTS_BROKER_URL) as conn:
        declare_topology(conn, settings.EVENTS_QUEUE_PREFIX)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    marker = tmp_path / "handler-started"
    for n, event_id in enumerate(ids):
        extra = {"sleep": 60} if n == 2 else {}
        publish_event("user_center", TEST_EVENT, {"event_id": event_id, "type": TEST_EVENT, "value": "v", **extra})

    batch_env = {"EVENTS_BATCH_SIZE": "20", "EVENTS_BATCH_WAIT_MS": "1000", "ECHO_BATCH": "1"}
    first = _start_worker(marker, **batch_env)
    try:
        _wait(marker.exists, 60, "the batch handler to start in the first worker")
        assert marker.read_text() == ids[2]
        assert [applied(event_id) for event_id in ids] == [0] * 5
    finally:
        _kill(first)
    assert [applied(event_id) for event_id in ids] == [0] * 5
    assert not ProcessedEvent.objects.filter(event_id__in=ids).exists()

    second = _start_worker(marker, **batch_env)
    try:
        _wait(lambda: all(applied(event_id) == 1 for event_id in ids), 90, "the restarted worker to apply the batch")
        time.sleep(1)
        assert [applied(event_id) for event_id in ids] == [1] * 5
        assert sum(applied_in_batch(event_id) for event_id in ids) >= 2  # through the batch handler
        assert ProcessedEvent.objects.filter(event_id__in=ids).count() == 5
    finally:
        _kill(second)
    _delete_queues()
