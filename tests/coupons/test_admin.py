"""Operators' screens: counts, claim search and export, disable, code generation."""

import io

import openpyxl
import pytest
from django.urls import reverse

from coupons.models import CouponPack, RedeemCode
from coupons.services import coupon_pack_claim, coupon_redeem
from tests.coupons.factories import CouponTemplateFactory, coupon_pack_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_pack():
    pack = coupon_pack_make(total_stock=10)
    for user_id in ("alice", "bob", "carol"):
        coupon_pack_claim(component_id=pack.component_id, user_id=user_id)
    coupon = pack.claims.get(user_id="alice").coupons.get(template__kind="fixed")
    coupon_redeem(code=coupon.code, order_id="O-1", user_id="alice")
    return pack


def test_pack_list_shows_claimed_remaining_and_redeemed_counts(operator_client, busy_pack):
    response = operator_client.get(reverse("admin:coupons_couponpack_changelist"))
    assert response.status_code == 200
    row = response.context["cl"].result_list.get(pk=busy_pack.pk)
    assert (row.claims_count, row.remaining, row.redeemed_count) == (3, 7, 1)


def test_claim_list_searches_by_user_and_coupon_code(operator_client, busy_pack):
    url = reverse("admin:coupons_claim_changelist")
    assert [c.user_id for c in operator_client.get(url, {"q": "bob"}).context["cl"].result_list] == ["bob"]
    code = busy_pack.claims.get(user_id="carol").coupons.first().code
    assert [c.user_id for c in operator_client.get(url, {"q": code}).context["cl"].result_list] == ["carol"]


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_claims_export_as_csv_and_xlsx(operator_client, busy_pack, file_format):
    from import_export.formats.base_formats import CSV, XLSX

    formats = {"csv": CSV, "xlsx": XLSX}
    url = reverse("admin:coupons_claim_export")
    page = operator_client.get(url)
    choices = dict(page.context["form"].fields["format"].choices)
    index = next(k for k, v in choices.items() if v.lower() == formats[file_format]().get_title().lower())
    resource_fields = [f for f in page.context["form"].fields if f.startswith("claimresource_")]
    response = operator_client.post(url, {"format": index, **{f: "on" for f in resource_fields}})
    assert response.status_code == 200
    if file_format == "csv":
        text = response.content.decode("utf-8-sig")
        assert "user_id" in text and "alice" in text and "bob" in text and "carol" in text
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
        values = [cell.value for row in sheet.iter_rows() for cell in row]
        assert {"alice", "bob", "carol"} <= set(values)


def test_disable_action_stops_claims(operator_client, busy_pack):
    response = operator_client.post(
        reverse("admin:coupons_couponpack_changelist"),
        {"action": "disable_packs", "_selected_action": [busy_pack.pk]},
    )
    assert response.status_code == 302
    assert CouponPack.objects.get(pk=busy_pack.pk).enabled is False


def test_generate_codes_takes_stock_and_lists_the_batch(operator_client, busy_pack):
    url = reverse("admin:coupons_couponpack_generate_codes", args=[busy_pack.pk])
    assert operator_client.get(url).status_code == 200
    response = operator_client.post(url, {"count": 5, "batch": "shop-flyers"})
    assert response.status_code == 302 and "shop-flyers" in response["Location"]
    assert RedeemCode.objects.filter(pack=busy_pack, batch="shop-flyers").count() == 5
    assert CouponPack.objects.get(pk=busy_pack.pk).remaining == 2
    too_many = operator_client.post(url, {"count": 3})
    assert too_many.status_code == 200 and "remain" in too_many.content.decode()
    assert RedeemCode.objects.count() == 5


