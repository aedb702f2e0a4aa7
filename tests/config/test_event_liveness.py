"""The event consumer is supervised and /readyz reports its liveness and backlog."""

import json
import re
import time
import uuid

import pytest
from django.test import Client

from core.events import registry
from core.events.consumer import EventConsumer
from core.events.liveness import heartbeat_write
from core.models import DeadLetter
from core.redis import get_redis
from tests.config.handlers import TEST_EVENT, applied, register_echo


@pytest.fixture
def echo():
    register_echo()
    yield
    registry.unregister(TEST_EVENT)


def _echo() -> dict:
    return {"event_id": str(uuid.uuid4()), "type": TEST_EVENT, "value": "v"}


def _readyz() -> tuple[int, dict]:
    response = Client().get("/readyz")
    return response.status_code, response.json()["checks"]["events_consumer"]


def test_a_consumer_whose_loop_dies_is_restarted_and_readyz_shows_it(events, echo, monkeypatch):
    first = _echo()
    events.publish("user_center", TEST_EVENT, first)
    events.wait_for(lambda: applied(first["event_id"]) == 1)
    status, check = _readyz()
    assert status == 200 and check["ok"] and check["consumers"] == 1, check

    # The loop dies of something outside any message (here: its own iteration hook).
    calls = {"n": 0}
    original = EventConsumer.on_iteration

    def dies_once(self):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("the loop broke")
        original(self)

    monkeypatch.setattr(EventConsumer, "on_iteration", dies_once)
    events.wait_for(lambda: events.supervisor.restarts == 1, timeout=20)
    second = _echo()
    events.publish("user_center", TEST_EVENT, second)
    events.wait_for(lambda: applied(second["event_id"]) == 1, timeout=20)
    assert "RuntimeError: the loop broke" in events.supervisor.last_error
    events.wait_for(lambda: _readyz()[1].get("restarts") == 1, timeout=20)
    status, check = _readyz()
    assert status == 200 and check["ok"], check


def test_a_handler_over_its_time_limit_is_stopped_and_retried_and_the_next_event_goes_on(events, echo, settings):
    settings.EVENTS_HANDLER_TIME_LIMIT = 1
    settings.EVENTS_STALL_SECONDS = 2  # the supervisor looks every 1/3 s
    hung = {**_echo(), "spin": 60}
    events.publish("user_center", TEST_EVENT, hung)
    after = _echo()
    events.publish("user_center", TEST_EVENT, after)
    events.wait_for(lambda: applied(after["event_id"]) == 1, timeout=20)
    events.wait_for(lambda: DeadLetter.objects.filter(event_id=hung["event_id"]).exists(), timeout=40)
    reason = DeadLetter.objects.get(event_id=hung["event_id"]).reason
    assert f"after {settings.EVENTS_MAX_ATTEMPTS} attempt(s): HandlerTimeout: ran past the time limit of 1s" in reason
    assert applied(hung["event_id"]) == 0  # each attempt's writes rolled back
    assert events.supervisor.restarts == 0


@pytest.mark.django_db
def test_readyz_fails_naming_the_consumer_when_none_is_running():
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["events_consumer"]["ok"] is False
    assert "consumer down" in body["checks"]["events_consumer"]["detail"]
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]


@pytest.mark.django_db
def test_readyz_does_not_check_a_consumer_that_is_switched_off(settings):
    settings.EVENTS_CONSUMER_ENABLED = False
    response = Client().get("/readyz")
    assert response.status_code == 200, response.json()
    assert "disabled" in response.json()["checks"]["events_consumer"]["detail"]


def _beat(**state) -> None:
    now = time.time()
    heartbeat_write(
        consumer_id="test-host:1:abc",
        state={"running": True, "loop_at": now, "last_handled_at": None, "restarts": 0, **state},
    )


@pytest.mark.django_db
def test_readyz_fails_when_the_heartbeat_is_stale(settings):
    settings.EVENTS_STALL_SECONDS = 5
    _beat()
    assert _readyz()[0] == 200
    key = f"{settings.EVENTS_QUEUE_PREFIX}:events:consumer:test-host:1:abc"
    beat = json.loads(get_redis().get(key))
    get_redis().set(key, json.dumps({**beat, "at": time.time() - 6}))
    status, check = _readyz()
    assert status == 503 and "consumer down: no heartbeat for 6s" in check["detail"], check


@pytest.mark.django_db
def test_readyz_fails_when_a_handler_is_stuck(settings):
    settings.EVENTS_STALL_SECONDS = 5
    now = time.time()
    _beat(loop_at=now - 30, busy_since=now - 30, busy_event="payment.result")
    status, check = _readyz()
    assert status == 503, check
    assert check["detail"] == "consumer stuck: handling event 'payment.result' for 30s (over 5s)"


@pytest.mark.django_db(transaction=True)
def test_readyz_fails_when_the_backlog_does_not_drain(settings):
    from kombu import Connection

    from core.events.consumer import dead_letter_queue, declare_topology, event_queues, retry_queue
    from core.events.publish import publish_event

    settings.EVENTS_STALL_SECONDS = 5
    prefix = settings.EVENTS_QUEUE_PREFIX
    with Connection(settings.EVENTS_BROKER_URL) as conn:
        declare_topology(conn, prefix)
    try:
        publish_event("user_center", TEST_EVENT, _echo())  # no consumer takes it
        _beat(last_handled_at=time.time() - 60)
        status, check = _readyz()
        assert status == 200 and check["backlog"] == 1, check  # waiting, not yet for long
        get_redis().set(f"{settings.EVENTS_QUEUE_PREFIX}:events:backlog_since", str(time.time() - 6))
        status, check = _readyz()
        waited = re.match(r"consumer stuck: 1 event\(s\) waiting for (\d+)s", check["detail"])
        assert status == 503 and waited and int(waited.group(1)) >= 6, check  # 6 s, or more on a slow machine
        _beat(last_handled_at=time.time())  # it is draining, only slowly
        assert _readyz()[0] == 200
    finally:
        with Connection(settings.EVENTS_BROKER_URL) as conn:
            for queue in [*event_queues(prefix), retry_queue(prefix), dead_letter_queue(prefix)]:
                queue(conn.default_channel).delete()
