"""A hot pack's shards under row locks held by other transactions (claims
committing, a stock change folding them): a claim that finds the shards with
stock held waits for them instead of answering sold out."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from coupons.errors import CouponError
from coupons.models import Claim, CouponPack, CouponStockShard
from coupons.services import coupon_pack_claim
from tests.coupons.factories import coupon_pack_make

pytestmark = pytest.mark.django_db(transaction=True)


def _skip_unless_row_locks() -> None:
    if connection.vendor != "mysql":
        pytest.skip("InnoDB row locks; SQLite serialises writers instead")


class _ShardHolder:
    """Another transaction (its own thread and connection) holding the row locks
    of some shards until released, as claims committing on them do."""

    def __init__(self, pack_id: int, slots: list[int]) -> None:
        self.locked, self.release = threading.Event(), threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=1)
        self.future = self.pool.submit(self._hold, pack_id, slots)
        assert self.locked.wait(timeout=30), "the holder could not lock the shards"

    def _hold(self, pack_id: int, slots: list[int]) -> None:
        try:
            with transaction.atomic():
                rows = CouponStockShard.objects.select_for_update().filter(pack_id=pack_id, slot__in=slots)
                assert len(list(rows)) == len(slots)
                self.locked.set()
                self.release.wait(timeout=60)
        finally:
            connection.close()

    def done(self) -> None:
        self.release.set()
        self.future.result(timeout=60)
        self.pool.shutdown()


def test_a_claim_waits_for_a_held_shard_when_no_free_one_has_stock():
    """One shard is empty and the three with stock are held by another
    transaction: the claim waits for a held shard and takes its unit once that
    transaction ends (never sold out while stock is left, never more than it)."""
    _skip_unless_row_locks()
    pack = coupon_pack_make(total_stock=3, stock_shards=4)  # slots 0-2 hold 1 each, slot 3 is empty
    assert dict(CouponStockShard.objects.filter(pack=pack).values_list("slot", "remaining")) == {
        0: 1,
        1: 1,
        2: 1,
        3: 0,
    }
    holder = _ShardHolder(pack.pk, [0, 1, 2])
    with ThreadPoolExecutor(max_workers=1) as pool:

        def claim() -> int:
            try:
                return coupon_pack_claim(component_id=pack.component_id, user_id="waiting").pk
            finally:
                connection.close()

        future = pool.submit(claim)
        time.sleep(1)
        assert not future.done(), "the claim did not wait for a held shard"
        holder.done()
        claim_id = future.result(timeout=30)
    assert Claim.objects.filter(pk=claim_id, pack=pack).exists()
    assert sum(CouponStockShard.objects.filter(pack=pack).values_list("remaining", flat=True)) == 2


def test_a_claim_takes_from_the_reservoir_when_every_shard_is_empty():
    """Stock left in the pack's own counter (the reservoir) while every shard is
    empty is claimed from there, to the last unit; then sold out, and a disabled
    pack refuses as disabled."""
    pack = coupon_pack_make(total_stock=4, stock_shards=4)
    # The state right after the shard count was raised: the stock in the reservoir.
    CouponStockShard.objects.filter(pack=pack).update(remaining=0)
    CouponPack.objects.filter(pk=pack.pk).update(remaining=2)
    coupon_pack_claim(component_id=pack.component_id, user_id="a")
    coupon_pack_claim(component_id=pack.component_id, user_id="b")
    assert CouponPack.objects.get(pk=pack.pk).remaining == 0
    with pytest.raises(CouponError) as refused:
        coupon_pack_claim(component_id=pack.component_id, user_id="c")
    assert refused.value.code == "sold_out"
    CouponPack.objects.filter(pk=pack.pk).update(remaining=1, enabled=False)
    with pytest.raises(CouponError) as refused:
        coupon_pack_claim(component_id=pack.component_id, user_id="d")
    assert refused.value.code == "pack_disabled"
    assert Claim.objects.filter(pack=pack).count() == 2
