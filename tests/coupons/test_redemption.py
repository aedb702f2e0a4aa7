"""The order system's service-to-service API."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from coupons.models import Coupon, CouponStatus
from coupons.services import coupon_pack_claim, coupon_release
from tests.coupons.factories import CouponTemplateFactory, coupon_pack_make

pytestmark = pytest.mark.django_db

TOKEN = "svc-token-for-tests"


@pytest.fixture
def service():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Service {TOKEN}")
    with override_settings(SERVICE_TOKEN=TOKEN):
        yield client


@pytest.fixture
def coupon(pack) -> Coupon:
    claim = coupon_pack_claim(component_id=pack.component_id, user_id="10086")
    return claim.coupons.get(template__kind="fixed")


def redeem(client, coupon, order_id="O-1", user_id="10086", **extra):
    return client.post(
        "/api/v1/service/coupons/redeem",
        {"code": coupon.code, "order_id": order_id, "user_id": user_id, **extra},
        format="json",
    )


def test_redeem_marks_the_coupon_used_by_the_order(service, coupon):
    response = redeem(service, coupon, order_amount_fen=3000)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["changed"] is True and body["discount_fen"] == 500
    assert body["coupon"]["status"] == "used" and body["coupon"]["order_id"] == "O-1"
    coupon.refresh_from_db()
    assert coupon.status == CouponStatus.USED and coupon.order_id == "O-1" and coupon.used_at is not None


def test_repeat_for_the_same_order_succeeds_without_change_and_another_order_is_refused(service, coupon):
    redeem(service, coupon)
    used_at = Coupon.objects.get(pk=coupon.pk).used_at
    again = redeem(service, coupon)
    assert again.status_code == 200 and again.json()["changed"] is False
    other = redeem(service, coupon, order_id="O-2")
    assert other.status_code == 409 and other.json()["error"]["code"] == "coupon_used"
    coupon.refresh_from_db()
    assert coupon.order_id == "O-1" and coupon.used_at == used_at


def test_foreign_coupon_is_refused(service, coupon):
    response = redeem(service, coupon, user_id="intruder")
    assert response.status_code == 403 and response.json()["error"]["code"] == "coupon_not_owned"
    assert Coupon.objects.get(pk=coupon.pk).status == CouponStatus.UNUSED


def test_expired_coupon_is_refused_before_and_after_the_expiry_job(service, pack):
    claim = coupon_pack_claim(component_id=pack.component_id, user_id="10086", now=timezone.now() - timedelta(days=8))
    lapsed = claim.coupons.get(template__kind="fixed")
    response = redeem(service, lapsed)
    assert response.status_code == 409 and response.json()["error"]["code"] == "coupon_expired"
    Coupon.objects.filter(pk=lapsed.pk).update(status="expired")
    assert redeem(service, lapsed).json()["error"]["code"] == "coupon_expired"
    assert Coupon.objects.get(pk=lapsed.pk).order_id == ""


def test_coupon_not_yet_valid_is_refused(service):
    now = timezone.now()
    template = CouponTemplateFactory(
        kind="fixed",
        min_spend_fen=0,
        validity_kind="absolute",
        valid_from=now + timedelta(days=1),
        valid_until=now + timedelta(days=5),
        valid_days=None,
    )
    pack = coupon_pack_make(templates=[(template, 1)])
    coupon = coupon_pack_claim(component_id=pack.component_id, user_id="10086").coupons.get()
    assert redeem(service, coupon).json()["error"]["code"] == "coupon_not_yet_valid"


def test_minimum_spend_is_checked_when_the_amount_is_given(service, pack):
    coupon = coupon_pack_claim(component_id=pack.component_id, user_id="10086").coupons.filter(
        template__kind="threshold"
    )[0]
    refused = redeem(service, coupon, order_amount_fen=9999)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "min_spend_not_met"
    assert redeem(service, coupon, order_amount_fen=10000).json()["discount_fen"] == 1000


def test_unknown_code_and_bad_input_are_4xx(service, coupon):
    missing = service.post(
        "/api/v1/service/coupons/redeem", {"code": "NOPE", "order_id": "O", "user_id": "1"}, format="json"
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "coupon_not_found"
    bad = service.post("/api/v1/service/coupons/redeem", {"code": coupon.code, "order_amount_fen": -1}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"
    garbage = service.post("/api/v1/service/coupons/redeem", "{not json", content_type="application/json")
    assert garbage.status_code == 400
    assert Coupon.objects.get(pk=coupon.pk).status == CouponStatus.UNUSED


def test_service_token_is_required(coupon, user_client):
    with override_settings(SERVICE_TOKEN=TOKEN):
        for client in (APIClient(), user_client("10086")):
            assert redeem(client, coupon).status_code in (401, 403)
        wrong = APIClient()
        wrong.credentials(HTTP_AUTHORIZATION="Service wrong")
        assert redeem(wrong, coupon).status_code == 403
    assert Coupon.objects.get(pk=coupon.pk).status == CouponStatus.UNUSED


def test_release_gives_the_coupon_back_for_that_order_only(service, coupon):
    redeem(service, coupon)
    payload = {"code": coupon.code, "user_id": "10086"}
    other = service.post("/api/v1/service/coupons/release", {**payload, "order_id": "O-2"}, format="json")
    assert other.status_code == 409 and other.json()["error"]["code"] == "coupon_used"
    released = service.post("/api/v1/service/coupons/release", {**payload, "order_id": "O-1"}, format="json")
    assert released.status_code == 200 and released.json()["changed"] is True
    assert released.json()["coupon"]["status"] == "unused"
    again = service.post("/api/v1/service/coupons/release", {**payload, "order_id": "O-1"}, format="json")
    assert again.status_code == 200 and again.json()["changed"] is False
    assert redeem(service, coupon, order_id="O-3").json()["changed"] is True


def test_release_after_the_validity_ended_gives_the_coupon_back_as_expired(service, coupon):
    redeem(service, coupon)
    released, changed = coupon_release(
        code=coupon.code, order_id="O-1", user_id="10086", now=coupon.valid_until + timedelta(seconds=1)
    )
    assert changed is True
    assert (released.status, released.order_id, released.used_at) == (CouponStatus.EXPIRED, "", None)
