"""The coupon_pack component type on a real, published activity page."""

from datetime import timedelta

import pytest
from django.utils import timezone

from activities import services as activity_services
from components import registry
from coupons.models import Claim, Coupon, CouponPack, RedeemCode
from coupons.selectors import coupon_pack_live_state
from coupons.services import coupon_pack_claim, coupon_pack_create, coupon_packs_enable, redeem_codes_generate
from tests.coupons.factories import CouponTemplateFactory, coupon_pack_make
from tests.factories import ActivityFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(django_capture_on_commit_callbacks):
    """A published activity with a coupon_pack component and its pack."""
    activity = ActivityFactory(slug="double12", ends_at=timezone.now() + timedelta(days=3))
    component = activity_services.component_create(
        activity=activity, actor=None, type="coupon_pack", title="领券中心", config={"button_text": "抢券"}
    )
    pack = coupon_pack_create(
        component=component,
        name="双十二大礼包",
        total_stock=5,
        per_user_limit=1,
        items=[
            (CouponTemplateFactory(name="满100减10", kind="threshold", value=1000, min_spend_fen=10000), 1),
            (CouponTemplateFactory(name="全场85折", kind="percent", value=15, min_spend_fen=0), 1),
        ],
    )
    with django_capture_on_commit_callbacks(execute=True):
        activity_services.activity_publish(activity=activity, actor=None)
    return activity, component, pack


def _state(client, component):
    body = client.get("/api/v1/activities/double12").json()
    return next(c for c in body["components"] if c["id"] == component.pk)


def test_type_is_registered_with_a_strict_schema():
    ctype = registry.get("coupon_pack")
    assert ctype.template == "components/coupon_pack.html" and ctype.live_state is not None
    assert registry.config_validate("coupon_pack", {}) == {
        "button_text": "立即领取",
        "show_remaining": True,
        "note": "",
    }
    with pytest.raises(registry.ConfigInvalid):
        registry.config_validate("coupon_pack", {"stock": 5})


def test_activity_api_shows_the_pack_and_the_users_live_state(page, user_client, api_client):
    _activity, component, _pack = page
    public = _state(api_client, component)
    assert public["type"] == "coupon_pack"
    assert public["config"]["button_text"] == "抢券"
    assert public["config"]["pack"]["name"] == "双十二大礼包"
    assert [c["label"] for c in public["config"]["pack"]["coupons"]] == ["满100减10", "8.5折"]
    assert public["state"]["state"] == "can_claim" and public["state"]["remaining"] == 5
    coupon_pack_claim(component_id=component.pk, user_id="10086")
    mine = _state(user_client("10086"), component)["state"]
    assert mine["state"] == "claimed" and mine["remaining"] == 4 and mine["claimed_count"] == 1
    assert _state(user_client("other"), component)["state"]["state"] == "can_claim"


def test_live_state_covers_sold_out_not_started_ended_and_disabled():
    now = timezone.now()
    pack = coupon_pack_make(total_stock=1, per_user_limit=1)
    component = pack.component
    coupon_pack_claim(component_id=component.pk, user_id="a")
    assert coupon_pack_live_state(component=component, user=None)["state"] == "sold_out"
    CouponPack.objects.filter(pk=pack.pk).update(claim_starts_at=now + timedelta(hours=1))
    assert coupon_pack_live_state(component=component, user=None)["state"] == "not_started"
    CouponPack.objects.filter(pk=pack.pk).update(claim_starts_at=None, claim_ends_at=now - timedelta(hours=1))
    assert coupon_pack_live_state(component=component, user=None)["state"] == "ended"
    coupon_packs_enable(pack_ids=[pack.pk], enabled=False)
    state = coupon_pack_live_state(component=component, user=None)
    assert state["state"] == "disabled" and state["can_claim"] is False


def test_page_renders_the_pack_remaining_stock_and_claim_button(page, client):
    html = client.get("/a/double12/").content.decode()
    assert "双十二大礼包" in html and "满100减10" in html and "8.5折" in html
    assert "data-claim" in html and "data-remaining" in html and "抢券" in html
    assert f'data-component-id="{page[1].pk}" data-component-type="coupon_pack"' in html
    assert "huodong/components/coupon_pack.js" in html and "<script>" not in html  # CSP: no inline script


def test_clone_copies_pack_settings_but_no_claims_coupons_or_codes(page):
    activity, component, pack = page
    coupon_pack_claim(component_id=component.pk, user_id="a")
    redeem_codes_generate(pack=pack, count=2)
    copy = activity_services.activity_clone(source=activity, actor=None, is_template=True)
    copied_pack = CouponPack.objects.get(component__activity=copy)
    assert copied_pack.pk != pack.pk
    assert (copied_pack.name, copied_pack.total_stock, copied_pack.per_user_limit) == ("双十二大礼包", 5, 1)
    assert copied_pack.remaining == 5
    assert [(i.template_id, i.quantity) for i in copied_pack.items.all()] == [
        (i.template_id, i.quantity) for i in pack.items.all()
    ]
    assert not Claim.objects.filter(pack=copied_pack).exists()
    assert not Coupon.objects.filter(claim__pack=copied_pack).exists()
    assert not RedeemCode.objects.filter(pack=copied_pack).exists()
    pack.refresh_from_db()
    assert pack.remaining == 2


def test_deleting_the_component_keeps_the_pack_and_the_users_coupons(page):
    _activity, component, pack = page
    coupon_pack_claim(component_id=component.pk, user_id="a")
    activity_services.component_delete(component=component, actor=None)
    pack.refresh_from_db()
    assert pack.component_id is None
    assert Coupon.objects.filter(user_id="a").count() == 2
