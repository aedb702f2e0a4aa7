"""The one handler per event type, and optionally its batch handler.

A batch handler (`BatchHandler`) applies many events of one type at once: the
consumer (core/events/consumer.py) calls it with the payloads of a batch's valid,
not-yet-applied events of that type, in delivery order, inside ONE savepoint that
also holds their `ProcessedEvent` markers. If it raises, that savepoint rolls back
and the consumer applies the same events through the single handler, each in its
own savepoint (so a failure stays with the event that causes it, and retries and
dead letters stay per event).

The contract of a batch handler: the end state of the database (and of whatever
it writes elsewhere) after `batch_handler(payloads)` must equal the end state of
calling `handler(payload)` for each payload in order, including when several
payloads concern the same entity (two results for one order, say). It must either
apply all payloads or raise; it must not swallow a database error (that counts as a
failure of the whole batch, which then falls back to the single handler).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from jsonschema import Draft202012Validator, FormatChecker

from core.events.contracts import CONTRACTS

Handler = Callable[[dict], None]
BatchHandler = Callable[[list[dict]], None]


@dataclass(frozen=True)
class EventType:
    routing_key: str
    exchange: str
    validator: Draft202012Validator
    handler: Handler
    batch_handler: BatchHandler | None = None


_REGISTRY: dict[str, EventType] = {}

FORMAT_CHECKER = FormatChecker(formats=())


@FORMAT_CHECKER.checks("date-time", raises=ValueError)
def _is_aware_datetime(value: object) -> bool:
    """ISO 8601 with an offset, as the contracts require."""
    if not isinstance(value, str):
        return True
    return datetime.fromisoformat(value).tzinfo is not None


class DuplicateHandler(RuntimeError):
    pass


def register(
    routing_key: str,
    handler: Handler,
    *,
    batch_handler: BatchHandler | None = None,
    exchange: str | None = None,
    schema: dict | None = None,
) -> EventType:
    """Register the handler (and optionally the batch handler, see the module's
    docstring for its contract) of one event type.

    The exchange and schema default to the contract of that routing key; a type
    outside the contracts (a test's) must give both.
    """
    if routing_key in _REGISTRY:
        raise DuplicateHandler(f"{routing_key!r} already has a handler: {_REGISTRY[routing_key].handler!r}")
    if routing_key in CONTRACTS:
        contract_exchange, contract_schema = CONTRACTS[routing_key]
        exchange = exchange or contract_exchange
        schema = schema or contract_schema
    if exchange is None or schema is None:
        raise ValueError(f"{routing_key!r} is not in the contracts: give its exchange and schema")
    event_type = EventType(
        routing_key=routing_key,
        exchange=exchange,
        validator=Draft202012Validator(schema, format_checker=FORMAT_CHECKER),
        handler=handler,
        batch_handler=batch_handler,
    )
    _REGISTRY[routing_key] = event_type
    return event_type


def register_batch(routing_key: str, batch_handler: BatchHandler) -> EventType:
    """Attach a batch handler to an event type registered already (its single
    handler stays the fallback)."""
    event_type = _REGISTRY.get(routing_key)
    if event_type is None:
        raise ValueError(f"{routing_key!r} has no handler: register it before its batch handler")
    if event_type.batch_handler is not None:
        raise DuplicateHandler(f"{routing_key!r} already has a batch handler: {event_type.batch_handler!r}")
    event_type = replace(event_type, batch_handler=batch_handler)
    _REGISTRY[routing_key] = event_type
    return event_type


def unregister(routing_key: str) -> None:
    _REGISTRY.pop(routing_key, None)


def event_handler(routing_key: str, **kwargs) -> Callable[[Handler], Handler]:
    def decorate(func: Handler) -> Handler:
        register(routing_key, func, **kwargs)
        return func

    return decorate


def event_batch_handler(routing_key: str) -> Callable[[BatchHandler], BatchHandler]:
    """Decorator: the batch handler of a type registered already (`register_batch`)."""

    def decorate(func: BatchHandler) -> BatchHandler:
        register_batch(routing_key, func)
        return func

    return decorate


def lookup(routing_key: str) -> EventType | None:
    return _REGISTRY.get(routing_key)


def registered() -> dict[str, EventType]:
    return dict(_REGISTRY)
