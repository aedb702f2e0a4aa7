"""A handler registered only in tests, to prove the consumer mechanism.

It journals each application as an auth Group row named `echo:<event_id>:<n>`:
a real table written inside the handler's transaction, so the tests can count
how many times an event was applied."""

from __future__ import annotations

import os
import time
import uuid

TEST_EVENT = "test.echo"
TEST_SCHEMA = {
    "type": "object",
    "required": ["event_id", "type", "value"],
    "properties": {
        "event_id": {"type": "string", "minLength": 1},
        "type": {"const": TEST_EVENT},
        "value": {"type": "string"},
        "fail": {"type": "boolean"},
        "sleep": {"type": "number"},
        "raise": {"enum": ["system_exit", "recursion", "base_exception"]},
        "spin": {"type": "number"},
    },
}


class UnexpectedFailure(BaseException):
    """Not an Exception: what no handler should raise, and the consumer survives."""


def _recurse(depth: int) -> int:
    return _recurse(depth + 1) + 1


def _raise_unexpected(kind: str) -> None:
    if kind == "system_exit":
        raise SystemExit("a library called sys.exit()")
    if kind == "recursion":
        _recurse(0)
    raise UnexpectedFailure("neither an Exception nor expected")


def handle_echo(payload: dict) -> None:
    from django.contrib.auth.models import Group

    from core.events.facts import event_line_facts

    event_line_facts(event_id=payload["event_id"], facts={"echo": payload["value"]})  # before it may fail
    if payload.get("fail"):
        raise RuntimeError("asked to fail")
    if payload.get("raise"):
        _raise_unexpected(payload["raise"])
    if payload.get("spin"):  # a handler that hangs (in Python, swallowing what it can)
        end = time.monotonic() + payload["spin"]
        while time.monotonic() < end:
            try:
                time.sleep(0.05)
            except Exception:
                pass
    Group.objects.create(name=f"echo:{payload['event_id']}:{uuid.uuid4().hex[:8]}")
    marker = os.environ.get("ECHO_STARTED_MARKER")
    if payload.get("sleep") and marker and not os.path.exists(marker):
        # First delivery only: announce that the handler is mid-transaction, then
        # stall so the test can kill the worker here.
        with open(marker, "w") as fh:
            fh.write(payload["event_id"])
        time.sleep(payload["sleep"])


BATCH_CALLS: list[list[str]] = []
"""The event_ids of each call of `handle_echo_batch`, in this process."""


def handle_echo_batch(payloads: list[dict]) -> None:
    """The echo's batch handler: one multi-row insert of the journal rows (named
    `echo:<event_id>:batch-<hex>`, so tests see which path applied an event). Like the
    single handler it fails if any event asks to, and stalls (first delivery only)
    when one asks to sleep."""
    from django.contrib.auth.models import Group

    from core.events.facts import event_line_facts

    BATCH_CALLS.append([payload["event_id"] for payload in payloads])
    for payload in payloads:
        event_line_facts(event_id=payload["event_id"], facts={"echo": payload["value"]})
    for payload in payloads:
        if payload.get("fail"):
            raise RuntimeError("asked to fail (in a batch)")
        if payload.get("raise"):
            _raise_unexpected(payload["raise"])
    Group.objects.bulk_create(Group(name=f"echo:{p['event_id']}:batch-{uuid.uuid4().hex[:7]}") for p in payloads)
    marker = os.environ.get("ECHO_STARTED_MARKER")
    sleeping = [p for p in payloads if p.get("sleep")]
    if sleeping and marker and not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write(sleeping[0]["event_id"])
        time.sleep(sleeping[0]["sleep"])


def register_echo(*, batch: bool = False) -> None:
    from core.events import registry
    from core.events.contracts import USER_CENTER_EXCHANGE

    registry.unregister(TEST_EVENT)
    registry.register(
        TEST_EVENT,
        handle_echo,
        batch_handler=handle_echo_batch if batch else None,
        exchange=USER_CENTER_EXCHANGE,
        schema=TEST_SCHEMA,
    )


def applied_in_batch(event_id: str) -> int:
    from django.contrib.auth.models import Group

    return Group.objects.filter(name__startswith=f"echo:{event_id}:batch-").count()


def applied(event_id: str) -> int:
    from django.contrib.auth.models import Group

    return Group.objects.filter(name__startswith=f"echo:{event_id}:").count()
