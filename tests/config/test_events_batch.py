"""Events applied in batches (one transaction, a savepoint per event): what the
one-by-one consumer guaranteed still holds for every event of a batch, on the real
broker (the embedded Redis one, or RabbitMQ in CI's second run)."""

import uuid

import pytest
from django.db import transaction

from core.events import registry
from core.events.consumer import ConsumerSupervisor, Delivery, HandlerClock, process_batch
from core.events.contracts import USER_CENTER_EXCHANGE
from core.models import DeadLetter, ProcessedEvent
from tests.config.handlers import TEST_EVENT, TEST_SCHEMA, applied, handle_echo, register_echo


@pytest.fixture
def echo():
    register_echo()
    yield
    registry.unregister(TEST_EVENT)


def _echo(**extra) -> dict:
    return {"event_id": str(uuid.uuid4()), "type": TEST_EVENT, "value": "v", **extra}


def _held_then_consumed(events, settings, messages: list) -> None:
    """Stop the harness's consumer, queue `messages`, and start a consumer that finds
    them all delivered at once: they are applied as one batch (or a few)."""
    settings.EVENTS_BATCH_SIZE = 50
    settings.EVENTS_BATCH_WAIT_MS = 300  # wait for every held message, even on a loaded machine
    events.supervisor.stop()
    for message in messages:
        events.publish("user_center", TEST_EVENT, message)
    supervisor = ConsumerSupervisor()
    supervisor.start()
    events.supervisor = supervisor  # the fixture stops this one
    assert supervisor.ready.wait(15), "event consumer did not start"


def test_a_batch_with_one_failing_event_applies_the_others_once_and_retries_then_dead_letters_it(
    events, echo, settings
):
    good = [_echo() for _ in range(6)]
    failing = _echo(fail=True)
    _held_then_consumed(events, settings, [*good[:3], failing, *good[3:]])

    events.wait_for(lambda: all(applied(e["event_id"]) == 1 for e in good))
    events.wait_for(lambda: DeadLetter.objects.filter(event_id=failing["event_id"]).exists(), timeout=30)
    assert [applied(e["event_id"]) for e in good] == [1] * len(good)
    assert ProcessedEvent.objects.filter(event_id__in=[e["event_id"] for e in good]).count() == len(good)
    letter = DeadLetter.objects.get(event_id=failing["event_id"])
    assert f"after {settings.EVENTS_MAX_ATTEMPTS} attempt(s): RuntimeError: asked to fail" in letter.reason
    assert applied(failing["event_id"]) == 0
    assert not ProcessedEvent.objects.filter(event_id=failing["event_id"]).exists()
    consumer = events.consumer
    # the first 7 messages took fewer transactions than messages (a batch), and the
    # failing event's retries came back one by one
    assert consumer.handled == len(good) + settings.EVENTS_MAX_ATTEMPTS
    assert consumer.batches < consumer.handled
    assert [r for r, _, _ in events.dead_letters()] == [letter.reason]


def test_an_event_id_twice_in_one_batch_is_applied_once(events, echo, settings):
    twice = _echo()
    others = [_echo() for _ in range(4)]
    _held_then_consumed(events, settings, [twice, others[0], twice, *others[1:], twice])

    events.wait_for(lambda: all(applied(e["event_id"]) == 1 for e in others))
    events.wait_for(lambda: events.consumer.handled >= 7)
    assert applied(twice["event_id"]) == 1
    assert ProcessedEvent.objects.filter(event_id=twice["event_id"]).count() == 1
    assert not DeadLetter.objects.exists()
    assert events.consumer.batches < events.consumer.handled


def _queued_on_broker(settings) -> int:
    """Messages in the event queues and the retry queue once no consumer holds them (an
    unacked message goes back to its queue when its consumer's connection closes)."""
    from kombu import Connection

    from core.events.consumer import event_queues, retry_queue

    prefix = settings.EVENTS_QUEUE_PREFIX
    with Connection(settings.EVENTS_BROKER_URL) as conn:
        return sum(
            queue(conn.default_channel).queue_declare().message_count  # not passive: Redis keeps no empty queue
            for queue in [*event_queues(prefix), retry_queue(prefix)]
        )


