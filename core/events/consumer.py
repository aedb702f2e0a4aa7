"""The event consumer: one mechanism for every inbound event.

A Celery consumer bootstep starts a `ConsumerSupervisor` beside the worker's task
consumer: a thread that runs an `EventConsumer` (kombu's ConsumerMixin, which
reconnects by itself) on EVENTS_BROKER_URL in a second thread, restarts it (with
back-off) whenever its loop dies, and writes the heartbeat /readyz reads
(core/events/liveness.py). Messages are applied in small batches: the consumer
takes what the broker has already delivered, up to EVENTS_BATCH_SIZE (prefetch is
twice that), waiting at most EVENTS_BATCH_WAIT_MS after the first for more, and then
(`process_batch`):

1. bounds and parses each body (core/events/decode.py: size, UTF-8, nesting depth,
   number ranges, JSON object), finds the one handler registered for the routing key
   and validates the body against that type's contract;
2. applies the batch's valid events in ONE database transaction, each in its own
   savepoint holding its `ProcessedEvent` marker (unique on source + event_id) and
   its handler's writes: a duplicate marker (applied before, or earlier in this
   batch) means the event is only acked; a failing handler rolls back only its own
   savepoint. The events of a type with a batch handler (core/events/registry.py)
   go in one savepoint instead: markers in one INSERT, one call of the batch
   handler, and on failure that savepoint rolls back and they go event by event
   (`_apply_batched`). An event that breaks the transaction itself (past its time limit, or
   the database ended the transaction) gets its failure and the others are applied
   again in a new transaction; a failed commit applies each event again in a
   transaction of its own (the one-by-one path, `process`);
3. acks the batch's messages only after that transaction committed: each dead
   letter and retry once its copy is on the broker, the applied ones with one ack
   (AMQP's `multiple`; one at a time on kombu's virtual transports);
4. sends what it cannot apply (a bad body, breaks the contract, no handler, handler
   failed EVENTS_MAX_ATTEMPTS times) to the dead-letter queue with the reason, and
   records a `DeadLetter` row. A failed handler is retried: the message is copied to
   the retry queue with its attempt count and a not-before time, and the original
   acked. The consumer loop moves retries that are due back to their event queue
   between batches; it never sleeps, so a failing event does not slow the others.

Every failure while handling a message, whatever its exception type, ends in one of
applied, retried or dead-lettered; nothing raised by a message escapes the loop.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from celery import bootsteps
from kombu import Connection, Exchange, Queue
from kombu.mixins import ConsumerMixin
from kombu.transport import virtual

from core import telemetry
from core.events.facts import facts_collected, facts_discard

if TYPE_CHECKING:
    from core.events.registry import EventType

logger = logging.getLogger("huodong.events")

ATTEMPTS_HEADER = "x-huodong-attempts"
SOURCE_HEADER = "x-huodong-source"
ROUTING_KEY_HEADER = "x-huodong-routing-key"
REASON_HEADER = "x-huodong-dead-reason"
NOT_BEFORE_HEADER = "x-huodong-not-before"
MAX_REASON = 2000
MAX_RETRY_DELAY = 60.0
# A batch past its EVENTS_BATCH_WAIT_MS still takes a message that arrives within this
# many seconds of asking: one the broker already sent (prefetch), not one to wait for.
# Until 2026-12-04 the batch was cut at the deadline: on a slow machine reading the
# prefetched messages took ~120 us each, and batches held ~40 of the 100 (docs/events.md).
ALREADY_DELIVERED = 0.001


@dataclass(frozen=True)
class Outcome:
    action: str  # applied | duplicate | dead | retry
    reason: str = ""
    event_id: str = ""
    facts: dict | None = None  # an applied event's handler's facts for its log line (core/events/facts.py)


class HandlerTimeout(BaseException):
    """Raised inside a handler that ran past EVENTS_HANDLER_TIME_LIMIT (not an Exception,
    so a handler's own `except Exception` does not swallow it)."""


def _checkpoint() -> None:
    """A Python-level call: an asynchronous exception still pending is raised here."""


class HandlerClock:
    """A time limit for handlers, which run in the consumer's thread (not the main
    thread, so no SIGALRM as Zulip's queue workers use): the supervisor thread calls
    `stop_if_over`, which raises HandlerTimeout inside the handler through
    PyThreadState_SetAsyncExc. It lands at the handler's next Python instruction (a
    call blocked in C, e.g. a database query, is stopped when it returns) and always
    inside the handler's transaction, which rolls back; the event is retried."""

    def __init__(self):
        self._lock = threading.Lock()
        self._thread_id = 0
        self._started: float | None = None
        self._fired = False

    @contextmanager
    def running(self) -> Iterator[None]:
        with self._lock:
            self._thread_id, self._started, self._fired = threading.get_ident(), time.monotonic(), False
        try:
            yield
        finally:
            with self._lock:
                self._started = None
            _checkpoint()  # still inside the transaction: a late HandlerTimeout rolls it back

    def stop_if_over(self, limit: float) -> bool:
        if limit <= 0 or not self._lock.acquire(timeout=1):
            return False
        try:
            if self._started is None or self._fired or time.monotonic() - self._started < limit:
                return False
            ctypes.pythonapi.PyThreadState_SetAsyncExc(
                ctypes.c_ulong(self._thread_id), ctypes.py_object(HandlerTimeout)
            )
            self._fired = True
            return True
        finally:
            self._lock.release()


def dead_letter_exchange(prefix: str) -> Exchange:
    return Exchange(f"{prefix}.dead", type="direct", durable=True)


def dead_letter_queue(prefix: str) -> Queue:
    return Queue(f"{prefix}.dead_letter", exchange=dead_letter_exchange(prefix), routing_key="dead", durable=True)


def retry_queue(prefix: str) -> Queue:
    """Failed events wait here (not consumed directly) until their retry is due."""
    return Queue(f"{prefix}.retry", exchange=Exchange(f"{prefix}.retry", type="direct", durable=True), durable=True)


def event_queues(prefix: str) -> list[Queue]:
    """One durable queue per contract exchange, bound to every routing key, so an
    event with no handler is dead-lettered rather than silently dropped."""
    from core.events.contracts import EXCHANGES

    return [
        Queue(f"{prefix}.{name}", exchange=Exchange(name, type="topic", durable=True), routing_key="#", durable=True)
        for name in EXCHANGES
    ]


def declare_topology(connection: Connection, prefix: str) -> None:
    channel = connection.default_channel
    for queue in [*event_queues(prefix), retry_queue(prefix), dead_letter_queue(prefix)]:
        queue(channel).declare()


def retry_delay(attempts: int, base_ms: int) -> float:
    """Seconds before retry number `attempts` (1, 2, ...): doubling, at most a minute."""
    return min(base_ms / 1000 * (2 ** max(attempts - 1, 0)), MAX_RETRY_DELAY)


def _contract_errors(validator, payload: dict) -> list[str]:
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message[:300]}" for e in errors[:5]]


