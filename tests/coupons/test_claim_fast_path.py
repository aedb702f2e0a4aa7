"""The hot pack's claim without its read (coupons.services `_claim_fast`) and the
claim's lock-free refusals before its transaction (`coupon_pack_claim_check`).

A process remembers what the last full read of a pack found; the next claims of a
hot pack (sharded, one per user, no Redis gate) skip the read, their claim row going
in with an INSERT … SELECT that asks again everything the read decided on. Whatever
changed behind that memory's back must still refuse at once."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client import REGISTRY

from activities.models import Activity
from components.models import Component
from coupons.models import Claim, Coupon, CouponPack, CouponStockShard
from coupons.selectors import coupon_pack_audit
from coupons.services import coupon_pack_items_set
from tests.coupons.factories import CouponTemplateFactory, coupon_pack_make

pytestmark = pytest.mark.django_db


def _hot_pack(**fields):
    return coupon_pack_make(stock_shards=8, **fields)


def _statements(queries) -> list[str]:
    return [query["sql"] for query in queries.captured_queries]


def _is_read(sql: str) -> bool:
    return sql.startswith("SELECT p.id")


def test_a_hot_pack_claim_after_the_first_skips_the_read_and_issues_the_same_rows(claim):
    pack = _hot_pack(total_stock=50)
    assert claim(pack, user_id="first").status_code == 201
    with CaptureQueriesContext(connection) as queries:
        response = claim(pack, user_id="second")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["pack_id"] == pack.pk and body["pack_name"] == pack.name and body["sequence"] == 1
    assert len(body["coupons"]) == 3
    statements = _statements(queries)
    assert not any(_is_read(sql) for sql in statements)
    assert any(sql.startswith("INSERT INTO") and " SELECT p.id" in sql for sql in statements)
    claim_row = Claim.objects.get(pack=pack, user_id="second")
    assert body["claim_id"] == claim_row.pk and claim_row.source == "page" and claim_row.sequence == 1
    assert sorted(Coupon.objects.filter(claim=claim_row).values_list("code", flat=True)) == sorted(
        c["code"] for c in body["coupons"]
    )
    audit = coupon_pack_audit(pack_id=pack.pk)
    assert audit["page_claims"] == 2 and audit["taken"] == 2 and audit["drift"] == 0
    assert audit["coupons"] == audit["coupons_expected"] == 6


def _disable_component(pack):
    Component.objects.filter(pk=pack.component_id).update(enabled=False)


def _take_activity_offline(pack):
    Activity.objects.filter(components__pk=pack.component_id).update(status="offline")


def _disable_pack(pack):
    CouponPack.objects.filter(pk=pack.pk).update(enabled=False)


def _end_the_window(pack):
    CouponPack.objects.filter(pk=pack.pk).update(claim_ends_at=timezone.now() - timedelta(seconds=1))


def _empty_every_shard(pack):
    CouponStockShard.objects.filter(pack=pack).update(remaining=0)
    CouponPack.objects.filter(pk=pack.pk).update(remaining=0)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (_disable_component, "pack_disabled"),
        (_take_activity_offline, "activity_not_online"),
        (_disable_pack, "pack_disabled"),
        (_end_the_window, "ended"),
        (_empty_every_shard, "sold_out"),
    ],
)
def test_a_change_behind_the_remembered_read_refuses_at_once(claim, change, code):
    """Each change is made with a bare UPDATE (the pack's `updated_at` untouched), so
    only the fast path's own conditions can see it."""
    pack = _hot_pack(total_stock=50)
    assert claim(pack, user_id="first").status_code == 201
    change(pack)
    response = claim(pack, user_id="second")
    assert response.status_code == 409 and response.json()["error"]["code"] == code
    assert not Claim.objects.filter(user_id="second").exists()
    assert not Coupon.objects.filter(user_id="second").exists()


def test_a_pack_allowed_two_claims_per_user_leaves_the_fast_path(claim):
    pack = _hot_pack(total_stock=50)
    assert claim(pack, user_id="first").status_code == 201
    CouponPack.objects.filter(pk=pack.pk).update(per_user_limit=2)
    assert claim(pack, user_id="second").status_code == 201
    again = claim(pack, user_id="second")
    assert again.status_code == 201 and again.json()["sequence"] == 2
    assert claim(pack, user_id="second").json()["error"]["code"] == "limit_reached"


def test_items_changed_through_the_service_are_issued_by_the_next_claim(claim):
    pack = _hot_pack(total_stock=50)
    assert claim(pack, user_id="first").status_code == 201
    coupon_pack_items_set(pack=pack, items=[(CouponTemplateFactory(kind="fixed", value=300, min_spend_fen=0), 4)])
    body = claim(pack, user_id="second").json()
    assert [c["value"] for c in body["coupons"]] == [300, 300, 300, 300]


def test_a_second_claim_of_the_same_user_on_the_fast_path_is_the_limit(claim):
    pack = _hot_pack(total_stock=50)
    assert claim(pack, user_id="first").status_code == 201
    assert claim(pack, user_id="second").status_code == 201
    refused = claim(pack, user_id="second")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "limit_reached"
    assert Claim.objects.filter(user_id="second").count() == 1
    assert coupon_pack_audit(pack_id=pack.pk)["drift"] == 0


@pytest.mark.parametrize("shards", [1, 8])
def test_a_sold_out_refusal_is_one_read_before_any_transaction_and_its_answer(claim, shards):
    pack = coupon_pack_make(total_stock=1, stock_shards=shards)
    assert claim(pack, user_id="first").status_code == 201
    assert claim(pack, user_id="second").json()["error"]["code"] == "sold_out"  # the pack is known sold out
    sold_out = REGISTRY.get_sample_value("huodong_coupon_claims_total", {"result": "sold_out"}) or 0
    with CaptureQueriesContext(connection) as queries:
        response = claim(pack, user_id="third", key="k3")
    assert response.status_code == 409 and response.json()["error"]["code"] == "sold_out"
    statements = [sql for sql in _statements(queries) if "SAVEPOINT" not in sql]
    assert _is_read(statements[0])
    assert len(statements) == 2 and "idempotencyrecord" in statements[1]
    assert REGISTRY.get_sample_value("huodong_coupon_claims_total", {"result": "sold_out"}) == sold_out + 1
    # the refusal is the key's answer, replayed
    assert claim(pack, user_id="third", key="k3").json() == response.json()