def test_every_message_of_a_batch_is_settled_on_the_broker_applied_dead_and_retried_alike(events, echo, settings):
    # The applied messages of a batch are acked together (one AMQP ack with `multiple`
    # on RabbitMQ; one by one on the embedded Redis broker), the dead and the retried
    # each once its copy is sent: when the consumer goes away nothing comes back.
    settings.EVENTS_MAX_ATTEMPTS = 2  # the failing event is retried once, then dead
    good = [_echo() for _ in range(8)]
    failing = _echo(fail=True)
    _held_then_consumed(events, settings, [*good[:4], failing, b"{broken", *good[4:]])

    # 8 applied, the broken body dead at once, the failing event retried and then dead
    events.wait_for(lambda: events.consumer.handled >= len(good) + 3, timeout=30)
    assert [applied(e["event_id"]) for e in good] == [1] * len(good)
    assert events.consumer.batches < events.consumer.handled
    events.stop()  # the connection closes: whatever was not acked is queued again
    assert _queued_on_broker(settings) == 0
    assert len(events.dead_letters()) == 2


def test_a_backlog_fills_each_batch_past_the_batch_wait(events, echo, settings):
    # No wait at all for more messages: a backlog's messages are already delivered
    # (prefetched), so they still fill the batches; until 2026-12-04 a batch was cut at
    # its deadline (here: one message a batch) however many were waiting to be read.
    backlog = [_echo() for _ in range(45)]
    events.supervisor.stop()
    for message in backlog:
        events.publish("user_center", TEST_EVENT, message)
    settings.EVENTS_BATCH_SIZE = 15
    settings.EVENTS_BATCH_WAIT_MS = 0
    supervisor = ConsumerSupervisor()
    supervisor.start()
    events.supervisor = supervisor
    assert supervisor.ready.wait(15), "event consumer did not start"

    events.wait_for(lambda: events.consumer.handled >= len(backlog))
    assert [applied(e["event_id"]) for e in backlog] == [1] * len(backlog)
    assert events.consumer.batches <= 9  # 3 full batches; a slow moment may cut a few more


def test_a_handler_over_its_time_limit_inside_a_batch_is_retried_and_the_others_apply_once(events, echo, settings):
    settings.EVENTS_HANDLER_TIME_LIMIT = 1
    settings.EVENTS_STALL_SECONDS = 2  # the supervisor looks every 1/3 s
    settings.EVENTS_MAX_ATTEMPTS = 2
    before, after = [_echo() for _ in range(3)], [_echo() for _ in range(3)]
    hung = _echo(spin=60)
    _held_then_consumed(events, settings, [*before, hung, *after])

    events.wait_for(lambda: all(applied(e["event_id"]) == 1 for e in before + after), timeout=30)
    events.wait_for(lambda: DeadLetter.objects.filter(event_id=hung["event_id"]).exists(), timeout=40)
    # the events before it were rolled back with the batch's transaction and applied again: once
    assert [applied(e["event_id"]) for e in before + after] == [1] * 6
    assert "after 2 attempt(s): HandlerTimeout: ran past the time limit of 1s" in (
        DeadLetter.objects.get(event_id=hung["event_id"]).reason
    )
    assert applied(hung["event_id"]) == 0
    assert events.supervisor.restarts == 0


# -- process_batch itself (the database's transactions, no broker) -----------------------

DOOM_EVENT = "test.doom"


def _handle_doom(payload: dict) -> None:
    """Writes, then swallows an error that leaves the transaction unusable (Django
    marks it for rollback): the batch must not commit as if all were well."""
    from django.contrib.auth.models import Group

    Group.objects.create(name=f"echo:{payload['event_id']}:doomed")
    try:
        with transaction.atomic(savepoint=False):
            raise RuntimeError("inner failure")
    except RuntimeError:
        pass


@pytest.fixture
def doom():
    registry.unregister(DOOM_EVENT)
    registry.register(DOOM_EVENT, _handle_doom, exchange=USER_CENTER_EXCHANGE, schema=TEST_SCHEMA)
    yield
    registry.unregister(DOOM_EVENT)


def _delivery(event: dict, routing_key: str = TEST_EVENT, attempts: int = 0) -> Delivery:
    import json

    return Delivery(USER_CENTER_EXCHANGE, routing_key, json.dumps(event).encode(), attempts)


