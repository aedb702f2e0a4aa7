"""Offline redeem codes: generation takes stock, a user redeems a code once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import DomainError
from core.redis import get_redis
from coupons.models import Claim, RedeemCode
from coupons.selectors import coupon_pack_audit
from coupons.services import CODE_FAILURES_PER_HOUR, coupon_packs_enable, redeem_codes_generate
from tests.coupons.factories import coupon_pack_make

pytestmark = pytest.mark.django_db


def redeem(user_client, code, user_id="10086", key=None):
    return user_client(user_id).post(
        "/api/v1/me/coupons/redeem-code", {"code": code}, format="json", HTTP_IDEMPOTENCY_KEY=key or f"k-{code}"
    )


def test_generating_codes_takes_their_packs_from_the_stock(pack):
    codes = redeem_codes_generate(pack=pack, count=30, batch="flyers")
    assert len({c.code for c in codes}) == 30
    pack.refresh_from_db()
    assert pack.remaining == 70
    with pytest.raises(DomainError) as exc:
        redeem_codes_generate(pack=pack, count=71)
    assert exc.value.code == "insufficient_stock"
    pack.refresh_from_db()
    assert pack.remaining == 70 and RedeemCode.objects.count() == 30
    assert coupon_pack_audit(pack_id=pack.pk)["drift"] == 0


def test_a_user_redeems_a_code_into_the_wallet_once(pack, user_client):
    code = redeem_codes_generate(pack=pack, count=1)[0].code
    typed = f" {code[:4].lower()}-{code[4:]} "  # people type codes loosely
    response = redeem(user_client, typed)
    assert response.status_code == 201, response.json()
    assert response.json()["source"] == "code" and len(response.json()["coupons"]) == 3
    assert user_client("10086").get("/api/v1/me/coupons").json()["count"] == 3
    again = redeem(user_client, code, key="another-key")
    assert again.status_code == 409 and again.json()["error"]["code"] == "code_already_redeemed"
    stolen = redeem(user_client, code, user_id="someone-else")
    assert stolen.status_code == 409
    assert Claim.objects.filter(source="code").count() == 1
    assert RedeemCode.objects.get(code=code).redeemed_by == "10086"


def test_code_redemption_is_idempotent_per_key(pack, user_client):
    code = redeem_codes_generate(pack=pack, count=1)[0].code
    first = redeem(user_client, code, key="k")
    assert redeem(user_client, code, key="k").json() == first.json()
    assert Claim.objects.count() == 1


def test_code_claims_do_not_count_against_the_page_limit(pack, user_client, claim):
    code = redeem_codes_generate(pack=pack, count=1)[0].code
    assert redeem(user_client, code).status_code == 201
    assert claim(pack).status_code == 201
    audit = coupon_pack_audit(pack_id=pack.pk)
    assert audit == {**audit, "page_claims": 1, "code_claims": 1, "taken": 2, "drift": 0}


def test_expired_code_unknown_code_and_disabled_pack_are_refused(pack, user_client):
    expired = redeem_codes_generate(pack=pack, count=1, expires_at=timezone.now() - timedelta(minutes=1))[0]
    assert redeem(user_client, expired.code).json()["error"]["code"] == "code_expired"
    assert redeem(user_client, "NOSUCHCODE").status_code == 404
    live = redeem_codes_generate(pack=pack, count=1)[0]
    coupon_packs_enable(pack_ids=[pack.pk], enabled=False)
    assert redeem(user_client, live.code).json()["error"]["code"] == "pack_disabled"
    assert not Claim.objects.exists()
    assert not RedeemCode.objects.filter(redeemed_at__isnull=False).exists()


def test_guessing_codes_is_stopped_after_repeated_failures(user_client):
    pack = coupon_pack_make()
    code = redeem_codes_generate(pack=pack, count=1)[0].code
    for i in range(CODE_FAILURES_PER_HOUR):
        assert redeem(user_client, f"WRONG{i}").status_code == 404
    blocked = redeem(user_client, code)
    assert blocked.status_code == 429 and blocked.json()["error"]["code"] == "too_many_attempts"
    assert redeem(user_client, code, user_id="honest").status_code == 201
    assert 3590 < get_redis().ttl("coupons:code_failures:10086") <= 3600


def test_bad_body_is_a_400(user_client):
    response = user_client("1").post("/api/v1/me/coupons/redeem-code", {}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid"
