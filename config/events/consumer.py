"""The event consumer: one mechanism for every inbound event.

A Celery consumer bootstep starts an `EventConsumer` (kombu's ConsumerMixin, which
reconnects by itself) on EVENTS_BROKER_URL beside the worker's task consumer. For
each message it:

1. parses the body as UTF-8 JSON, finds the one handler registered for the routing
   key and validates the body against that type's contract;
2. in one database transaction, inserts the `ProcessedEvent` marker (unique on
   source + event_id) and runs the handler; a duplicate marker means the event was
   applied before and the message is only acked;
3. acks only after that transaction committed;
4. sends what it cannot apply (not JSON, breaks the contract, no handler, handler
   failed EVENTS_MAX_ATTEMPTS times) to the dead-letter queue with the reason, and
   records a `DeadLetter` row. A failed handler is retried by republishing the
   message with an attempt counter before the original is acked, so the queue is
   never blocked and nothing is lost.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass

from celery import bootsteps
from kombu import Connection, Exchange, Queue
from kombu.mixins import ConsumerMixin

logger = logging.getLogger("huodong.events")

ATTEMPTS_HEADER = "x-huodong-attempts"
SOURCE_HEADER = "x-huodong-source"
ROUTING_KEY_HEADER = "x-huodong-routing-key"
REASON_HEADER = "x-huodong-dead-reason"


@dataclass(frozen=True)
class Outcome:
    action: str  # applied | duplicate | dead | retry
    reason: str = ""
    event_id: str = ""


def dead_letter_exchange(prefix: str) -> Exchange:
    return Exchange(f"{prefix}.dead", type="direct", durable=True)


def dead_letter_queue(prefix: str) -> Queue:
    return Queue(f"{prefix}.dead_letter", exchange=dead_letter_exchange(prefix), routing_key="dead", durable=True)


def event_queues(prefix: str) -> list[Queue]:
    """One durable queue per contract exchange, bound to every routing key, so an
    event with no handler is dead-lettered rather than silently dropped."""
    from config.events.contracts import EXCHANGES

    return [
        Queue(f"{prefix}.{name}", exchange=Exchange(name, type="topic", durable=True), routing_key="#", durable=True)
        for name in EXCHANGES
    ]


def declare_topology(connection: Connection, prefix: str) -> None:
    channel = connection.default_channel
    for queue in [*event_queues(prefix), dead_letter_queue(prefix)]:
        queue(channel).declare()


def _contract_errors(validator, payload: dict) -> list[str]:
    errors = sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors[:5]]


def process(*, source: str, routing_key: str, body: bytes, attempts: int, max_attempts: int) -> Outcome:
    """Decide and apply one message. Never raises."""
    from django.db import IntegrityError, transaction

    from config.events import registry
    from config.models import ProcessedEvent

    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return Outcome("dead", f"not valid UTF-8 JSON: {exc}")
    if not isinstance(payload, dict):
        return Outcome("dead", "body is not a JSON object")
    event_id = str(payload.get("event_id") or "")[:64]
    event_type = registry.lookup(routing_key)
    if event_type is None:
        return Outcome("dead", f"no handler for routing key {routing_key!r}", event_id)
    if event_type.exchange != source:
        return Outcome("dead", f"{routing_key!r} belongs on exchange {event_type.exchange!r}, not {source!r}", event_id)
    errors = _contract_errors(event_type.validator, payload)
    if errors:
        return Outcome("dead", "breaks the contract: " + "; ".join(errors), event_id)
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    ProcessedEvent.objects.create(source=source, event_id=event_id, event_type=routing_key)
            except IntegrityError:
                return Outcome("duplicate", "event_id already applied", event_id)
            event_type.handler(payload)
    except Exception as exc:  # the handler's failure must not crash the worker
        logger.exception("event handler failed", extra={"event_id": event_id, "event_type": routing_key})
        reason = f"handler failed after {attempts + 1} attempt(s): {type(exc).__name__}: {exc}"
        if attempts + 1 >= max_attempts:
            return Outcome("dead", reason, event_id)
        return Outcome("retry", reason, event_id)
    return Outcome("applied", "", event_id)


class EventConsumer(ConsumerMixin):
    def __init__(self, connection: Connection, *, prefix: str, max_attempts: int, retry_delay: float = 0.2):
        self.connection = connection
        self.prefix = prefix
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.ready = threading.Event()

    def get_consumers(self, Consumer, channel):  # noqa: N803 (kombu's signature)
        return [Consumer(queues=event_queues(self.prefix), on_message=self.on_message, prefetch_count=20)]

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        self.ready.set()

    def on_message(self, message) -> None:
        from django.db import close_old_connections

        started = time.monotonic()
        headers = message.headers or {}
        info = message.delivery_info or {}
        source = headers.get(SOURCE_HEADER) or info.get("exchange") or ""
        routing_key = headers.get(ROUTING_KEY_HEADER) or info.get("routing_key") or ""
        attempts = int(headers.get(ATTEMPTS_HEADER) or 0)
        close_old_connections()
        outcome = process(
            source=source,
            routing_key=routing_key,
            body=self._body_bytes(message),
            attempts=attempts,
            max_attempts=self.max_attempts,
        )
        if outcome.action == "dead":
            self._dead_letter(message, source, routing_key, outcome)
        elif outcome.action == "retry":
            time.sleep(min(self.retry_delay * (2**attempts), 5.0))
            self._republish(message, source, routing_key, attempts + 1)
        message.ack()
        close_old_connections()
        log = logger.warning if outcome.action in ("dead", "retry") else logger.info
        log(
            "event " + outcome.action,
            extra={
                "event_id": outcome.event_id,
                "event_type": routing_key,
                "source": source,
                "outcome": outcome.action,
                "reason": outcome.reason,
                "attempt": attempts + 1,
                "latency_ms": round((time.monotonic() - started) * 1000, 2),
            },
        )

    def _body_bytes(self, message) -> bytes:
        return message.body if isinstance(message.body, bytes) else str(message.body).encode()

    def _republish(self, message, source: str, routing_key: str, attempts: int) -> None:
        queue_name = f"{self.prefix}.{source}"
        with self.connection.Producer() as producer:
            producer.publish(
                self._body_bytes(message),
                exchange="",
                routing_key=queue_name,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                headers={SOURCE_HEADER: source, ROUTING_KEY_HEADER: routing_key, ATTEMPTS_HEADER: attempts},
                retry=True,
            )

    def _dead_letter(self, message, source: str, routing_key: str, outcome: Outcome) -> None:
        from config.models import DeadLetter

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
                headers={SOURCE_HEADER: source, ROUTING_KEY_HEADER: routing_key, REASON_HEADER: outcome.reason[:1000]},
                retry=True,
            )
        try:
            DeadLetter.objects.create(
                source=source[:64],
                routing_key=routing_key[:128],
                event_id=outcome.event_id,
                reason=outcome.reason,
                body=body.decode("utf-8", errors="replace")[:65535],
            )
        except Exception:  # the queue holds it; the row is a convenience copy
            logger.exception("could not record dead letter in the database")


def run_consumer(*, url: str | None = None, stop: threading.Event | None = None) -> EventConsumer:
    """Build a consumer on EVENTS_BROKER_URL (used by the bootstep and by tests)."""
    from django.conf import settings

    connection = Connection(
        url or settings.EVENTS_BROKER_URL,
        heartbeat=30,
        transport_options={"visibility_timeout": settings.EVENTS_VISIBILITY_TIMEOUT},
    )
    declare_topology(connection, settings.EVENTS_QUEUE_PREFIX)
    return EventConsumer(connection, prefix=settings.EVENTS_QUEUE_PREFIX, max_attempts=settings.EVENTS_MAX_ATTEMPTS)


class EventConsumerStep(bootsteps.StartStopStep):
    """Runs the event consumer in a thread of the worker's main process."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def __init__(self, parent, **kwargs):
        super().__init__(parent, **kwargs)
        self.consumer: EventConsumer | None = None
        self.thread: threading.Thread | None = None

    def start(self, parent) -> None:
        from django.conf import settings

        if not getattr(settings, "EVENTS_CONSUMER_ENABLED", True):
            return
        if self.thread is not None and self.thread.is_alive():
            return
        self.consumer = run_consumer()
        self.thread = threading.Thread(target=self.consumer.run, name="huodong-events", daemon=True)
        self.thread.start()
        logger.info(
            "event consumer started", extra={"queues": [q.name for q in event_queues(settings.EVENTS_QUEUE_PREFIX)]}
        )

    def stop(self, parent) -> None:
        if self.consumer is not None:
            self.consumer.should_stop = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.thread = None

    def shutdown(self, parent) -> None:
        self.stop(parent)