@pytest.mark.django_db(transaction=True)
def test_process_batch_gives_one_outcome_per_message_in_order(echo):
    good, failing, twice = _echo(), _echo(fail=True), _echo()
    deliveries = [
        _delivery(good),
        _delivery(failing, attempts=1),
        Delivery(USER_CENTER_EXCHANGE, TEST_EVENT, b"{broken", 0),
        _delivery(twice),
        _delivery(twice),
        _delivery(_echo(fail=True), attempts=4),
    ]
    outcomes = process_batch(deliveries, max_attempts=5, clock=HandlerClock())
    assert [o.action for o in outcomes] == ["applied", "retry", "dead", "applied", "duplicate", "dead"]
    assert "after 2 attempt(s)" in outcomes[1].reason and "after 5 attempt(s)" in outcomes[5].reason
    assert applied(good["event_id"]) == applied(twice["event_id"]) == 1
    assert applied(failing["event_id"]) == 0
    # applied again (a redelivery after a crash between commit and ack): only duplicates
    again = process_batch([_delivery(good), _delivery(twice)], max_attempts=5)
    assert [o.action for o in again] == ["duplicate", "duplicate"]
    assert applied(good["event_id"]) == applied(twice["event_id"]) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("batch", [False, True], ids=["savepoint per event", "batch handler"])
def test_a_handlers_facts_ride_on_its_applied_event_and_a_rolled_back_attempt_tells_none(batch):
    register_echo(batch=batch)
    try:
        good, failing, other = _echo(value="told"), _echo(fail=True, value="void"), _echo(value="also")
        outcomes = process_batch([_delivery(good), _delivery(failing), _delivery(other)], max_attempts=5)
    finally:
        registry.unregister(TEST_EVENT)
    # the batch handler told all three before it raised; its savepoint rolled back and the
    # events went one by one: only what the committed applications told is kept
    assert [(o.action, o.facts) for o in outcomes] == [
        ("applied", {"echo": "told"}),
        ("retry", None),
        ("applied", {"echo": "also"}),
    ]


def test_facts_may_not_take_the_consumer_lines_own_names_and_outside_a_consumer_are_not_collected():
    from core.events.facts import event_line_facts, facts_collected

    assert event_line_facts(event_id="e1", facts={"echo": "x"}) is False
    with facts_collected() as collected:
        with pytest.raises(ValueError, match="outcome"):
            event_line_facts(event_id="e1", facts={"outcome": "mine"})
        assert event_line_facts(event_id="e1", facts={"echo": "x"}) is True
    assert collected == {"e1": {"echo": "x"}}


@pytest.mark.django_db(transaction=True)
def test_an_event_that_dooms_the_transaction_fails_alone_and_the_others_commit(echo, doom):
    first, last = _echo(), _echo()
    doomed = _echo()  # the echo schema; the routing key picks the dooming handler
    outcomes = process_batch(
        [_delivery(first), _delivery(doomed, routing_key=DOOM_EVENT), _delivery(last)], max_attempts=5
    )
    assert [o.action for o in outcomes] == ["applied", "retry", "applied"]
    assert "TransactionSpoiled" in outcomes[1].reason
    assert applied(first["event_id"]) == applied(last["event_id"]) == 1
    assert applied(doomed["event_id"]) == 0
    assert not ProcessedEvent.objects.filter(event_id=doomed["event_id"]).exists()


@pytest.mark.django_db(transaction=True)
def test_a_failed_commit_applies_each_event_in_its_own_transaction(echo, monkeypatch):
    from django.db import DatabaseError, connection

    events = [_echo() for _ in range(3)]
    real_commit, failures = connection.commit, []

    def commit_fails_once():
        if not failures:
            failures.append(1)
            connection.rollback()
            raise DatabaseError("the commit failed")
        real_commit()

    monkeypatch.setattr(connection, "commit", commit_fails_once)
    outcomes = process_batch([_delivery(e) for e in events], max_attempts=5)
    assert failures and [o.action for o in outcomes] == ["applied"] * 3
    assert [applied(e["event_id"]) for e in events] == [1, 1, 1]
    assert ProcessedEvent.objects.filter(event_id__in=[e["event_id"] for e in events]).count() == 3


@pytest.mark.django_db(transaction=True)
def test_on_commit_callbacks_run_after_the_batch_commits_and_not_for_failed_events(echo):
    from django.contrib.auth.models import Group

    ran = []
    calls = {"n": 0}

    def handler(payload):
        calls["n"] += 1
        transaction.on_commit(lambda: ran.append((payload["event_id"], Group.objects.count())))
        handle_echo(payload)

    registry.unregister(TEST_EVENT)
    registry.register(TEST_EVENT, handler, exchange=USER_CENTER_EXCHANGE, schema=TEST_SCHEMA)
    ok, failing = _echo(), _echo(fail=True)
    outcomes = process_batch([_delivery(ok), _delivery(failing)], max_attempts=5)
    assert [o.action for o in outcomes] == ["applied", "retry"]
    assert ran == [(ok["event_id"], 1)]  # once, after commit (its row visible), none for the failure
