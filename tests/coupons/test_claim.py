from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import IdempotencyRecord
from coupons import gate
from coupons.codes import ALPHABET, CODE_LENGTH
from coupons.models import Claim, Coupon, CouponPack
from coupons.selectors import coupon_pack_audit
from coupons.services import coupon_gate_reconcile, coupon_gates_reconcile, coupon_packs_enable
from tests.coupons.factories import coupon_pack_make
from tests.factories import ComponentFactory

pytestmark = pytest.mark.django_db


def test_claim_issues_every_coupon_of_the_pack_with_unique_random_codes(pack, claim):
    response = claim(pack)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["pack_id"] == pack.pk and body["sequence"] == 1 and body["source"] == "page"
    assert len(body["coupons"]) == 3
    codes = [c["code"] for c in body["coupons"]]
    assert len(set(codes)) == 3
    assert all(len(code) == CODE_LENGTH and set(code) <= set(ALPHABET) for code in codes)
    assert {c["status"] for c in body["coupons"]} == {"unused"}
    assert sorted(c["kind"] for c in body["coupons"]) == ["fixed", "threshold", "threshold"]
    assert Coupon.objects.filter(user_id="10086", claim__pack=pack).count() == 3
    pack.refresh_from_db()
    assert pack.remaining == 99


def test_repeat_with_the_same_idempotency_key_replays_and_issues_nothing(pack, claim):
    first = claim(pack, key="same-key")
    second = claim(pack, key="same-key")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert Claim.objects.count() == 1 and Coupon.objects.count() == 3
    pack.refresh_from_db()
    assert pack.remaining == 99


def test_a_refusal_is_replayed_too_and_changes_nothing(claim):
    pack = coupon_pack_make(total_stock=1)
    assert claim(pack, user_id="a").status_code == 201
    refused = claim(pack, user_id="b", key="k")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "sold_out"
    assert claim(pack, user_id="b", key="k").json() == refused.json()
    assert Claim.objects.count() == 1


def test_key_reused_for_another_component_is_refused(claim):
    pack_a, pack_b = coupon_pack_make(), coupon_pack_make()
    assert claim(pack_a, key="k").status_code == 201
    response = claim(pack_b, key="k")
    assert response.status_code == 422 and response.json()["error"]["code"] == "idempotency_key_reused"
    assert Claim.objects.filter(pack=pack_b).count() == 0


def test_missing_idempotency_key_is_a_400(pack, user_client):
    response = user_client("1").post(f"/api/v1/components/{pack.component_id}/claim")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "idempotency_key_required"
    assert not Claim.objects.exists()


