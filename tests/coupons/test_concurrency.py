"""No over-issue, no double grant, under truly concurrent clients: threads, each
with its own database connection, released together by a barrier, claiming
through the real API (Idempotency-Key, services, the database's guarantees)."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.test import APIClient

from config.auth import user_token_mint
from coupons.models import Claim, Coupon, CouponPack
from coupons.selectors import coupon_pack_audit
from tests.coupons.factories import coupon_pack_make

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = 50


def _claim_all(pack: CouponPack, attempts: list[tuple[str, str]]) -> Counter:
    """Run the (user_id, idempotency key) attempts on WORKERS threads at once;
    returns a Counter of (status, error code). Fails unless requests overlapped."""
    barrier = threading.Barrier(WORKERS)
    lock = threading.Lock()
    in_flight = {"now": 0, "peak": 0}
    chunks = [attempts[i::WORKERS] for i in range(WORKERS)]
    tokens = {user_id: user_token_mint(user_id=user_id) for user_id, _ in attempts}

    def worker(chunk: list[tuple[str, str]]) -> list[tuple[int, str | None]]:
        client = APIClient()
        out = []
        try:
            barrier.wait(timeout=30)
            for user_id, key in chunk:
                with lock:
                    in_flight["now"] += 1
                    in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
                response = client.post(
                    f"/api/v1/components/{pack.component_id}/claim",
                    HTTP_AUTHORIZATION=f"Bearer {tokens[user_id]}",
                    HTTP_IDEMPOTENCY_KEY=key,
                )
                with lock:
                    in_flight["now"] -= 1
                body = response.json()
                out.append((response.status_code, body.get("error", {}).get("code")))
        finally:
            connection.close()
        return out

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = [r for chunk_result in pool.map(worker, chunks) for r in chunk_result]
    assert in_flight["peak"] >= WORKERS // 2, f"claims barely overlapped (peak {in_flight['peak']})"
    return Counter(results)


def _assert_counters_agree(pack: CouponPack, claims: int) -> None:
    pack.refresh_from_db()
    audit = coupon_pack_audit(pack_id=pack.pk)
    assert pack.total_stock - pack.remaining == claims == audit["page_claims"]
    assert audit["drift"] == 0
    assert audit["coupons"] == audit["coupons_expected"] == claims * 3
    assert Coupon.objects.values("code").distinct().count() == audit["coupons"]


def test_500_users_at_once_on_stock_100_get_exactly_100_packs():
    pack = coupon_pack_make(total_stock=100)
    outcome = _claim_all(pack, [(f"u{i}", f"k{i}") for i in range(500)])
    assert outcome == Counter({(201, None): 100, (409, "sold_out"): 400}), outcome
    _assert_counters_agree(pack, 100)
    assert Claim.objects.filter(pack=pack).values("user_id").distinct().count() == 100


def test_50_parallel_claims_by_one_user_with_limit_2_get_exactly_2():
    pack = coupon_pack_make(total_stock=100, per_user_limit=2)
    outcome = _claim_all(pack, [("10086", f"k{i}") for i in range(50)])
    assert outcome == Counter({(201, None): 2, (409, "limit_reached"): 48}), outcome
    _assert_counters_agree(pack, 2)
    assert sorted(Claim.objects.filter(pack=pack).values_list("sequence", flat=True)) == [1, 2]


def test_hot_pack_behind_the_redis_gate_never_over_issues():
    pack = coupon_pack_make(total_stock=30, redis_gate=True)
    outcome = _claim_all(pack, [(f"u{i}", f"k{i}") for i in range(200)])
    assert outcome == Counter({(201, None): 30, (409, "sold_out"): 170}), outcome
    _assert_counters_agree(pack, 30)


def test_one_key_repeated_in_parallel_issues_one_pack():
    pack = coupon_pack_make(total_stock=100, per_user_limit=5)
    outcome = _claim_all(pack, [("10086", "same-key")] * 50)
    assert outcome == Counter({(201, None): 50}), outcome
    _assert_counters_agree(pack, 1)