def test_saving_a_pack_form_never_overwrites_the_live_stock(operator_client, busy_pack):
    url = reverse("admin:coupons_couponpack_change", args=[busy_pack.pk])
    form = operator_client.get(url).context["adminform"].form
    item = busy_pack.items.first()
    # A claim lands while the operator has the form open.
    coupon_pack_claim(component_id=busy_pack.component_id, user_id="dave")
    data = {
        "name": "renamed",
        "description": "",
        "component": busy_pack.component_id,
        "enabled": "on",
        "total_stock": 20,
        "per_user_limit": 1,
        "stock_shards": 1,
        "items-TOTAL_FORMS": 1,
        "items-INITIAL_FORMS": 1,
        "items-0-id": item.pk,
        "items-0-pack": busy_pack.pk,
        "items-0-template": item.template_id,
        "items-0-quantity": item.quantity,
    }
    assert form.initial["total_stock"] == 10
    response = operator_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    busy_pack.refresh_from_db()
    assert (busy_pack.name, busy_pack.total_stock, busy_pack.remaining) == ("renamed", 20, 16)


def test_lowering_the_stock_below_what_is_taken_is_refused_and_moves_nothing(operator_client, busy_pack):
    url = reverse("admin:coupons_couponpack_change", args=[busy_pack.pk])
    item = busy_pack.items.first()
    data = {
        "name": busy_pack.name,
        "description": "",
        "component": busy_pack.component_id,
        "enabled": "on",
        "per_user_limit": 1,
        "stock_shards": 1,
        "items-TOTAL_FORMS": 1,
        "items-INITIAL_FORMS": 1,
        "items-0-id": item.pk,
        "items-0-pack": busy_pack.pk,
        "items-0-template": item.template_id,
        "items-0-quantity": item.quantity,
    }
    refused = operator_client.post(url, {**data, "total_stock": 2}, follow=True)
    assert "3 packs are already taken" in refused.content.decode()
    busy_pack.refresh_from_db()
    assert (busy_pack.total_stock, busy_pack.remaining) == (10, 7)
    assert operator_client.post(url, {**data, "total_stock": 3}).status_code == 302
    busy_pack.refresh_from_db()
    assert (busy_pack.total_stock, busy_pack.remaining) == (3, 0)


def test_new_pack_starts_with_full_stock(operator_client):
    template = CouponTemplateFactory()
    response = operator_client.post(
        reverse("admin:coupons_couponpack_add"),
        {
            "name": "new",
            "description": "",
            "total_stock": 50,
            "per_user_limit": 2,
            "stock_shards": 1,
            "enabled": "on",
            "items-TOTAL_FORMS": 1,
            "items-INITIAL_FORMS": 0,
            "items-0-template": template.pk,
            "items-0-quantity": 2,
        },
    )
    assert response.status_code == 302
    pack = CouponPack.objects.get(name="new")
    assert (pack.total_stock, pack.remaining, pack.items.get().quantity) == (50, 50, 2)


def test_pack_page_links_to_its_claims_coupons_and_codes(operator_client, busy_pack):
    html = operator_client.get(reverse("admin:coupons_couponpack_change", args=[busy_pack.pk])).content.decode()
    assert f"/admin/coupons/claim/?pack__id__exact={busy_pack.pk}" in html
    assert reverse("admin:coupons_couponpack_generate_codes", args=[busy_pack.pk]) in html
    claims = operator_client.get(reverse("admin:coupons_claim_changelist"), {"pack__id__exact": busy_pack.pk})
    assert claims.status_code == 200 and len(claims.context["cl"].result_list) == 3


def test_the_coupon_list_reads_amounts_in_yuan_and_writes_nothing(operator_client):
    from coupons.models import CouponKind, CouponTemplate

    threshold = CouponTemplateFactory(name="满100减10", kind=CouponKind.THRESHOLD, value=1000, min_spend_fen=10000)
    CouponTemplateFactory(name="九折", kind=CouponKind.PERCENT, value=10, max_discount_fen=2050)
    page = operator_client.get("/admin/coupons/coupontemplate/").content.decode()
    assert "¥10.00" in page and "100.00" in page and "10%" in page and "20.50" in page
    assert operator_client.get("/admin/coupons/coupontemplate/add/").status_code == 403
    url = f"/admin/coupons/coupontemplate/{threshold.pk}/change/"
    view = operator_client.get(url)
    assert view.status_code == 200 and 'name="_save"' not in view.content.decode()
    assert operator_client.post(url, {"name": "x", "value": 1}).status_code == 403
    assert CouponTemplate.objects.get(pk=threshold.pk).name == "满100减10"
