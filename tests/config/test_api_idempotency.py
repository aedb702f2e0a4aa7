"""The API door's Idempotency-Key (core/api.py): one behaviour for every endpoint,
proven on a probe view that writes a row."""

import pytest
from django.contrib.auth.models import Group

from core.models import IdempotencyRecord

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.config.urls")]


def _post(client, n: int, key: str | None = "k-1"):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(f"/api/v1/test/idempotent/{n}", **headers)


def test_a_repeat_replays_the_first_answer_and_writes_nothing(user_client):
    client = user_client("u1")
    first = _post(client, 7)
    again = _post(client, 7)
    assert first.status_code == again.status_code == 201
    assert (
        first.json()
        == again.json()
        == {
            "group": first.json()["group"],
            "n": 7,
            "at": "2026-12-02T00:00:00Z",
            "price": 1.5,  # as the JSON renderer writes a Decimal
        }
    )
    assert "Idempotent-Replayed" not in first.headers and again.headers["Idempotent-Replayed"] == "true"
    assert Group.objects.filter(name__startswith="probe-7-").count() == 1


def test_the_key_belongs_to_its_user(user_client):
    _post(user_client("u1"), 7)
    other = _post(user_client("u2"), 7)
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers
    assert Group.objects.filter(name__startswith="probe-7-").count() == 2


@pytest.mark.parametrize(("key", "code"), [(None, "idempotency_key_required"), ("x" * 129, "idempotency_key_invalid")])
def test_a_missing_or_bad_key_is_a_400_that_changes_nothing(user_client, key, code):
    response = _post(user_client("u1"), 7, key=key)
    assert response.status_code == 400 and response.json()["error"]["code"] == code
    assert not Group.objects.exists() and not IdempotencyRecord.objects.exists()


def test_a_key_reused_for_another_request_is_a_422(user_client):
    client = user_client("u1")
    _post(client, 7)
    response = _post(client, 8)
    assert response.status_code == 422 and response.json()["error"]["code"] == "idempotency_key_reused"
    assert not Group.objects.filter(name__startswith="probe-8-").exists()


def test_a_domain_refusal_is_stored_replayed_and_its_writes_rolled_back(user_client):
    client = user_client("u1")
    first = _post(client, 0)
    again = _post(client, 0)
    assert first.status_code == again.status_code == 409
    assert first.json() == again.json() == {"error": {"code": "conflict", "message": "Zero is taken."}}
    assert again.headers["Idempotent-Replayed"] == "true"
    assert not Group.objects.exists()


def test_an_unauthenticated_request_is_refused_before_the_door(api_client):
    response = _post(api_client, 7)
    assert response.status_code in (401, 403)
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("door", ["idempotent_call", "idempotent_call_once"])
def test_a_unique_violation_inside_the_work_is_its_own_error_not_a_repeat(door):
    # Only the key's own row means "asked before": a constraint the work itself
    # breaks surfaces as that error (the service's to handle), never as a replay of
    # an answer that was never stored.
    from django.db import IntegrityError

    from core import idempotency

    def work():
        Group.objects.create(name="probe-dup")
        Group.objects.create(name="probe-dup")
        return 201, {}

    with pytest.raises(IntegrityError):
        getattr(idempotency, door)(scope="probe", user_id="u1", key="k-1", fingerprint="f", compute=work)
    assert not IdempotencyRecord.objects.filter(scope="probe").exists()
    assert not Group.objects.filter(name="probe-dup").exists()