def _failure(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:500]}"


@dataclass
class Delivery:
    """One received message, as the batch path sees it."""

    source: str
    routing_key: str
    body: bytes
    attempts: int
    headers: dict | None = None


SpanFactory = Callable[[Delivery], AbstractContextManager[object]]
"""The context (tracing span, liveness) each event is applied in."""


@dataclass
class _Ready:
    """An event that passed its checks and is to be applied."""

    index: int
    event_type: EventType
    payload: dict
    event_id: str
    delivery: Delivery


class _BatchAborted(Exception):
    """One event left the batch's transaction unusable (it ran past its time limit, or
    the database ended the transaction under it): that event gets `outcome`, the
    transaction is rolled back and the batch's other events are applied again."""

    def __init__(self, index: int, outcome: Outcome):
        super().__init__(outcome.reason)
        self.index, self.outcome = index, outcome


class _Duplicate(Exception):
    pass


class _BatchBroken(Exception):
    """A batch handler left the transaction unusable (past its time limit, or the
    database ended the transaction): the batch's transaction is rolled back and its
    events applied again with that type's events each in its own savepoint."""

    def __init__(self, routing_key: str):
        super().__init__(routing_key)
        self.routing_key = routing_key


class TransactionSpoiled(Exception):
    """The handler returned after swallowing an error that marked its transaction for
    rollback: Django would roll its writes back silently, so it counts as failed."""


def _raise_if_spoiled(connection) -> None:
    if connection.needs_rollback:
        raise TransactionSpoiled("the handler swallowed a database error; its writes were rolled back")


def _check(*, source: str, routing_key: str, body: bytes) -> tuple[Outcome | None, EventType | None, dict, str]:
    """Bound, parse, find the handler and validate: (dead outcome or None, event type,
    payload, event_id). Never raises."""
    from django.conf import settings

    from core.events import registry
    from core.events.decode import BadEvent, decode_event

    try:
        payload = decode_event(body, max_bytes=settings.EVENTS_MAX_BODY_BYTES, max_depth=settings.EVENTS_MAX_DEPTH)
    except BadEvent as exc:
        return Outcome("dead", str(exc)), None, {}, ""
    except Exception as exc:  # a decoder bug must dead-letter the message, not kill the loop
        return Outcome("dead", f"could not be decoded: {_failure(exc)}"), None, {}, ""
    event_id = payload.get("event_id")
    event_id = event_id[:64] if isinstance(event_id, str) else ""
    event_type = registry.lookup(routing_key)
    if event_type is None:
        return Outcome("dead", f"no handler for routing key {routing_key[:128]!r}", event_id), None, payload, event_id
    if event_type.exchange != source:
        reason = f"{routing_key!r} belongs on exchange {event_type.exchange!r}, not {source!r}"
        return Outcome("dead", reason, event_id), None, payload, event_id
    try:
        errors = _contract_errors(event_type.validator, payload)
    except Exception as exc:
        reason = f"could not be checked against the contract: {_failure(exc)}"
        return Outcome("dead", reason, event_id), None, payload, event_id
    if errors:
        return Outcome("dead", "breaks the contract: " + "; ".join(errors), event_id), None, payload, event_id
    return None, event_type, payload, event_id