def test_anonymous_claim_is_a_401(pack, api_client):
    response = api_client.post(f"/api/v1/components/{pack.component_id}/claim", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 401
    assert "error" in response.json()


def test_per_user_limit_counts_claims_and_refuses_beyond(claim):
    pack = coupon_pack_make(per_user_limit=2)
    assert [claim(pack).json()["sequence"] for _ in range(2)] == [1, 2]
    third = claim(pack)
    assert third.status_code == 409 and third.json()["error"]["code"] == "limit_reached"
    assert claim(pack, user_id="other").status_code == 201
    assert Claim.objects.filter(pack=pack, user_id="10086").count() == 2
    pack.refresh_from_db()
    assert pack.remaining == 97


def test_sold_out_pack_refuses_and_the_stock_never_goes_negative(claim):
    pack = coupon_pack_make(total_stock=2)
    assert [claim(pack, user_id=str(i)).status_code for i in range(4)] == [201, 201, 409, 409]
    pack.refresh_from_db()
    assert pack.remaining == 0
    audit = coupon_pack_audit(pack_id=pack.pk)
    assert audit["drift"] == 0 and audit["coupons"] == audit["coupons_expected"] == 6


@pytest.mark.parametrize(
    ("starts", "ends", "code"),
    [(timedelta(hours=1), timedelta(days=1), "not_started"), (-timedelta(days=2), -timedelta(days=1), "ended")],
)
def test_claims_outside_the_window_are_refused(claim, starts, ends, code):
    now = timezone.now()
    pack = coupon_pack_make(claim_starts_at=now + starts, claim_ends_at=now + ends)
    response = claim(pack)
    assert response.status_code == 409 and response.json()["error"]["code"] == code
    assert not Claim.objects.exists()


def test_disabled_pack_refuses_claims_at_once(pack, claim):
    assert claim(pack).status_code == 201
    coupon_packs_enable(pack_ids=[pack.pk], enabled=False)
    response = claim(pack, user_id="2")
    assert response.status_code == 409 and response.json()["error"]["code"] == "pack_disabled"
    coupon_packs_enable(pack_ids=[pack.pk], enabled=True)
    assert claim(pack, user_id="2").status_code == 201


def test_claims_on_an_activity_that_is_not_online_are_refused(claim):
    pack = coupon_pack_make(activity_status="offline")
    response = claim(pack)
    assert response.status_code == 409 and response.json()["error"]["code"] == "activity_not_online"


def test_unknown_component_and_component_of_another_type_are_404(claim, user_client):
    banner = ComponentFactory(type="banner")
    for component_id, code in ((banner.pk, "not_a_coupon_pack"), (999999, "component_not_found")):
        response = user_client("1").post(f"/api/v1/components/{component_id}/claim", HTTP_IDEMPOTENCY_KEY=code)
        assert response.status_code == 404 and response.json()["error"]["code"] == code
    assert not IdempotencyRecord.objects.filter(response_status=201).exists()


def test_a_component_id_beyond_any_database_id_is_a_404_not_a_500(user_client):
    response = user_client("1").post("/api/v1/components/99999999999999999999999/claim", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 404 and response.json()["error"]["code"] == "component_not_found"


def test_pack_without_coupons_is_refused(claim):
    pack = coupon_pack_make(templates=[])
    response = claim(pack)
    assert response.status_code == 409 and response.json()["error"]["code"] == "pack_empty"
    pack.refresh_from_db()
    assert pack.remaining == 100


def test_redis_gate_refuses_once_sold_out_and_reconciliation_repairs_drift(claim):
    pack = coupon_pack_make(total_stock=3, redis_gate=True)
    assert claim(pack, user_id="a").status_code == 201
    assert gate.gate_read(pack_id=pack.pk) == 2
    # Drift: the gate lost its tokens (e.g. a crash between Redis and the commit).
    gate.gate_set(pack_id=pack.pk, remaining=0)
    refused = claim(pack, user_id="b")
    assert refused.json()["error"]["code"] == "sold_out"
    assert CouponPack.objects.get(pk=pack.pk).remaining == 2
    assert coupon_gates_reconcile() == {pack.pk: -2}
    assert gate.gate_read(pack_id=pack.pk) == 2
    assert claim(pack, user_id="b").status_code == 201
    assert claim(pack, user_id="c").status_code == 201
    assert claim(pack, user_id="d").json()["error"]["code"] == "sold_out"
    assert gate.gate_read(pack_id=pack.pk) == 0
    assert coupon_pack_audit(pack_id=pack.pk)["page_claims"] == 3


def test_gate_gives_the_token_back_when_the_user_is_over_the_limit(claim):
    pack = coupon_pack_make(total_stock=5, redis_gate=True)
    claim(pack)
    gate.gate_set(pack_id=pack.pk, remaining=10)  # too high: the database still decides
    assert claim(pack).json()["error"]["code"] == "limit_reached"
    assert gate.gate_read(pack_id=pack.pk) == 10
    coupon_gate_reconcile(pack_id=pack.pk)
    assert gate.gate_read(pack_id=pack.pk) == 4


def test_gated_pack_claims_through_the_database_when_redis_is_unreachable(claim, settings):
    from core.redis import get_redis

    pack = coupon_pack_make(total_stock=2, redis_gate=True)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    get_redis.cache_clear()
    try:
        assert claim(pack, user_id="a").status_code == 201
        assert claim(pack, user_id="b").status_code == 201
        assert claim(pack, user_id="c").json()["error"]["code"] == "sold_out"
    finally:
        get_redis.cache_clear()
    assert CouponPack.objects.get(pk=pack.pk).remaining == 0
    assert Claim.objects.filter(pack=pack).count() == 2


def test_gate_is_closed_for_a_disabled_pack(claim):
    pack = coupon_pack_make(total_stock=5, redis_gate=True)
    coupon_packs_enable(pack_ids=[pack.pk], enabled=False)
    assert gate.gate_read(pack_id=pack.pk) == 0
    assert claim(pack).json()["error"]["code"] == "pack_disabled"


def test_beat_schedules_the_expiry_and_gate_reconciliation_tasks(claim):
    from config.celery import app
    from coupons.beat import SCHEDULE
    from coupons.tasks import coupon_gates_reconcile_task

    app.loader.import_default_modules()
    for entry in SCHEDULE.values():
        assert entry["task"] in app.tasks
    pack = coupon_pack_make(total_stock=4, redis_gate=True)
    gate.gate_set(pack_id=pack.pk, remaining=1)
    assert coupon_gates_reconcile_task.delay().get() == {str(pack.pk): -3}
    assert gate.gate_read(pack_id=pack.pk) == 4
