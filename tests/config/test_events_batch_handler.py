"""Batch handlers (core/events/registry.py): a type's events of one batch applied by
one call in one savepoint, with their markers in one insert; when that call fails,
each event goes through the single handler in its own savepoint, so only the event
that fails is retried or dead-lettered."""

import json
import uuid

import pytest
from django.db import transaction

from core.events import registry
from core.events.consumer import Delivery, HandlerTimeout, process_batch
from core.events.contracts import USER_CENTER_EXCHANGE
from core.models import DeadLetter, ProcessedEvent
from tests.config.handlers import (
    BATCH_CALLS,
    TEST_EVENT,
    TEST_SCHEMA,
    applied,
    applied_in_batch,
    handle_echo,
    handle_echo_batch,
    register_echo,
)


@pytest.fixture
def echo_batch():
    register_echo(batch=True)
    BATCH_CALLS.clear()
    yield
    registry.unregister(TEST_EVENT)
    BATCH_CALLS.clear()


def _echo(**extra) -> dict:
    return {"event_id": str(uuid.uuid4()), "type": TEST_EVENT, "value": "v", **extra}


def _delivery(event: dict, attempts: int = 0) -> Delivery:
    return Delivery(USER_CENTER_EXCHANGE, TEST_EVENT, json.dumps(event).encode(), attempts)


# -- the registry ---------------------------------------------------------------------


def test_a_batch_handler_attaches_only_to_a_registered_type_and_only_once():
    routing_key = f"test.batch.{uuid.uuid4().hex[:6]}"
    with pytest.raises(ValueError, match="register it before its batch handler"):
        registry.event_batch_handler(routing_key)(handle_echo_batch)
    registry.register(routing_key, handle_echo, exchange=USER_CENTER_EXCHANGE, schema=TEST_SCHEMA)
    try:
        registry.event_batch_handler(routing_key)(handle_echo_batch)
        event_type = registry.lookup(routing_key)
        assert event_type is not None
        assert event_type.handler is handle_echo and event_type.batch_handler is handle_echo_batch
        with pytest.raises(registry.DuplicateHandler, match="already has a batch handler"):
            registry.event_batch_handler(routing_key)(lambda payloads: None)
    finally:
        registry.unregister(routing_key)


# -- process_batch with a batch handler (the database's transactions, no broker) ----------