def _failed(exc: BaseException, *, attempts: int, max_attempts: int, event_id: str, routing_key: str) -> Outcome:
    """The outcome of a handler that raised `exc` on attempt `attempts + 1`."""
    from django.conf import settings

    logger.error(
        "event handler failed",
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"event_id": event_id, "event_type": routing_key},
    )
    if isinstance(exc, HandlerTimeout):
        exc = HandlerTimeout(f"ran past the time limit of {settings.EVENTS_HANDLER_TIME_LIMIT}s")
    reason = f"handler failed after {attempts + 1} attempt(s): {_failure(exc)}"
    return Outcome("dead" if attempts + 1 >= max_attempts else "retry", reason, event_id)


def process(
    *,
    source: str,
    routing_key: str,
    body: bytes,
    attempts: int,
    max_attempts: int,
    clock: HandlerClock | None = None,
) -> Outcome:
    """Decide and apply one message in its own transaction. Never raises, whatever the
    body or handler does."""
    dead, event_type, payload, event_id = _check(source=source, routing_key=routing_key, body=body)
    if dead is not None or event_type is None:
        return dead or Outcome("dead", "consumer error: no event type")
    with facts_collected() as collected:
        outcome = _apply_one(
            source=source,
            routing_key=routing_key,
            event_type=event_type,
            payload=payload,
            event_id=event_id,
            attempts=attempts,
            max_attempts=max_attempts,
            clock=clock,
        )
        return _with_facts(outcome, collected)


def _with_facts(outcome: Outcome, collected: dict[str, dict]) -> Outcome:
    """An applied event's outcome with the facts its handler gave for its log line."""
    facts = collected.get(outcome.event_id) if outcome.action == "applied" else None
    return replace(outcome, facts=facts) if facts else outcome


def _apply_one(
    *,
    source: str,
    routing_key: str,
    event_type: EventType,
    payload: dict,
    event_id: str,
    attempts: int,
    max_attempts: int,
    clock: HandlerClock | None,
) -> Outcome:
    from django.db import IntegrityError, connection, transaction

    from core.models import ProcessedEvent

    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    ProcessedEvent.objects.create(source=source, event_id=event_id, event_type=routing_key)
            except IntegrityError:
                return Outcome("duplicate", "event_id already applied", event_id)
            with clock.running() if clock is not None else _no_clock():
                event_type.handler(payload)
            _raise_if_spoiled(connection)
    except BaseException as exc:  # whatever a handler raises (even SystemExit) is its failure
        if isinstance(exc, HandlerTimeout):
            connection.close()  # it was interrupted anywhere: start the next event on a fresh connection
        return _failed(exc, attempts=attempts, max_attempts=max_attempts, event_id=event_id, routing_key=routing_key)
    return Outcome("applied", "", event_id)


def process_batch(
    deliveries: list[Delivery],
    *,
    max_attempts: int,
    clock: HandlerClock | None = None,
    span: SpanFactory | None = None,
) -> list[Outcome]:
    """Decide and apply a batch of messages: one outcome per delivery, in order. Never
    raises.

    The events that pass their checks are applied in ONE transaction, each inside its
    own savepoint holding its `ProcessedEvent` marker and its handler's writes: a
    handler that fails rolls back only its savepoint (that event is retried or
    dead-lettered, the others commit); a duplicate event_id (applied before, or twice
    in this batch) finds the marker and is a duplicate. An event that leaves the
    transaction unusable (past its time limit, or the database ended the transaction)
    gets its failure and the rest are applied again in a new transaction; if the
    commit itself fails, each event is applied again in its own transaction (the
    one-by-one path). A type with a batch handler has its events applied by one call
    in one savepoint, falling back to the savepoint per event when it fails
    (`_apply_batched`). The caller acks only after this returns, i.e. after commit."""
    outcomes: list[Outcome | None] = [None] * len(deliveries)
    pending: list[_Ready] = []
    for index, delivery in enumerate(deliveries):
        dead, event_type, payload, event_id = _check(
            source=delivery.source, routing_key=delivery.routing_key, body=delivery.body
        )
        if dead is not None or event_type is None:
            outcomes[index] = dead or Outcome("dead", "consumer error: no event type")
        else:
            pending.append(_Ready(index, event_type, payload, event_id, delivery))
    with facts_collected() as collected:
        _apply_pending(pending, outcomes, max_attempts=max_attempts, clock=clock, span=span, collected=collected)
        return [
            _with_facts(outcome, collected) if outcome else Outcome("dead", "consumer error: no outcome")
            for outcome in outcomes
        ]


def _apply_pending(
    pending: list[_Ready],
    outcomes: list[Outcome | None],
    *,
    max_attempts: int,
    clock: HandlerClock | None,
    span: SpanFactory | None,
    collected: dict[str, dict],
) -> None:
    """`process_batch`'s transactions: `outcomes` filled in for `pending`. Each attempt
    starts with no facts collected (what a rolled-back attempt told is void)."""
    unbatched: frozenset[str] = frozenset()
    while pending:
        collected.clear()
        try:
            applied = _apply_in_one_transaction(
                pending, max_attempts=max_attempts, clock=clock, span=span, unbatched=unbatched
            )
        except _BatchBroken as broken:
            _close_quietly()  # the transaction is gone: again, that type's events one by one
            unbatched |= {broken.routing_key}
            continue
        except _BatchAborted as aborted:
            _close_quietly()  # the transaction is gone: go on with a fresh connection
            outcomes[aborted.index] = aborted.outcome
            pending = [ready for ready in pending if ready.index != aborted.index]
            continue
        except BaseException:  # the commit (or the database) failed: one transaction per event
            logger.exception("event batch failed as a whole: applying its events one by one")
            _close_quietly()
            collected.clear()
            for ready in pending:
                outcomes[ready.index] = _apply_ready_alone(ready, max_attempts=max_attempts, clock=clock, span=span)
            break
        for index, outcome in applied.items():
            outcomes[index] = outcome
        break


