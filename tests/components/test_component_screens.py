"""One component, one screen: a component's settings page holds what the component
needs (a coupon pack with its coupons, a product), created and edited together,
money in yuan; deleting one that users hold something of is refused in words;
new components go where the operator puts them."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from activities import services
from components.models import Component
from core.services import ANALYST_GROUP, OPERATOR_GROUP, groups_sync, staff_user_ensure
from coupons.models import Claim, CouponPack, CouponTemplate
from payments.models import Order, Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def op(client):
    groups_sync()
    user = staff_user_ensure(username="operator", password="operator-demo-2026", group=OPERATOR_GROUP)
    client.force_login(user)
    return user


@pytest.fixture
def activity(op):
    activity = services.activity_create(actor=op, name="Spring", slug="spring")
    services.component_create(activity=activity, actor=op, type="rich_text", config={"html": "<p>hi</p>"})
    return activity


def _add_url(activity, type_key):
    return reverse("admin:components_component_add") + f"?activity={activity.pk}&type={type_key}"


def _rows(rows, initial=0):
    data = {
        "coupons-TOTAL_FORMS": str(len(rows)),
        "coupons-INITIAL_FORMS": str(initial),
        "coupons-MIN_NUM_FORMS": "0",
        "coupons-MAX_NUM_FORMS": "20",
    }
    for i, row in enumerate(rows):
        data.update({f"coupons-{i}-{k}": v for k, v in row.items()})
    return data


COUPON_ROW = {
    "name": "20 off 100",
    "kind": "threshold",
    "value": "20.00",
    "min_spend": "100.00",
    "validity_kind": "relative",
    "valid_days": "7",
    "quantity": "1",
}


def _pack_post(**overrides):
    data = {
        "title": "Coupons",
        "enabled": "on",
        "cfg_button_text": "领取",
        "cfg_show_remaining": "on",
        "cfg_note": "",
        "insert_at": "end",
        "pack_name": "Spring pack",
        "pack_total_stock": "500",
        "pack_per_user_limit": "2",
        "pack_enabled": "on",
        **_rows([COUPON_ROW, {"kind": "fixed", "validity_kind": "relative", "quantity": "1"}]),
    }
    data.update(overrides)
    return data


def test_a_coupon_pack_and_its_coupons_are_created_with_the_component_in_yuan(op, client, activity):
    page = client.get(_add_url(activity, "coupon_pack")).content.decode()
    assert 'name="pack_total_stock"' in page and 'name="coupons-0-value"' in page
    assert '<input type="text" name="component"' not in page  # no raw component id anywhere
    response = client.post(_add_url(activity, "coupon_pack"), _pack_post())
    assert response.status_code == 302, response.context["adminform"].form.errors
    component = Component.objects.get(type="coupon_pack")
    pack = CouponPack.objects.get(component=component)
    assert (pack.name, pack.total_stock, pack.remaining, pack.per_user_limit) == ("Spring pack", 500, 500, 2)
    template = pack.items.get().template
    assert (template.kind, template.value, template.min_spend_fen, template.valid_days) == ("threshold", 2000, 10000, 7)

    edit_url = reverse("admin:components_component_change", args=[component.pk])
    edit = client.get(edit_url).content.decode()
    assert 'value="20.00"' in edit and 'value="100.00"' in edit and 'value="500"' in edit
    row = {**COUPON_ROW, "template_id": str(template.pk), "value": "30.00"}
    data = {k: v for k, v in _pack_post(pack_total_stock="800").items() if not k.startswith("coupons-")}
    data.update(_rows([row], initial=1))
    data.pop("insert_at")
    response = client.post(edit_url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    pack.refresh_from_db()
    assert (pack.total_stock, pack.remaining) == (800, 800)
    assert pack.items.get().template.value == 3000


def test_a_threshold_below_its_amount_off_is_a_field_message_and_nothing_is_written(op, client, activity):
    bad = {**COUPON_ROW, "value": "50.00", "min_spend": "30.00"}
    data = {k: v for k, v in _pack_post().items() if not k.startswith("coupons-")}
    response = client.post(_add_url(activity, "coupon_pack"), {**data, **_rows([bad])})
    assert response.status_code == 200
    row = response.context["adminform"].form.editors[0].formset.forms[0]
    assert "minimum spend must be above the amount off" in str(row.errors["min_spend"])
    assert "constraint" not in response.content.decode()
    assert not Component.objects.filter(type="coupon_pack").exists()
    assert not CouponTemplate.objects.exists()


def test_a_pack_without_coupons_is_refused_in_words(op, client, activity):
    data = {k: v for k, v in _pack_post().items() if not k.startswith("coupons-")}
    data.update(_rows([{"kind": "fixed", "validity_kind": "relative", "quantity": "1"}]))
    response = client.post(_add_url(activity, "coupon_pack"), data)
    assert response.status_code == 200
    assert "at least one coupon" in response.content.decode()


def test_a_paid_sale_takes_its_price_in_yuan(op, client, activity):
    data = {
        "title": "VIP",
        "enabled": "on",
        "cfg_button_text": "买",
        "cfg_show_stock": "on",
        "insert_at": "end",
        "product_name": "VIP month",
        "product_price_yuan": "19.90",
        "product_stock": "100",
        "product_per_user_limit": "1",
        "product_entitlement_kind": "membership",
        "product_entitlement_days": "30",
        "product_entitlement_quantity": "1",
    }
    refused = client.post(_add_url(activity, "paid_sale"), {**data, "product_price_yuan": "19.999"})
    assert "two decimals" in refused.content.decode()
    no_days = client.post(_add_url(activity, "paid_sale"), {**data, "product_entitlement_days": ""})
    assert "needs its number of days" in no_days.content.decode()
    response = client.post(_add_url(activity, "paid_sale"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    product = Product.objects.get()
    assert (product.price_fen, product.stock, product.entitlement_days) == (1990, 100, 30)
    edit_url = reverse("admin:components_component_change", args=[product.component_id])
    assert 'value="19.90"' in client.get(edit_url).content.decode()
    data.pop("insert_at")
    assert client.post(edit_url, {**data, "product_price_yuan": "9.50"}).status_code == 302
    product.refresh_from_db()
    assert product.price_fen == 950


def test_new_components_are_inserted_where_the_operator_wants(op, client, activity):
    first = activity.components.get()
    data = {"title": "Top", "enabled": "on", "cfg_image": "https://img.example.com/a.png", "insert_at": "top"}
    assert client.post(_add_url(activity, "banner"), data).status_code == 302
    data = {"title": "Middle", "enabled": "on", "cfg_label": "x", "cfg_ended_text": "y", "insert_at": str(first.pk)}
    assert client.post(_add_url(activity, "countdown"), data).status_code == 302
    titles = list(activity.components.order_by("position").values_list("title", flat=True))
    assert titles == ["Top", "", "Middle"]


def _pack_component(op, activity, client):
    assert client.post(_add_url(activity, "coupon_pack"), _pack_post()).status_code == 302
    return Component.objects.get(type="coupon_pack")


def test_a_claimed_pack_cannot_be_deleted_and_the_operator_is_told_to_disable_it(op, client, activity):
    component = _pack_component(op, activity, client)
    pack = CouponPack.objects.get(component=component)
    Claim.objects.create(pack=pack, user_id="u1", sequence=1, claimed_at=timezone.now())
    delete_url = reverse("admin:components_component_delete", args=[component.pk])
    response = client.post(delete_url, {"post": "yes"}, follow=True)
    text = response.content.decode()
    assert "Disable it instead" in text and "protected" not in text
    assert Component.objects.filter(pk=component.pk).exists()

    # the same from the activity page's checkbox
    change = reverse("admin:activities_activity_change", args=[activity.pk])
    page = client.get(change)
    formset = page.context["inline_admin_formsets"][0].formset
    data = {k: v for k, v in formset.management_form.initial.items()}
    post = {
        "name": activity.name,
        "slug": activity.slug,
        "description": "",
        "theme_background_color": activity.theme_background_color,
        **{f"components-{k}": v for k, v in data.items()},
    }
    for i, c in enumerate(activity.components.order_by("position")):
        post.update({f"components-{i}-id": c.pk, f"components-{i}-position": i + 1, f"components-{i}-title": c.title})
        post[f"components-{i}-enabled"] = "on"
        if c.pk == component.pk:
            post[f"components-{i}-DELETE"] = "on"
    response = client.post(change, post)
    text = response.content.decode()
    assert response.status_code == 200 and "Disable it instead" in text
    assert "would require deleting" not in text
    assert Component.objects.filter(pk=component.pk).exists()


def test_a_sale_with_orders_is_refused_in_words_one_without_goes_with_its_product(op, client, activity):
    def make_sale(title):
        component = services.component_create(activity=activity, actor=op, type="paid_sale", title=title)
        return Product.objects.create(
            component=component, name=title, price_fen=100, stock=5, entitlement_kind="credits"
        )

    sold = make_sale("Sold")
    Order.objects.create(
        order_no="O1",
        product=sold,
        user_id="u",
        idempotency_key="k",
        amount_fen=100,
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    unsold = make_sale("Unsold")
    refused = client.post(
        reverse("admin:components_component_delete", args=[sold.component_id]), {"post": "yes"}, follow=True
    )
    assert "Disable it instead" in refused.content.decode()
    assert Product.objects.filter(pk=sold.pk).exists()
    confirm = client.get(reverse("admin:components_component_delete", args=[unsold.component_id])).content.decode()
    assert "protected" not in confirm
    gone = client.post(reverse("admin:components_component_delete", args=[unsold.component_id]), {"post": "yes"})
    assert gone.status_code == 302
    assert not Product.objects.filter(pk=unsold.pk).exists()
    assert not Component.objects.filter(pk=unsold.component_id).exists()


def test_a_listing_component_links_to_its_uploads_listings_and_cities(op, client, activity):
    component = services.component_create(activity=activity, actor=op, type="listing", title="Homes")
    page = client.get(reverse("admin:components_component_change", args=[component.pk])).content.decode()
    assert f"/admin/listings/importjob/upload/?component={component.pk}" in page
    assert f"/admin/listings/listing/?component__id__exact={component.pk}" in page
    assert f"/admin/listings/listinggroup/?component__id__exact={component.pk}" in page
    assert client.get(f"/admin/listings/listinggroup/?component__id__exact={component.pk}").status_code == 200


def test_the_analyst_sees_the_component_screen_without_writing_controls(client, op, activity):
    component = _pack_component(op, activity, client)
    analyst = staff_user_ensure(username="analyst", password="analyst-demo-2026", group=ANALYST_GROUP)
    client.force_login(analyst)
    page = client.get(reverse("admin:components_component_change", args=[component.pk])).content.decode()
    assert "Spring pack" in page and "20 off 100" in page
    form = page.split('id="content"')[1]
    controls = re.findall(r"<(?:input|select|textarea|button)\b[^>]*>", form)
    writing = [c for c in controls if 'type="hidden"' not in c and "search" not in c]
    assert writing == [], writing
