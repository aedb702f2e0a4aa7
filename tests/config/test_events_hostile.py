# ruff: noqa: E501 (one hostile case per line reads best as a table)
"""Hostile messages on the real broker (the embedded Redis one, or RabbitMQ in CI's
second run): each ends in the dead-letter list with its reason, and none stops or
slows the valid events published after them."""

import json
import uuid

import pytest
from jsonschema import Draft202012Validator

from core.events import registry
from core.events.consumer import ATTEMPTS_HEADER, SOURCE_HEADER
from core.events.contracts import CONTRACTS
from core.events.decode import BadEvent, decode_event
from core.events.registry import FORMAT_CHECKER
from core.models import DeadLetter, ProcessedEvent
from tests.config.handlers import TEST_EVENT, applied, register_echo

UC, PAY = "user_center", "payment"


@pytest.fixture
def echo():
    register_echo()
    yield
    registry.unregister(TEST_EVENT)


def _echo(tag: str, **extra) -> dict:
    return {"event_id": f"{tag}-{uuid.uuid4().hex[:8]}", "type": TEST_EVENT, "value": "v", "tag": tag, **extra}


def _user_paid(tag: str, **extra) -> dict:
    return {
        "event_id": f"{tag}-{uuid.uuid4().hex[:8]}",
        "type": "user.paid",
        "occurred_at": "2026-11-27T10:15:02+08:00",
        "app_id": "com.kuaipao.app",
        "amount_fen": 990,
        "tag": tag,
        **extra,
    }


def _raw(tag: str, inner: bytes) -> bytes:
    return b'{"tag":"' + tag.encode() + b'","x":' + inner + b"}"


def _hostile(max_attempts: int) -> list[tuple]:
    """(tag, exchange, routing key, body, headers, the dead-letter reason must contain).
    Every tag holds an `x`, so no event id or other body contains it by chance."""
    deep = 10_000  # far past the parser's recursion limit, inside the size limit
    cases = [
        ("hx-deep-arrays", UC, TEST_EVENT, _raw("hx-deep-arrays", b"[" * deep + b"]" * deep), None, "levels deep"),
        ("hx-deep-objects", UC, TEST_EVENT, _raw("hx-deep-objects", b'{"a":' * deep + b"1" + b"}" * deep), None, "levels deep"),
        ("hx-huge-body", UC, TEST_EVENT, _raw("hx-huge-body", b'"' + b"a" * 300_000 + b'"'), None, "over the limit"),
        ("hx-bad-utf8", UC, TEST_EVENT, _raw("hx-bad-utf8", b'"\xff\xfe\xc3"'), None, "not valid UTF-8"),
        ("hx-surrogate", UC, TEST_EVENT, _raw("hx-surrogate", b'"\\ud800"'), None, "not valid Unicode"),
        ("hx-not-json", UC, TEST_EVENT, b"{hx-not-json", None, "not valid JSON"),
        ("hx-nan", UC, TEST_EVENT, _raw("hx-nan", b"NaN"), None, "NaN is not a JSON number"),
        ("hx-inf", UC, TEST_EVENT, _raw("hx-inf", b"1e400"), None, "number out of range"),
        ("hx-long-int", UC, TEST_EVENT, _raw("hx-long-int", b"9" * 5000), None, "integer out of range"),
        ("hx-paid-1e30", UC, "user.paid", json.dumps(_user_paid("hx-paid-1e30", amount_fen=10**30)).encode(), None, "integer out of range"),
        ("hx-pay-2e63", PAY, "payment.result", _raw("hx-pay-2e63", str(2**63).encode()), None, "integer out of range"),
        ("hx-paid-str", UC, "user.paid", json.dumps(_user_paid("hx-paid-str", amount_fen="990")).encode(), None, "is not of type 'integer'"),
        ("hx-paid-neg", UC, "user.paid", json.dumps(_user_paid("hx-paid-neg", amount_fen=-1)).encode(), None, "less than the minimum"),
        ("hx-missing", UC, "user.registered", json.dumps({"event_id": "1", "tag": "hx-missing"}).encode(), None, "is a required property"),
        ("hx-id-object", UC, TEST_EVENT, json.dumps(_echo("hx-id-object", event_id={"a": 1})).encode(), None, "is not of type 'string'"),
        ("hx-wrong-type", UC, TEST_EVENT, json.dumps(_echo("hx-wrong-type", value=123)).encode(), None, "is not of type 'string'"),
        ("hx-no-handler", UC, "nobody.handles.this", json.dumps(_echo("hx-no-handler")).encode(), None, "no handler for routing key"),
        ("hx-wrong-exchange", UC, "payment.result", json.dumps({"tag": "hx-wrong-exchange"}).encode(), None, "belongs on exchange 'payment'"),
        ("hx-list", UC, TEST_EVENT, b'["hx-list"]', None, "not a JSON object (a JSON list)"),
        ("hx-string", UC, TEST_EVENT, b'"hx-string"', None, "not a JSON object (a JSON str)"),
        ("hx-system-exit", UC, TEST_EVENT, json.dumps(_echo("hx-system-exit", **{"raise": "system_exit"})).encode(), None, "SystemExit"),
        ("hx-recursion", UC, TEST_EVENT, json.dumps(_echo("hx-recursion", **{"raise": "recursion"})).encode(), None, "RecursionError"),
        ("hx-base-exc", UC, TEST_EVENT, json.dumps(_echo("hx-base-exc", **{"raise": "base_exception"})).encode(), None, "UnexpectedFailure"),
        # Forged retry headers on a first delivery count for nothing: a failing event
        # still gets exactly EVENTS_MAX_ATTEMPTS attempts, no fewer and no more.
        ("hx-forged-many", UC, TEST_EVENT, json.dumps(_echo("hx-forged-many", fail=True)).encode(), {ATTEMPTS_HEADER: 999}, f"after {max_attempts} attempt(s)"),
        ("hx-forged-neg", UC, TEST_EVENT, json.dumps(_echo("hx-forged-neg", fail=True)).encode(), {ATTEMPTS_HEADER: -10**9, SOURCE_HEADER: "payment"}, f"after {max_attempts} attempt(s)"),
        ("hx-forged-junk", UC, TEST_EVENT, json.dumps(_echo("hx-forged-junk", fail=True)).encode(), {ATTEMPTS_HEADER: "junk"}, f"after {max_attempts} attempt(s)"),
    ]  # fmt: skip
    return cases