@pytest.mark.django_db(transaction=True)
def test_a_batch_is_applied_by_one_call_in_delivery_order_exactly_once(echo_batch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    events = [_echo() for _ in range(5)]
    with CaptureQueriesContext(connection) as queries:
        outcomes = process_batch([_delivery(e) for e in events], max_attempts=5)
    assert [o.action for o in outcomes] == ["applied"] * 5
    assert BATCH_CALLS == [[e["event_id"] for e in events]]
    assert [applied_in_batch(e["event_id"]) for e in events] == [1] * 5
    assert [applied(e["event_id"]) for e in events] == [1] * 5
    assert ProcessedEvent.objects.filter(event_id__in=[e["event_id"] for e in events]).count() == 5
    # the markers went in with one insert (not one per event)
    marker_inserts = [q for q in queries.captured_queries if "INSERT" in q["sql"] and "processedevent" in q["sql"]]
    assert len(marker_inserts) == 1

    again = process_batch([_delivery(e) for e in events[:2]] + [_delivery(_echo())], max_attempts=5)
    assert [o.action for o in again] == ["duplicate", "duplicate", "applied"]
    assert [applied(e["event_id"]) for e in events] == [1] * 5


@pytest.mark.django_db(transaction=True)
def test_duplicates_within_a_batch_and_of_earlier_batches_are_only_acked(echo_batch):
    earlier = _echo()
    assert [o.action for o in process_batch([_delivery(earlier)], max_attempts=5)] == ["applied"]
    twice, other = _echo(), _echo()
    outcomes = process_batch([_delivery(twice), _delivery(earlier), _delivery(other), _delivery(twice)], max_attempts=5)
    assert [o.action for o in outcomes] == ["applied", "duplicate", "applied", "duplicate"]
    assert BATCH_CALLS[-1] == [twice["event_id"], other["event_id"]]
    assert applied(earlier["event_id"]) == applied(twice["event_id"]) == applied(other["event_id"]) == 1
    assert ProcessedEvent.objects.filter(event_id=twice["event_id"]).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_failing_batch_falls_back_per_event_and_only_the_bad_event_retries(echo_batch):
    good = [_echo() for _ in range(4)]
    bad = _echo(fail=True)
    twice = good[0]
    deliveries = [_delivery(good[0]), _delivery(good[1]), _delivery(bad, attempts=1), *map(_delivery, good[2:])]
    deliveries.append(_delivery(twice))
    outcomes = process_batch(deliveries, max_attempts=5)
    assert [o.action for o in outcomes] == ["applied", "applied", "retry", "applied", "applied", "duplicate"]
    assert "after 2 attempt(s): RuntimeError: asked to fail" in outcomes[2].reason
    assert len(BATCH_CALLS) == 1  # tried once as a batch, rolled back
    # each good event applied once, by the single handler; the batch's writes rolled back
    assert [applied(e["event_id"]) for e in good] == [1] * 4
    assert [applied_in_batch(e["event_id"]) for e in good] == [0] * 4
    assert applied(bad["event_id"]) == 0
    assert not ProcessedEvent.objects.filter(event_id=bad["event_id"]).exists()
    assert ProcessedEvent.objects.filter(event_id__in=[e["event_id"] for e in good]).count() == 4

    last = process_batch([_delivery(bad, attempts=4), _delivery(_echo())], max_attempts=5)
    assert [o.action for o in last] == ["dead", "applied"]


@pytest.mark.django_db(transaction=True)
def test_a_batch_handler_that_breaks_the_transaction_leaves_each_event_applied_once(echo_batch):
    """A batch handler stopped by its time limit (HandlerTimeout) leaves the transaction
    unusable: the batch's transaction is rolled back and applied again, this type's
    events each in its own savepoint."""
    calls = []

    def stopped(payloads):
        calls.append(len(payloads))
        handle_echo_batch(payloads)
        raise HandlerTimeout()

    registry.unregister(TEST_EVENT)
    registry.register(TEST_EVENT, handle_echo, batch_handler=stopped, exchange=USER_CENTER_EXCHANGE, schema=TEST_SCHEMA)
    events = [_echo() for _ in range(3)]
    outcomes = process_batch([_delivery(e) for e in events], max_attempts=5)
    assert calls == [3]
    assert [o.action for o in outcomes] == ["applied"] * 3
    assert [applied(e["event_id"]) for e in events] == [1] * 3
    assert [applied_in_batch(e["event_id"]) for e in events] == [0] * 3


@pytest.mark.django_db(transaction=True)
def test_a_batch_handler_that_swallows_a_database_error_counts_as_failed(echo_batch):
    from django.contrib.auth.models import Group

    def swallows(payloads):
        Group.objects.create(name=f"echo:{payloads[0]['event_id']}:batch-doomed")
        try:
            with transaction.atomic(savepoint=False):
                raise RuntimeError("inner failure")
        except RuntimeError:
            pass

    registry.unregister(TEST_EVENT)
    registry.register(
        TEST_EVENT, handle_echo, batch_handler=swallows, exchange=USER_CENTER_EXCHANGE, schema=TEST_SCHEMA
    )
    events = [_echo() for _ in range(3)]
    outcomes = process_batch([_delivery(e) for e in events], max_attempts=5)
    assert [o.action for o in outcomes] == ["applied"] * 3
    assert [applied(e["event_id"]) for e in events] == [1] * 3
    assert [applied_in_batch(e["event_id"]) for e in events] == [0] * 3


@pytest.mark.django_db(transaction=True)
def test_batch_handler_on_commit_callbacks_run_after_commit_and_not_when_it_fell_back(echo_batch):
    from django.contrib.auth.models import Group

    ran = []

    def batch(payloads):
        transaction.on_commit(lambda: ran.append(("batch", len(payloads), Group.objects.count())))
        handle_echo_batch(payloads)

    registry.unregister(TEST_EVENT)
    registry.register(TEST_EVENT, handle_echo, batch_handler=batch, exchange=USER_CENTER_EXCHANGE, schema=TEST_SCHEMA)
    outcomes = process_batch([_delivery(_echo()), _delivery(_echo())], max_attempts=5)
    assert [o.action for o in outcomes] == ["applied", "applied"]
    assert ran == [("batch", 2, 2)]
    ran.clear()
    outcomes = process_batch([_delivery(_echo()), _delivery(_echo(fail=True))], max_attempts=5)
    assert [o.action for o in outcomes] == ["applied", "retry"]
    assert ran == []  # the batch's savepoint rolled back: its callback with it


@pytest.mark.django_db(transaction=True)
def test_other_types_in_the_batch_keep_their_own_savepoints(echo_batch):
    from tests.config.test_events_batch import DOOM_EVENT, _handle_doom

    registry.unregister(DOOM_EVENT)
    registry.register(DOOM_EVENT, _handle_doom, exchange=USER_CENTER_EXCHANGE, schema=TEST_SCHEMA)
    try:
        first, doomed, last = _echo(), _echo(), _echo()
        deliveries = [
            _delivery(first),
            Delivery(USER_CENTER_EXCHANGE, DOOM_EVENT, json.dumps(doomed).encode(), 0),
            _delivery(last),
        ]
        outcomes = process_batch(deliveries, max_attempts=5)
    finally:
        registry.unregister(DOOM_EVENT)
    assert [o.action for o in outcomes] == ["applied", "retry", "applied"]
    assert applied_in_batch(first["event_id"]) == applied_in_batch(last["event_id"]) == 1
    assert applied(doomed["event_id"]) == 0


# -- through the broker -----------------------------------------------------------------


def test_through_the_broker_a_failing_event_in_a_batch_dead_letters_alone(events, echo_batch, settings):
    from tests.config.test_events_batch import _held_then_consumed

    good = [_echo() for _ in range(6)]
    failing = _echo(fail=True)
    _held_then_consumed(events, settings, [*good[:3], failing, *good[3:], good[0]])

    events.wait_for(lambda: DeadLetter.objects.filter(event_id=failing["event_id"]).exists(), timeout=30)
    events.wait_for(lambda: events.consumer.handled >= len(good) + 1 + settings.EVENTS_MAX_ATTEMPTS)
    assert [applied(e["event_id"]) for e in good] == [1] * len(good)
    assert applied(failing["event_id"]) == 0
    letter = DeadLetter.objects.get(event_id=failing["event_id"])
    assert f"after {settings.EVENTS_MAX_ATTEMPTS} attempt(s): RuntimeError: asked to fail" in letter.reason
    assert DeadLetter.objects.count() == 1


def test_through_the_broker_a_clean_batch_goes_through_the_batch_handler(events, echo_batch, settings):
    from tests.config.test_events_batch import _held_then_consumed

    batch = [_echo() for _ in range(8)]
    _held_then_consumed(events, settings, batch)
    events.wait_for(lambda: all(applied(e["event_id"]) == 1 for e in batch))
    events.wait_for(lambda: events.consumer.handled >= len(batch))
    assert sum(applied_in_batch(e["event_id"]) for e in batch) >= 2  # at least one batch of two or more
    assert [applied(e["event_id"]) for e in batch] == [1] * len(batch)
    assert not DeadLetter.objects.exists()
