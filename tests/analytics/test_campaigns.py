"""Campaign rollups (views, visitors, claims, redemptions, orders, refunds), the
closed loop from tracking link to revenue, and cost per link."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from analytics import campaigns, services
from analytics.models import CampaignRollup, LinkCampaign, LinkCost, LinkOutcomeRollup
from attribution.models import Conversion
from core.errors import DomainError
from coupons.models import Claim
from coupons.services import coupon_pack_claim, coupon_redeem
from payments.models import Order
from tests.coupons.factories import coupon_pack_make
from tests.payments.factories import ProductFactory

pytestmark = pytest.mark.django_db

IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"


def _order(product, user_id: str, *, placed, paid=None, refunded=None, fen: int = 990) -> Order:
    state = "refunded" if refunded else "paid" if paid else "pending"
    order = Order.objects.create(
        order_no=uuid.uuid4().hex[:20],
        product=product,
        user_id=user_id,
        idempotency_key=uuid.uuid4().hex,
        amount_fen=fen,
        state=state,
        holds_stock=state != "refunded",
        expires_at=placed + timedelta(minutes=15),
        paid_at=paid,
        paid_amount_fen=fen if paid else None,
        refunded_at=refunded,
    )
    Order.objects.filter(pk=order.pk).update(created_at=placed)
    return order


@pytest.fixture
def hour():
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def test_page_and_api_views_are_counted_per_activity_with_unique_visitors(client, user_client, make_activity, publish):
    activity = make_activity()
    publish(activity)
    assert client.get(f"/a/{activity.slug}/").status_code == 200
    client.get(f"/a/{activity.slug}/")  # the same visitor (address + agent)
    assert user_client("42").get(f"/api/v1/activities/{activity.slug}").status_code == 200
    assert client.get("/a/no-such-activity/").status_code == 404  # not counted
    current = timezone.now().replace(minute=0, second=0, microsecond=0)
    campaigns.campaign_rollup_hour(start=current)
    row = CampaignRollup.objects.get(bucket_start=current, activity_id=activity.id, component_id=0)
    assert (row.page_views, row.unique_visitors) == (3, 2)


def test_campaign_rollup_matches_claims_redemptions_and_orders_of_the_hour(hour):
    pack = coupon_pack_make(total_stock=10, per_user_limit=2)
    component = pack.component
    inside, outside = hour + timedelta(minutes=20), hour - timedelta(minutes=5)
    coupon_pack_claim(component_id=component.id, user_id="u1", now=inside)
    coupon_pack_claim(component_id=component.id, user_id="u2", now=inside)
    coupon_pack_claim(component_id=component.id, user_id="u3", now=outside)
    coupon = Claim.objects.filter(user_id="u1").get().coupons.first()
    coupon_redeem(code=coupon.code, order_id="o-1", user_id="u1", order_amount_fen=20000, now=inside)
    product = ProductFactory()
    _order(product, "u1", placed=inside, paid=inside + timedelta(minutes=1), fen=990)
    _order(product, "u2", placed=inside, fen=990)  # unpaid
    _order(product, "u3", placed=outside, paid=outside, refunded=inside, fen=1990)
    call_command("analytics_rollup", "--from", hour.isoformat(), "--only", "campaigns")
    rows = {(r.activity_id, r.component_id): r for r in CampaignRollup.objects.filter(bucket_start=hour)}
    claims = rows[(component.activity_id, component.id)]
    assert (claims.claims, claims.redemptions) == (2, 1)
    sale = rows[(product.component.activity_id, product.component_id)]
    assert (sale.orders_placed, sale.orders_paid, sale.revenue_fen) == (2, 1, 990)
    assert (sale.refunds, sale.refund_fen) == (1, 1990)
    # against the raw rows
    end = hour + timedelta(hours=1)
    totals = CampaignRollup.objects.filter(bucket_start=hour).aggregate(c=Sum("claims"), p=Sum("orders_placed"))
    assert totals["c"] == Claim.objects.filter(claimed_at__gte=hour, claimed_at__lt=end).count()
    assert totals["p"] == Order.objects.filter(created_at__gte=hour, created_at__lt=end).count()
    # rebuilt: same rows
    before = sorted((r.activity_id, r.component_id, r.claims, r.orders_paid) for r in CampaignRollup.objects.all())
    campaigns.campaign_rollup_hour(start=hour)
    after = sorted((r.activity_id, r.component_id, r.claims, r.orders_paid) for r in CampaignRollup.objects.all())
    assert after == before


def test_claims_and_revenue_of_attributed_users_roll_up_to_the_link_within_its_window(
    traffic, make_link, hour, base_hour
):
    product = ProductFactory()
    activity = product.component.activity
    link = make_link("oceanengine", os="ios")
    other = make_link("tencent", os="android")
    LinkCampaign.objects.create(link=link, activity=activity, window_days=2)
    LinkCampaign.objects.create(link=other, activity=activity, window_days=2)
    clicked = base_hour - timedelta(days=1)
    traffic.click(link, clicked, idfa=IDFA)
    traffic.activate(clicked + timedelta(minutes=5), idfa=IDFA, user_id="buyer")
    assert Conversion.objects.get().link_id == link.id
    _order(product, "buyer", placed=hour + timedelta(minutes=1), paid=hour + timedelta(minutes=2), fen=4990)
    _order(product, "stranger", placed=hour, paid=hour + timedelta(minutes=3), fen=990)  # not attributed
    campaigns.campaign_rollup_hour(start=hour)
    (outcome,) = LinkOutcomeRollup.objects.filter(bucket_start=hour)
    assert (outcome.link_id, outcome.orders_paid, outcome.revenue_fen) == (link.id, 1, 4990)
    # outside the window: nothing rolls up to the link
    LinkCampaign.objects.filter(link=link).update(window_days=1)
    campaigns.campaign_rollup_hour(start=hour)
    assert not LinkOutcomeRollup.objects.filter(bucket_start=hour).exists()


def test_cost_csv_upload_is_all_or_nothing_and_names_the_bad_line(make_link):
    link = make_link("oceanengine", os="ios")
    good = f"link_token,day,cost_yuan\n{link.token},2026-11-30,1234.5\n{link.token},2026-12-01,80\n"
    assert campaigns.link_costs_import(data=("\ufeff" + good).encode()) == 2
    assert dict(LinkCost.objects.values_list("day__day", "cost_fen")) == {30: 123450, 1: 8000}
    bad = f"link_token,day,cost_yuan\n{link.token},2026-11-29,10\nnope,2026-11-29,10\n"
    with pytest.raises(DomainError, match="Line 3"):
        campaigns.link_costs_import(data=bad.encode())
    with pytest.raises(DomainError, match="Line 2"):
        campaigns.link_costs_import(data=f"link_token,day,cost_yuan\n{link.token},2026-11-29,-5\n".encode())
    assert LinkCost.objects.count() == 2  # nothing of the bad files


def test_tick_rolls_campaign_hours(hour):
    result = services.rollup_tick(now=hour + timedelta(hours=1, minutes=2))
    assert result["rolled"] >= 3  # a 5-minute bucket, the link hour, the campaign hour
    from analytics.models import RollupRun

    assert RollupRun.objects.filter(kind="campaigns", bucket_start=hour).exists()


def test_the_tick_re_rolls_campaign_hours_that_receive_late_claims_and_payments(hour):
    pack = coupon_pack_make(total_stock=10, per_user_limit=2)
    product = ProductFactory()
    now = hour + timedelta(hours=1, minutes=2)
    services.rollup_tick(now=now)  # first tick: cursors set, the hour rolled
    row = CampaignRollup.objects.filter(bucket_start=hour, component_id=pack.component.id).first()
    assert row is None or row.claims == 0
    # late: a claim stamped inside the rolled hour, and an order of that hour paid now
    # (the reconciliation found the payment; it records the service's payment time)
    coupon_pack_claim(component_id=pack.component.id, user_id="u1", now=hour + timedelta(minutes=30))
    order = _order(product, "u2", placed=hour + timedelta(minutes=10))
    from payments.models import OrderEvent

    Order.objects.filter(pk=order.pk).update(state="paid", paid_at=hour + timedelta(minutes=12), paid_amount_fen=990)
    OrderEvent.objects.create(order=order, from_state="pending", to_state="paid", cause="reconciled")

    result = services.rollup_tick(now=now + timedelta(minutes=1))

    assert result["re_rolled"] >= 1
    rows = {r.component_id: r for r in CampaignRollup.objects.filter(bucket_start=hour)}
    assert rows[pack.component.id].claims == 1
    paid = rows[product.component_id]
    assert (paid.orders_placed, paid.orders_paid, paid.revenue_fen) == (1, 1, 990)
    assert services.rollup_tick(now=now + timedelta(minutes=2))["re_rolled"] == 0