def test_hostile_messages_are_dead_lettered_with_reasons_and_valid_events_each_apply_once(events, echo, settings):
    hostile = _hostile(settings.EVENTS_MAX_ATTEMPTS)
    valid = [_echo("valid") for _ in range(10)]
    events.publish(UC, TEST_EVENT, valid[0])
    for _tag, exchange, routing_key, body, headers, _ in hostile:
        events.publish(exchange, routing_key, body, headers=headers)
    for event in valid[1:]:
        events.publish(UC, TEST_EVENT, event)
    bodies = [b"null", b"4242"]
    for body in bodies:
        events.publish(UC, TEST_EVENT, body)

    events.wait_for(lambda: all(applied(e["event_id"]) for e in valid), timeout=30)
    events.wait_for(lambda: DeadLetter.objects.count() >= len(hostile) + len(bodies), timeout=60)
    assert [applied(e["event_id"]) for e in valid] == [1] * len(valid)
    assert ProcessedEvent.objects.filter(event_id__in=[e["event_id"] for e in valid]).count() == len(valid)

    assert DeadLetter.objects.count() == len(hostile) + len(bodies)
    for tag, _, routing_key, _, _, reason in hostile:
        letters = list(DeadLetter.objects.filter(body__contains=tag))
        assert len(letters) == 1, tag
        assert reason in letters[0].reason, (tag, letters[0].reason)
        assert letters[0].routing_key == routing_key, tag
    for body in bodies:
        letter = DeadLetter.objects.get(body=body.decode())
        assert "not a JSON object" in letter.reason
    assert not ProcessedEvent.objects.filter(event_id__contains="hx-").exists()
    assert not any(applied(f"hx-{kind}") for kind in ("system-exit", "recursion", "base-exc"))

    queued = events.dead_letters()
    assert len(queued) == len(hostile) + len(bodies)
    assert sorted(r for r, _, _ in queued) == sorted(DeadLetter.objects.values_list("reason", flat=True))
    # the consumer survived it all, in its first loop
    assert events.supervisor.restarts == 0 and events.consumer.handled >= len(valid) + len(hostile)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 17 + b"]" * 17, "17 levels deep"),
        (b'{"s": "' + b"[" * 1000 + b'"}', None),  # brackets inside strings are not nesting
        (b'{"a": ' + b"1" * 20 + b"}", "integer out of range"),
        (b'{"a": -9223372036854775807}', None),
        (b'{"a": 9223372036854775808}', "integer out of range"),
        (b'{"a": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"a": 1e309}', "number out of range"),
        (b'{"\\udfff": 1}', "not valid Unicode"),
        (b"", "not valid JSON"),
        (b"x" * 70_000, "over the limit of 65536"),
    ],
)
def test_event_bodies_are_bounded_before_parsing(body, reason):
    if reason is None:
        assert isinstance(decode_event(body, max_bytes=65536, max_depth=16), dict)
    else:
        with pytest.raises(BadEvent, match=reason):
            decode_event(body, max_bytes=65536, max_depth=16)


@pytest.mark.parametrize("routing_key", ["user.paid", "payment.result"])
def test_contract_bounds_amount_by_the_column_that_stores_it(routing_key):
    _, schema = CONTRACTS[routing_key]
    validator = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)

    def amount_errors(amount: int) -> list[str]:
        return [e.message for e in validator.iter_errors({"amount_fen": amount}) if list(e.path) == ["amount_fen"]]

    assert any("maximum" in message for message in amount_errors(2**63))
    assert amount_errors(2**63 - 1) == []