def _close_quietly() -> None:
    from django.db import connection

    try:
        connection.close()
    except Exception:
        logger.exception("could not close the database connection")


def _apply_ready_alone(
    ready: _Ready, *, max_attempts: int, clock: HandlerClock | None, span: SpanFactory | None
) -> Outcome:
    delivery = ready.delivery
    with span(delivery) if span is not None else _no_clock():
        return _apply_one(
            source=delivery.source,
            routing_key=delivery.routing_key,
            event_type=ready.event_type,
            payload=ready.payload,
            event_id=ready.event_id,
            attempts=delivery.attempts,
            max_attempts=max_attempts,
            clock=clock,
        )


def _apply_in_one_transaction(
    pending: list[_Ready],
    *,
    max_attempts: int,
    clock: HandlerClock | None,
    span: SpanFactory | None,
    unbatched: frozenset[str] = frozenset(),
) -> dict[int, Outcome]:
    """Apply `pending` in one transaction: the events of a type with a batch handler
    (two or more of them, its routing key not in `unbatched`) together in one
    savepoint (`_apply_batched`), the others each in its own savepoint, in delivery
    order (a type's batch is applied where its first event stands)."""
    from django.db import transaction

    groups: dict[str, list[_Ready]] = {}
    for ready in pending:
        if ready.event_type.batch_handler is not None and ready.delivery.routing_key not in unbatched:
            groups.setdefault(ready.delivery.routing_key, []).append(ready)
    outcomes: dict[int, Outcome] = {}
    with transaction.atomic():
        for ready in pending:
            if ready.index in outcomes:
                continue  # applied with its type's batch
            group = groups.get(ready.delivery.routing_key, [])
            if len(group) > 1:
                outcomes.update(_apply_batched(group, max_attempts=max_attempts, clock=clock, span=span))
            else:
                outcomes[ready.index] = _apply_in_savepoint(ready, max_attempts=max_attempts, clock=clock, span=span)
    return outcomes


def _apply_in_savepoint(
    ready: _Ready,
    *,
    max_attempts: int,
    clock: HandlerClock | None,
    span: SpanFactory | None,
) -> Outcome:
    """One event in its own savepoint: its marker and its single handler's writes."""
    from django.db import IntegrityError, connection, transaction

    from core.models import ProcessedEvent

    delivery = ready.delivery
    with span(delivery) if span is not None else _no_clock():
        callbacks_before = len(connection.run_on_commit)
        try:
            with transaction.atomic():  # this event's savepoint: marker and handler's writes
                try:
                    ProcessedEvent.objects.create(
                        source=delivery.source, event_id=ready.event_id, event_type=delivery.routing_key
                    )
                except IntegrityError as exc:
                    raise _Duplicate from exc
                with clock.running() if clock is not None else _no_clock():
                    ready.event_type.handler(ready.payload)
                _raise_if_spoiled(connection)
        except _Duplicate:
            return Outcome("duplicate", "event_id already applied", ready.event_id)
        except BaseException as exc:  # whatever a handler raises (even SystemExit) is its failure
            facts_discard([ready.event_id])
            outcome = _failed(
                exc,
                attempts=delivery.attempts,
                max_attempts=max_attempts,
                event_id=ready.event_id,
                routing_key=delivery.routing_key,
            )
            if isinstance(exc, HandlerTimeout) or connection.needs_rollback:
                raise _BatchAborted(ready.index, outcome) from exc
            return outcome
        _bind_to_current_context(connection, callbacks_before)
        return Outcome("applied", "", ready.event_id)


