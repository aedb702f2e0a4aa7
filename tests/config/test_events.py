import json
import uuid

import pytest

from core.events import registry
from core.models import DeadLetter, ProcessedEvent
from tests.config.handlers import TEST_EVENT, applied, register_echo


@pytest.fixture
def echo():
    register_echo()
    yield
    registry.unregister(TEST_EVENT)


def _event(**extra) -> dict:
    return {"event_id": str(uuid.uuid4()), "type": TEST_EVENT, "value": "hello", **extra}


def test_event_published_twice_with_same_id_is_applied_once(events, echo):
    event = _event()
    events.publish("user_center", TEST_EVENT, event)
    events.publish("user_center", TEST_EVENT, event)
    follow_up = _event()
    events.publish("user_center", TEST_EVENT, follow_up)
    events.wait_for(lambda: applied(follow_up["event_id"]) == 1)
    events.wait_for(lambda: ProcessedEvent.objects.filter(event_id=event["event_id"]).count() == 1)
    assert applied(event["event_id"]) == 1


def test_malformed_message_is_dead_lettered_and_next_good_message_is_handled(events, echo):
    events.publish("user_center", TEST_EVENT, b"{not json")
    good = _event()
    events.publish("user_center", TEST_EVENT, good)
    events.wait_for(lambda: applied(good["event_id"]) == 1)
    events.wait_for(lambda: DeadLetter.objects.filter(body="{not json").count() == 1)
    dead = [letter for letter in events.dead_letters() if letter[1] == b"{not json"]
    assert len(dead) == 1
    reason, body, headers = dead[0]
    assert reason.startswith("not valid JSON")
    assert body == b"{not json"
    assert headers["x-huodong-routing-key"] == TEST_EVENT


def test_contract_violation_and_unhandled_type_are_dead_lettered_with_reasons(events, echo):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    events.publish("user_center", TEST_EVENT, {"event_id": ids[0], "type": TEST_EVENT})  # no value
    events.publish("user_center", "nobody.handles.this", _event(event_id=ids[1]))
    events.publish("user_center", "app.activated", {"event_id": ids[2], "type": "app.activated"})
    events.wait_for(lambda: DeadLetter.objects.filter(event_id__in=ids).count() == 3)
    reasons = sorted(reason for reason, body, _ in events.dead_letters() if json.loads(body).get("event_id") in ids)
    assert len(reasons) == 3
    assert any("breaks the contract" in r and "'value' is a required property" in r for r in reasons)
    assert any("no handler for routing key 'nobody.handles.this'" in r for r in reasons)
    assert not ProcessedEvent.objects.filter(event_id__in=ids).exists()


def test_failing_handler_is_retried_then_dead_lettered_without_blocking(events, echo, settings):
    failing = _event(fail=True)
    events.publish("user_center", TEST_EVENT, failing)
    good = _event()
    events.publish("user_center", TEST_EVENT, good)
    events.wait_for(lambda: applied(good["event_id"]) == 1)
    events.wait_for(lambda: DeadLetter.objects.filter(event_id=failing["event_id"]).exists(), timeout=30)
    letter = DeadLetter.objects.get(event_id=failing["event_id"])
    assert f"after {settings.EVENTS_MAX_ATTEMPTS} attempt(s)" in letter.reason
    assert "RuntimeError: asked to fail" in letter.reason
    # the failed attempts left nothing behind
    assert not ProcessedEvent.objects.filter(event_id=failing["event_id"]).exists()
    assert json.loads(letter.body)["event_id"] == failing["event_id"]


def test_registering_a_second_handler_for_a_type_is_refused(echo):
    with pytest.raises(registry.DuplicateHandler):
        registry.register(TEST_EVENT, lambda payload: None)


def test_contract_event_dates_must_carry_an_offset():
    from jsonschema import Draft202012Validator

    from core.events.consumer import _contract_errors
    from core.events.contracts import CONTRACTS
    from core.events.registry import FORMAT_CHECKER

    _, schema = CONTRACTS["app.activated"]
    validator = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
    base = {"event_id": "1", "type": "app.activated", "app_id": "com.kuaipao.app"}
    assert _contract_errors(validator, {**base, "occurred_at": "2026-11-27T10:15:02.123+08:00"}) == []
    assert _contract_errors(validator, {**base, "occurred_at": "2026-11-27T10:15:02"})
    assert _contract_errors(validator, {**base, "occurred_at": "yesterday"})


def test_overlong_user_id_breaks_the_contract():
    from jsonschema import Draft202012Validator

    from core.events.consumer import _contract_errors
    from core.events.contracts import CONTRACTS
    from core.events.registry import FORMAT_CHECKER

    _, schema = CONTRACTS["user.registered"]
    validator = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
    event = {
        "event_id": "1",
        "type": "user.registered",
        "app_id": "com.kuaipao.app",
        "occurred_at": "2026-11-27T10:15:02+08:00",
    }
    assert _contract_errors(validator, {**event, "user_id": "1" * 64}) == []
    assert any("user_id" in error for error in _contract_errors(validator, {**event, "user_id": "1" * 65}))
