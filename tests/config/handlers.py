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


def register_echo() -> None:
    from core.events import registry
    from core.events.contracts import USER_CENTER_EXCHANGE

    registry.unregister(TEST_EVENT)
    registry.register(TEST_EVENT, handle_echo, exchange=USER_CENTER_EXCHANGE, schema=TEST_SCHEMA)


def applied(event_id: str) -> int:
    from django.contrib.auth.models import Group

    return Group.objects.filter(name__startswith=f"echo:{event_id}:").count()