def _apply_batched(
    group: list[_Ready],
    *,
    max_attempts: int,
    clock: HandlerClock | None,
    span: SpanFactory | None,
) -> dict[int, Outcome]:
    """The events of one type with a batch handler, in ONE savepoint: the markers
    already present (one SELECT) and an event_id's later copies in this batch are
    duplicates; the others' markers go in with one multi-row INSERT, then
    `batch_handler(payloads)` is called once, payloads in delivery order. If that
    raises (or a marker clashes: another consumer applied one meanwhile), the
    savepoint rolls back and the group is applied event by event
    (`_apply_in_savepoint`), so only the event that fails is retried.

    Tracing: the batch handler runs in the first event's span (its on_commit
    callbacks run in that context); every other applied event gets its own span,
    opened just after, so each event's trace shows it was consumed."""
    from django.db import connection, transaction

    from core.models import ProcessedEvent

    first = group[0]
    source, routing_key = first.delivery.source, first.delivery.routing_key
    batch_handler = first.event_type.batch_handler
    assert batch_handler is not None
    outcomes: dict[int, Outcome] = {}
    fresh: list[_Ready] = []
    with span(first.delivery) if span is not None else _no_clock():
        callbacks_before = len(connection.run_on_commit)
        try:
            with transaction.atomic():  # the batch's savepoint: markers and batch handler's writes
                ids = list(dict.fromkeys(ready.event_id for ready in group))
                seen = set(
                    ProcessedEvent.objects.filter(source=source, event_id__in=ids).values_list("event_id", flat=True)
                )
                for ready in group:
                    if ready.event_id in seen:
                        outcomes[ready.index] = Outcome("duplicate", "event_id already applied", ready.event_id)
                    else:
                        seen.add(ready.event_id)
                        fresh.append(ready)
                if fresh:
                    ProcessedEvent.objects.bulk_create(
                        ProcessedEvent(source=source, event_id=ready.event_id, event_type=routing_key)
                        for ready in fresh
                    )
                    with clock.running() if clock is not None else _no_clock():
                        batch_handler([ready.payload for ready in fresh])
                    _raise_if_spoiled(connection)
        except BaseException as exc:  # whatever it raises: this group goes event by event
            facts_discard(ready.event_id for ready in group)
            logger.warning(
                "batch handler failed: applying its events one by one",
                exc_info=(type(exc), exc, exc.__traceback__),
                extra={"event_type": routing_key, "batch": len(group)},
            )
            if isinstance(exc, HandlerTimeout) or connection.needs_rollback:
                raise _BatchBroken(routing_key) from exc  # the transaction is unusable
            fallback = True
        else:
            fallback = False
            if fresh:
                _bind_to_current_context(connection, callbacks_before)
    if fallback:
        return {
            ready.index: _apply_in_savepoint(ready, max_attempts=max_attempts, clock=clock, span=span)
            for ready in group
        }
    for ready in fresh[1:]:
        with span(ready.delivery) if span is not None else _no_clock():
            pass
    outcomes.update((ready.index, Outcome("applied", "", ready.event_id)) for ready in fresh)
    return outcomes


def _bind_to_current_context(connection, start: int) -> None:
    """The handler's on_commit callbacks run at the batch's commit, after its span has
    ended: run them in the context they were registered in (a task they enqueue stays
    in the event's trace)."""
    added = connection.run_on_commit[start:]
    if not added:
        return
    try:
        from opentelemetry import context as otel
    except ImportError:  # no tracing library: nothing to carry
        return
    captured = otel.get_current()

    def bind(func):
        def run():
            token = otel.attach(captured)
            try:
                return func()
            finally:
                otel.detach(token)

        return run

    connection.run_on_commit[start:] = [(sids, bind(func), robust) for sids, func, robust in added]


@contextmanager
def _no_clock() -> Iterator[None]:
    yield


