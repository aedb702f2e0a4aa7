from datetime import timedelta

import pytest
from django.utils import timezone

from coupons.models import Coupon, CouponStatus
from coupons.services import coupon_pack_claim, coupon_redeem, coupons_expire
from coupons.tasks import coupons_expire_task
from tests.coupons.factories import coupon_pack_make

pytestmark = pytest.mark.django_db


def _wallet(user_client, user_id="10086", **params):
    return user_client(user_id).get("/api/v1/me/coupons", params)


def test_wallet_lists_the_users_coupons_in_the_contract_shape(pack, user_client):
    coupon_pack_claim(component_id=pack.component_id, user_id="10086")
    coupon_pack_claim(component_id=pack.component_id, user_id="someone-else")
    response = _wallet(user_client)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    coupon = body["results"][0]
    for key in ("code", "name", "kind", "value", "min_spend_fen", "status", "valid_from", "valid_until"):
        assert key in coupon
    assert {c["code"] for c in body["results"]} == set(
        Coupon.objects.filter(user_id="10086").values_list("code", flat=True)
    )


def test_wallet_filters_by_status_and_counts_lapsed_coupons_as_expired(user_client):
    pack = coupon_pack_make(per_user_limit=3)
    now = timezone.now()
    coupon_pack_claim(component_id=pack.component_id, user_id="10086", now=now - timedelta(days=30))  # lapsed
    fresh = coupon_pack_claim(component_id=pack.component_id, user_id="10086", now=now)
    used = fresh.coupons.filter(template__kind="fixed").get()
    coupon_redeem(code=used.code, order_id="O-1", user_id="10086")

    def statuses(status):
        results = _wallet(user_client, status=status).json()["results"]
        return sorted(c["status"] for c in results)

    assert statuses("unused") == ["unused", "unused"]
    assert statuses("used") == ["used"]
    assert statuses("expired") == ["expired"] * 3  # before the beat job ran
    coupons_expire()
    assert statuses("expired") == ["expired"] * 3
    assert len(_wallet(user_client).json()["results"]) == 6


def test_wallet_pages(user_client):
    pack = coupon_pack_make(per_user_limit=10)
    for _ in range(8):
        coupon_pack_claim(component_id=pack.component_id, user_id="10086")
    first = _wallet(user_client, status="unused").json()
    assert first["count"] == 24 and len(first["results"]) == 20 and first["next"]
    second = user_client("10086").get(first["next"]).json()
    assert len(second["results"]) == 4 and second["next"] is None


def test_unknown_status_is_a_400_and_anonymous_is_a_401(user_client, api_client):
    response = _wallet(user_client, status="lost")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_status"
    assert api_client.get("/api/v1/me/coupons").status_code == 401


def test_expiry_job_marks_only_unused_coupons_past_their_validity():
    pack = coupon_pack_make(per_user_limit=2)
    now = timezone.now()
    old = coupon_pack_claim(component_id=pack.component_id, user_id="1", now=now - timedelta(days=8))
    new = coupon_pack_claim(component_id=pack.component_id, user_id="1", now=now)
    used_old = old.coupons.filter(template__kind="fixed").get()
    Coupon.objects.filter(pk=used_old.pk).update(status="used", order_id="O-9", used_at=now - timedelta(days=7))
    assert coupons_expire_task.delay().get() == 2
    assert set(old.coupons.values_list("status", flat=True)) == {CouponStatus.EXPIRED, CouponStatus.USED}
    assert set(new.coupons.values_list("status", flat=True)) == {CouponStatus.UNUSED}
    assert coupons_expire() == 0


def test_times_carry_the_platform_offset(pack, user_client):
    coupon_pack_claim(component_id=pack.component_id, user_id="10086")
    coupon = _wallet(user_client).json()["results"][0]
    assert coupon["valid_from"].endswith("+08:00") and coupon["valid_until"].endswith("+08:00")
