from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from coupons.models import Coupon
from coupons.services import coupon_discount_compute, coupon_pack_claim, coupon_validity_compute
from tests.coupons.factories import CouponTemplateFactory, coupon_pack_make

pytestmark = pytest.mark.django_db

CLAIMED = datetime(2026, 12, 12, 10, 30, tzinfo=UTC)


def test_relative_validity_runs_n_days_from_the_claim():
    template = CouponTemplateFactory(validity_kind="relative", valid_days=7)
    assert coupon_validity_compute(template=template, claimed_at=CLAIMED) == (CLAIMED, CLAIMED + timedelta(days=7))


def test_absolute_validity_is_the_templates_dates_whenever_claimed():
    start, end = CLAIMED - timedelta(days=1), CLAIMED + timedelta(days=30)
    template = CouponTemplateFactory(validity_kind="absolute", valid_from=start, valid_until=end, valid_days=None)
    assert coupon_validity_compute(template=template, claimed_at=CLAIMED) == (start, end)


def test_validity_is_computed_at_claim_time_and_stored_on_each_coupon():
    now = timezone.now()
    start, end = now - timedelta(days=1), now + timedelta(days=10)
    relative = CouponTemplateFactory(validity_kind="relative", valid_days=3)
    absolute = CouponTemplateFactory(validity_kind="absolute", valid_from=start, valid_until=end, valid_days=None)
    pack = coupon_pack_make(templates=[(relative, 1), (absolute, 1)])
    claim = coupon_pack_claim(component_id=pack.component_id, user_id="1", now=now)
    by_template = {c.template_id: c for c in Coupon.objects.filter(claim=claim)}
    assert (by_template[relative.pk].valid_from, by_template[relative.pk].valid_until) == (now, now + timedelta(days=3))
    assert (by_template[absolute.pk].valid_from, by_template[absolute.pk].valid_until) == (start, end)
    # Changing the template later does not move coupons already issued.
    relative.valid_days = 30
    relative.save()
    assert Coupon.objects.get(pk=by_template[relative.pk].pk).valid_until == now + timedelta(days=3)


@pytest.mark.parametrize(
    ("fields", "amount", "off"),
    [
        ({"kind": "fixed", "value": 500, "min_spend_fen": 0}, 300, 300),  # never more than the order
        ({"kind": "fixed", "value": 500, "min_spend_fen": 0}, 10000, 500),
        ({"kind": "threshold", "value": 2000, "min_spend_fen": 10000}, 9999, 0),
        ({"kind": "threshold", "value": 2000, "min_spend_fen": 10000}, 10000, 2000),
        ({"kind": "percent", "value": 15, "min_spend_fen": 0}, 9999, 1499),
        ({"kind": "percent", "value": 15, "min_spend_fen": 0, "max_discount_fen": 1000}, 20000, 1000),
    ],
)
def test_discount_computation(fields, amount, off):
    template = CouponTemplateFactory(**fields)
    assert coupon_discount_compute(template=template, order_amount_fen=amount) == off


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "percent", "value": 100, "min_spend_fen": 0},
        {"kind": "fixed", "value": 0, "min_spend_fen": 0},
        {"kind": "threshold", "value": 2000, "min_spend_fen": 1000},
        {"validity_kind": "relative", "valid_days": None},
        {"validity_kind": "absolute", "valid_from": CLAIMED, "valid_until": CLAIMED, "valid_days": None},
    ],
)
def test_the_database_refuses_nonsense_templates(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        CouponTemplateFactory(**fields)
