"""The one handler per event type."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from jsonschema import Draft202012Validator, FormatChecker

from core.events.contracts import CONTRACTS

Handler = Callable[[dict], None]


@dataclass(frozen=True)
class EventType:
    routing_key: str
    exchange: str
    validator: Draft202012Validator
    handler: Handler


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
    exchange: str | None = None,
    schema: dict | None = None,
) -> EventType:
    """Register the handler of one event type.

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
    )
    _REGISTRY[routing_key] = event_type
    return event_type


def unregister(routing_key: str) -> None:
    _REGISTRY.pop(routing_key, None)


def event_handler(routing_key: str, **kwargs) -> Callable[[Handler], Handler]:
    def decorate(func: Handler) -> Handler:
        register(routing_key, func, **kwargs)
        return func

    return decorate


def lookup(routing_key: str) -> EventType | None:
    return _REGISTRY.get(routing_key)


def registered() -> dict[str, EventType]:
    return dict(_REGISTRY)
