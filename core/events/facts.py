"""A handler's facts on its event's own log line.

The consumer writes one line per event after its batch has committed (`event
applied`, logger `huodong.events`: event_id, event_type, source, outcome, reason,
attempt, batch, latency_ms). A handler with more to say about an event (what it
decided: an activation's match outcome, its conversion, ...) gives those facts to
`event_line_facts`, and they go on that line: one event, one line, and only the
application that committed is told (an attempt rolled back with its savepoint, or
with its batch's transaction, leaves nothing). Before 2026-12-04 the activation
handler wrote a second line per event; at a backlog's thousand events a second that
line cost an eighth of the handler's time (docs/events.md).

Outside the consumer (a demo, a management command, a test calling a service) there
is no such line: `event_line_facts` returns False and the caller writes its own.

Facts may not use the consumer line's own names (`LINE_FIELDS`): they are refused
with ValueError, as a registration that clashes is (core/events/registry.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

LINE_FIELDS = frozenset({"event_id", "event_type", "source", "outcome", "reason", "attempt", "batch", "latency_ms"})

_collected: ContextVar[dict[str, dict] | None] = ContextVar("huodong_event_line_facts", default=None)


def event_line_facts(*, event_id: str, facts: dict) -> bool:
    """Put `facts` on the consumer's line for event `event_id` (the line is written
    only if this application commits). False when no consumer applies the event: the
    caller logs the facts itself."""
    collected = _collected.get()
    if collected is None:
        return False
    clashes = LINE_FIELDS.intersection(facts)
    if clashes:
        raise ValueError(f"event line facts may not use the consumer's own names: {sorted(clashes)}")
    collected[event_id[:64]] = facts
    return True


@contextmanager
def facts_collected() -> Iterator[dict[str, dict]]:
    """The consumer's side: handlers called inside give their facts to the dict yielded
    (by event_id), a new one for each call."""
    collected: dict[str, dict] = {}
    token = _collected.set(collected)
    try:
        yield collected
    finally:
        _collected.reset(token)


def facts_discard(event_ids: Iterable[str]) -> None:
    """These events' applications were rolled back: their facts are not told."""
    collected = _collected.get()
    if collected is not None:
        for event_id in event_ids:
            collected.pop(event_id[:64], None)