def _as_str(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else ""


def _acks_one_at_a_time(message) -> bool:
    """Whether `message`'s broker settles only the message an ack names: kombu's
    virtual transports (the embedded Redis broker) ignore AMQP's `multiple`."""
    return isinstance(message.channel, virtual.Channel)


class EventConsumer(ConsumerMixin):
    def __init__(
        self,
        connection: Connection,
        *,
        prefix: str,
        max_attempts: int,
        retry_delay_ms: int = 1000,
        ready: threading.Event | None = None,
        batch_size: int = 1,
        batch_wait_ms: int = 5,
    ):
        self.connection = connection
        self.prefix = prefix
        self.max_attempts = max_attempts
        self.retry_delay_ms = retry_delay_ms
        self.ready = ready or threading.Event()
        self.batch_size = max(1, batch_size)
        self.batch_wait = max(0, batch_wait_ms) / 1000
        # Read by the supervisor's heartbeat (plain attributes: one writer, this thread).
        self.loop_at = time.time()
        self.busy_since: float | None = None
        self.busy_event = ""
        self.handled = 0
        self.batches = 0
        self.last_handled_at: float | None = None
        self._retry_channel = None
        self._next_retry_check = 0.0
        self._batch: list = []
        self._batch_deadline = 0.0
        self.clock = HandlerClock()

    def get_consumers(self, Consumer, channel):  # noqa: N803 (kombu's signature)
        # Prefetch two batches: the next one arrives while this one is applied.
        prefetch = max(20, 2 * self.batch_size)
        return [Consumer(queues=event_queues(self.prefix), on_message=self.on_message, prefetch_count=prefetch)]

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self.loop_at = time.time()
        self.ready.set()

    def on_iteration(self) -> None:
        self.loop_at = time.time()
        if self.loop_at >= self._next_retry_check:
            self._next_retry_check = self.loop_at + 0.2
            self.move_due_retries()

    def consume(self, limit=None, timeout=None, safety_interval=1, **kwargs):
        """kombu's consume loop, collecting batches: messages are taken as they are
        delivered until EVENTS_BATCH_SIZE of them are held (`on_message` applies them)
        or none comes: within EVENTS_BATCH_WAIT_MS of the first, and after that within
        ALREADY_DELIVERED of the last (a backlog's messages, prefetched while the last
        batch was applied, fill the batch however long reading them takes); then the
        batch is applied. What is held when the connection fails was not acked: the
        broker delivers it again."""
        with self.consumer_context(**kwargs) as (conn, _channel, _consumers):
            try:
                while not self.should_stop:
                    self.on_iteration()
                    wait = float(safety_interval)
                    if self._batch:
                        # Past the deadline, only what is already delivered (in the
                        # socket's buffer, or arriving within ALREADY_DELIVERED) joins.
                        wait = max(self._batch_deadline - time.monotonic(), ALREADY_DELIVERED)
                    try:
                        conn.drain_events(timeout=wait)
                    except TimeoutError:
                        if self._batch:
                            self.flush()
                        else:
                            conn.heartbeat_check()
                    except OSError:
                        if not self.should_stop:
                            raise
                    yield
                if self._batch:  # stopping: apply what was received
                    self.flush()
            finally:
                self._batch = []

    # -- messages -----------------------------------------------------------------

    def on_message(self, message) -> None:
        if not self._batch:
            self._batch_deadline = time.monotonic() + self.batch_wait
        self._batch.append(message)
        if len(self._batch) >= self.batch_size:
            self.flush()

    @contextmanager
    def _event_span(self, delivery: Delivery) -> Iterator[None]:
        # Liveness moves per event, not per batch: a long batch is not a stuck loop.
        self.loop_at = self.busy_since = time.time()
        self.busy_event = delivery.routing_key[:128]
        try:
            # Tracing (core/telemetry.py): the span's parent is the message's
            # `traceparent` header when the publisher sent one.
            with telemetry.event_span(
                queue=f"{self.prefix}.{delivery.source}", routing_key=delivery.routing_key, headers=delivery.headers
            ):
                yield
        finally:
            self.last_handled_at = time.time()

    def flush(self) -> None:
        """Apply the held batch (process_batch: one transaction), then for each message
        in order: dead-letter it or queue its retry, and ack it."""
        from django.db import close_old_connections

        from core.observability import event_count

        batch, self._batch = self._batch, []
        if not batch:
            return
        started = time.monotonic()
        self.busy_since, self.busy_event = time.time(), ""
        try:
            deliveries = []
            for message in batch:
                source, routing_key, attempts = self._envelope(message)
                headers = message.headers if isinstance(message.headers, dict) else None
                deliveries.append(Delivery(source, routing_key, self._body_bytes(message), attempts, headers))
            try:
                close_old_connections()
                outcomes = process_batch(
                    deliveries, max_attempts=self.max_attempts, clock=self.clock, span=self._event_span
                )
            except BaseException:  # process_batch() never raises; if it ever does, one by one
                logger.exception("event batch processing raised")
                outcomes = [self._process_alone(delivery) for delivery in deliveries]
            self.batches += 1
            latency_ms = round((time.monotonic() - started) * 1000, 2)
            unacked, waiting = None, 0  # the last applied message not acked yet (one ack settles it and all before it)
            for message, delivery, outcome in zip(batch, deliveries, outcomes, strict=True):
                outcome = replace(outcome, reason=outcome.reason[:MAX_REASON])
                event_count(source=delivery.source, action=outcome.action, body=message.body)
                # Broker errors below propagate: kombu reconnects (or the supervisor restarts
                # the loop) and the unacked messages are delivered again.
                if outcome.action == "dead":
                    self._dead_letter(message, delivery.source, delivery.routing_key, outcome)
                elif outcome.action == "retry":
                    self._to_retry_queue(
                        message, delivery.source, delivery.routing_key, delivery.attempts + 1, outcome.reason
                    )
                if outcome.action in ("dead", "retry") or _acks_one_at_a_time(message):
                    message.ack()  # a dead letter or retry: its copy is on the broker, this one is settled now
                    self.handled += 1
                else:
                    unacked, waiting = message, waiting + 1
                log = logger.warning if outcome.action in ("dead", "retry") else logger.info
                log(
                    "event " + outcome.action,
                    extra={
                        "event_id": outcome.event_id,
                        "event_type": delivery.routing_key,
                        "source": delivery.source,
                        "outcome": outcome.action,
                        "reason": outcome.reason,
                        "attempt": delivery.attempts + 1,
                        "batch": len(batch),
                        "latency_ms": latency_ms,
                        **(outcome.facts or {}),  # the handler's (core/events/facts.py)
                    },
                )
            if unacked is not None:
                # One ack for the batch's applied messages (AMQP's `multiple`: every
                # delivery of this channel up to this one; all earlier ones are of this
                # batch, in order, or settled already). An ack a message cost RabbitMQ
                # and this thread a frame each: one a batch drained a backlog ~20% faster
                # (docs/events.md, "Thirteenth round").
                unacked.ack(multiple=True)
                self.last_handled_at = time.time()  # before `handled` moves: a reader of both sees this batch's
                self.handled += waiting
        finally:
            self.busy_since, self.busy_event = None, ""
            self.last_handled_at = time.time()
            try:
                close_old_connections()
            except Exception:
                logger.exception("could not close the database connection")

    def _process_alone(self, delivery: Delivery) -> Outcome:
        try:
            with self._event_span(delivery):
                return process(
                    source=delivery.source,
                    routing_key=delivery.routing_key,
                    body=delivery.body,
                    attempts=delivery.attempts,
                    max_attempts=self.max_attempts,
                    clock=self.clock,
                )
        except BaseException as exc:  # process() never raises; if it ever does, the message is dead
            logger.exception("event processing raised")
            return Outcome("dead", f"consumer error: {_failure(exc)}")

    def _envelope(self, message) -> tuple[str, str, int]:
        """Source exchange, routing key and earlier attempts. A message delivered from
        a contract exchange is a first attempt whatever its headers claim; our own
        headers count only on what came back through the retry queue."""
        headers = message.headers if isinstance(message.headers, dict) else {}
        info = message.delivery_info if isinstance(message.delivery_info, dict) else {}
        exchange = _as_str(info.get("exchange"))
        if exchange:
            return exchange, _as_str(info.get("routing_key")), 0
        try:
            attempts = int(headers.get(ATTEMPTS_HEADER) or 0)
        except (TypeError, ValueError):
            attempts = 0
        attempts = min(max(attempts, 0), self.max_attempts)
        return _as_str(headers.get(SOURCE_HEADER)), _as_str(headers.get(ROUTING_KEY_HEADER)), attempts

    def _body_bytes(self, message) -> bytes:
        body = message.body
        if isinstance(body, bytes):
            return body
        if isinstance(body, str):
            return body.encode("utf-8", errors="surrogateescape")
        return repr(body).encode()

    # -- retries ------------------------------------------------------------------

    def _to_retry_queue(self, message, source: str, routing_key: str, attempts: int, reason: str) -> None:
        queue = retry_queue(self.prefix)
        with self.connection.Producer() as producer:
            producer.publish(
                self._body_bytes(message),
                exchange=queue.exchange,
                routing_key=queue.routing_key,
                declare=[queue],
                content_type="application/octet-stream",
                content_encoding="binary",
                delivery_mode=2,
                headers={
                    SOURCE_HEADER: source,
                    ROUTING_KEY_HEADER: routing_key,
                    ATTEMPTS_HEADER: attempts,
                    NOT_BEFORE_HEADER: time.time() + retry_delay(attempts, self.retry_delay_ms),
                    REASON_HEADER: reason[:MAX_REASON],
                },
                retry=True,
            )

    def move_due_retries(self, limit: int = 100) -> int:
        """Put retries whose time has come back on their event queue. The retry queue
        is in arrival order; the first one not yet due is put back and ends the pass."""
        moved = 0
        try:
            channel = self._retry_channel
            if channel is None:
                channel = self._retry_channel = self.connection.channel()
            queue = retry_queue(self.prefix)(channel)
            for _ in range(limit):
                message = queue.get(no_ack=False)
                if message is None:
                    break
                headers = message.headers if isinstance(message.headers, dict) else {}
                try:
                    not_before = float(headers.get(NOT_BEFORE_HEADER) or 0)
                except (TypeError, ValueError):
                    not_before = 0.0
                if not_before > time.time():
                    message.requeue()
                    break
                with self.connection.Producer() as producer:
                    producer.publish(
                        self._body_bytes(message),
                        exchange="",
                        routing_key=f"{self.prefix}.{_as_str(headers.get(SOURCE_HEADER))}",
                        content_type="application/json",
                        content_encoding="utf-8",
                        delivery_mode=2,
                        headers={key: headers.get(key) for key in (SOURCE_HEADER, ROUTING_KEY_HEADER, ATTEMPTS_HEADER)},
                        retry=True,
                    )
                message.ack()
                moved += 1
        except Exception:  # broker trouble: the retries stay queued; try again next pass
            logger.exception("could not move due retries")
            self._retry_channel = None
        return moved

    # -- dead letters -------------------------------------------------------------

    def _dead_letter(self, message, source: str, routing_key: str, outcome: Outcome) -> None:
        from core.models import DeadLetter

        body = self._body_bytes(message)
        with self.connection.Producer() as producer:
            producer.publish(
                body,
                exchange=dead_letter_exchange(self.prefix),
                routing_key="dead",
                declare=[dead_letter_queue(self.prefix)],
                content_type="application/octet-stream",
                content_encoding="binary",
                delivery_mode=2,
                headers={SOURCE_HEADER: source, ROUTING_KEY_HEADER: routing_key, REASON_HEADER: outcome.reason},
                retry=True,
            )
        try:
            DeadLetter.objects.create(
                source=source[:64],
                routing_key=routing_key[:128],
                event_id=outcome.event_id,
                reason=outcome.reason,
                body=body[:65535].decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
            )
        except Exception:  # the queue holds it; the row is a convenience copy
            logger.exception("could not record dead letter in the database")


def run_consumer(*, url: str | None = None, ready: threading.Event | None = None) -> EventConsumer:
    """Build a consumer on EVENTS_BROKER_URL (used by the supervisor and by tests)."""
    from django.conf import settings

    connection = Connection(
        url or settings.EVENTS_BROKER_URL,
        heartbeat=30,
        transport_options={"visibility_timeout": settings.EVENTS_VISIBILITY_TIMEOUT},
    )
    try:
        declare_topology(connection, settings.EVENTS_QUEUE_PREFIX)
    except BaseException:
        connection.release()
        raise
    return EventConsumer(
        connection,
        prefix=settings.EVENTS_QUEUE_PREFIX,
        max_attempts=settings.EVENTS_MAX_ATTEMPTS,
        retry_delay_ms=settings.EVENTS_RETRY_DELAY_MS,
        ready=ready,
        batch_size=settings.EVENTS_BATCH_SIZE,
        batch_wait_ms=settings.EVENTS_BATCH_WAIT_MS,
    )


class ConsumerSupervisor:
    """Keeps one EventConsumer running and reports its liveness.

    A supervisor thread starts the consumer's loop in its own thread, restarts it
    (after 0.5 s, doubling to at most 30 s while it keeps dying quickly) when the loop
    dies or the broker cannot be reached, and writes the heartbeat every few seconds.
    """

    def __init__(self, factory: Callable[..., EventConsumer] = run_consumer):
        self.factory = factory
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.ready = threading.Event()
        self.restarts = 0
        self.last_error = ""
        self.consumer: EventConsumer | None = None
        self._loop: threading.Thread | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._supervise, name="huodong-events-supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        if self.consumer is not None:
            self.consumer.should_stop = True
        for thread in (self._loop, self._thread):
            if thread is not None:
                thread.join(timeout=timeout)
        self._release()

    def _release(self) -> None:
        if self.consumer is not None:
            try:
                self.consumer.connection.release()
            except Exception:
                logger.exception("could not release the event consumer's connection")

    def _run_loop(self, consumer: EventConsumer) -> None:
        try:
            consumer.run()
        except BaseException as exc:  # reported; the supervisor restarts the loop
            self.last_error = _failure(exc)
            logger.exception("event consumer loop died", extra={"consumer": self.id})

    def _supervise(self) -> None:
        from core.events.liveness import heartbeat_clear, heartbeat_interval

        backoff, next_start, started_at = 0.5, 0.0, 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if (self._loop is None or not self._loop.is_alive()) and now >= next_start:
                if self._loop is not None:  # it died: count it, back off if it keeps dying fast
                    self.restarts += 1
                    backoff = 0.5 if now - started_at > 60 else min(backoff * 2, 30.0)
                    logger.warning("restarting the event consumer", extra={"restarts": self.restarts})
                    self._release()
                started_at = now
                try:
                    self.consumer = self.factory(ready=self.ready)
                    self._loop = threading.Thread(
                        target=self._run_loop, args=(self.consumer,), name="huodong-events", daemon=True
                    )
                    self._loop.start()
                except Exception as exc:
                    self.last_error = _failure(exc)
                    logger.exception("could not start the event consumer")
                    self._loop = threading.Thread(target=lambda: None)  # counts as a death
                    self._loop.start()
                    self._loop.join()
                next_start = time.monotonic() + backoff
            self._enforce_time_limit()
            self._beat()
            self._stop.wait(heartbeat_interval())
        try:
            heartbeat_clear(consumer_id=self.id)
        except Exception:
            logger.exception("could not clear the event consumer's heartbeat")

    def _enforce_time_limit(self) -> None:
        from django.conf import settings

        consumer = self.consumer
        if consumer is not None and consumer.clock.stop_if_over(settings.EVENTS_HANDLER_TIME_LIMIT):
            logger.warning(
                "event handler over its time limit: stopping it",
                extra={"event_type": consumer.busy_event, "limit_s": settings.EVENTS_HANDLER_TIME_LIMIT},
            )

    def _beat(self) -> None:
        from core.events.liveness import heartbeat_write

        consumer = self.consumer
        running = self._loop is not None and self._loop.is_alive() and consumer is not None
        state = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "running": running,
            "restarts": self.restarts,
            "last_error": self.last_error,
        }
        if consumer is not None:
            state.update(
                loop_at=consumer.loop_at,
                busy_since=consumer.busy_since,
                busy_event=consumer.busy_event,
                handled=consumer.handled,
                last_handled_at=consumer.last_handled_at,
            )
        try:
            heartbeat_write(consumer_id=self.id, state=state)
        except Exception:  # Redis down: /readyz will say so; the consumer goes on
            logger.exception("could not write the event consumer's heartbeat")


class EventConsumerStep(bootsteps.StartStopStep):
    """Runs the supervised event consumer in threads of the worker's main process."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.supervisor: ConsumerSupervisor | None = None

    def start(self, parent) -> None:
        from django.conf import settings

        if not getattr(settings, "EVENTS_CONSUMER_ENABLED", True):
            return
        if self.supervisor is not None:
            return
        from core.boot import heap_freeze

        heap_freeze()  # the worker has booted: full collections skip its start-up objects
        self.supervisor = ConsumerSupervisor()
        self.supervisor.start()
        logger.info(
            "event consumer started", extra={"queues": [q.name for q in event_queues(settings.EVENTS_QUEUE_PREFIX)]}
        )

    def stop(self, parent) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        self.supervisor = None

    def shutdown(self, parent) -> None:
        self.stop(parent)
