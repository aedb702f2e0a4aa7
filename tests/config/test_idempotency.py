import threading

import pytest
from django.db import connection

from core.errors import ApiError
from core.idempotency import idempotent_call
from core.models import IdempotencyRecord

pytestmark = pytest.mark.django_db


def test_repeat_with_same_key_replays_first_answer_without_recomputing():
    calls = []

    def compute():
        calls.append(1)
        return 201, {"n": len(calls)}

    first = idempotent_call(scope="t", user_id="u1", key="k1", fingerprint="a", compute=compute)
    second = idempotent_call(scope="t", user_id="u1", key="k1", fingerprint="a", compute=compute)
    assert first == (201, {"n": 1}, False)
    assert second == (201, {"n": 1}, True)
    assert len(calls) == 1


def test_same_key_for_another_user_or_scope_is_independent():
    idempotent_call(scope="t", user_id="u1", key="k", fingerprint="a", compute=lambda: (201, {}))
    _, _, replayed_user = idempotent_call(scope="t", user_id="u2", key="k", fingerprint="a", compute=lambda: (201, {}))
    _, _, replayed_scope = idempotent_call(
        scope="t2", user_id="u1", key="k", fingerprint="a", compute=lambda: (201, {})
    )
    assert not replayed_user and not replayed_scope


def test_key_reused_for_a_different_request_is_refused():
    idempotent_call(scope="t", user_id="u1", key="k", fingerprint="component:1", compute=lambda: (201, {}))
    with pytest.raises(ApiError) as exc:
        idempotent_call(scope="t", user_id="u1", key="k", fingerprint="component:2", compute=lambda: (201, {}))
    assert exc.value.error_code == "idempotency_key_reused"


def test_business_error_is_stored_and_its_writes_rolled_back():
    from django.contrib.auth.models import Group

    def compute():
        Group.objects.create(name="should-vanish")
        raise ApiError("sold_out", "Sold out.", 409)

    status, body, _ = idempotent_call(scope="t", user_id="u", key="k", fingerprint="f", compute=compute)
    assert status == 409 and body["error"]["code"] == "sold_out"
    assert not Group.objects.filter(name="should-vanish").exists()
    assert idempotent_call(scope="t", user_id="u", key="k", fingerprint="f", compute=compute)[:2] == (409, body)


@pytest.mark.parametrize("key", [None, "", "   ", "x" * 129])
def test_missing_or_invalid_key_is_refused(key):
    with pytest.raises(ApiError):
        idempotent_call(scope="t", user_id="u", key=key, fingerprint="f", compute=lambda: (201, {}))


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_compute_once():
    calls = []
    lock = threading.Lock()
    results = []

    def compute():
        with lock:
            calls.append(1)
        return 201, {"ok": True}

    def worker():
        try:
            results.append(idempotent_call(scope="t", user_id="u", key="same", fingerprint="f", compute=compute))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(results) == 8 and all(r[:2] == (201, {"ok": True}) for r in results)
    assert IdempotencyRecord.objects.count() == 1


def test_a_refusal_of_the_check_is_the_keys_answer_and_compute_never_runs():
    from core.idempotency import idempotent_call_once

    calls = []

    def refuse():
        raise ApiError("sold_out", "Sold out.", 409)

    def compute():
        calls.append(1)
        return 201, {}

    status, body, replayed = idempotent_call_once(
        scope="t", user_id="u", key="k", fingerprint="f", compute=compute, check=refuse
    )
    assert (status, body["error"]["code"], replayed) == (409, "sold_out", False) and not calls
    # the stored refusal is replayed, even once the check passes (compute's work is thrown away)
    again = idempotent_call_once(scope="t", user_id="u", key="k", fingerprint="f", compute=compute, check=lambda: None)
    assert again == (409, body, True)


def test_a_check_refusal_for_a_key_already_answered_replays_the_answer():
    from core.idempotency import idempotent_call_once

    first = idempotent_call_once(scope="t", user_id="u", key="k", fingerprint="f", compute=lambda: (201, {"n": 1}))

    def refuse():
        raise ApiError("sold_out", "Sold out.", 409)

    assert idempotent_call_once(
        scope="t", user_id="u", key="k", fingerprint="f", compute=lambda: (201, {"n": 2}), check=refuse
    ) == (201, {"n": 1}, True)
    assert first == (201, {"n": 1}, False)
    assert IdempotencyRecord.objects.filter(scope="t", user_id="u", key="k").count() == 1
