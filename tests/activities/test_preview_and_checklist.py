"""See it before it is live: the signed preview shows the draft's listings and stock
(to the link's holders only), and publishing goes through a checklist."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from activities import services
from activities.models import Activity
from activities.views import preview_token_make
from core.services import OPERATOR_GROUP, groups_sync, staff_user_ensure
from coupons.models import CouponTemplate
from coupons.services import coupon_pack_create
from listings.services import listing_save

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(operator):
    activity = services.activity_create(
        actor=operator, name="Draft", slug="draft", ends_at=timezone.now() + timedelta(days=10)
    )
    listing = services.component_create(activity=activity, actor=operator, type="listing", title="Homes")
    listing_save(component=listing, city="上海", external_id="sh-1", title="Pudong flat", price_fen=500_000_00)
    pack_component = services.component_create(activity=activity, actor=operator, type="coupon_pack", title="Pack")
    template = CouponTemplate.objects.create(name="10 off", kind="fixed", value=1000, valid_days=7)
    coupon_pack_create(component=pack_component, name="Pack", total_stock=321, items=[(template, 1)])
    activity.listing, activity.pack = listing, pack_component
    return activity


def test_the_preview_reads_the_drafts_stock_and_listings(draft):
    client = Client()
    token = preview_token_make(draft)
    page = client.get(reverse("activity-preview", args=[token]))
    assert page.status_code == 200 and 'data-preview="1"' in page.content.decode()

    body = client.get(f"/a/preview/{token}/api/").json()
    states = {c["type"]: c.get("state") for c in body["components"]}
    assert states["coupon_pack"]["remaining"] == 321
    cities = client.get(f"/a/preview/{token}/components/{draft.listing.pk}/cities").json()
    assert [c["city"] for c in cities["cities"]] == ["上海"]
    listings = client.get(f"/a/preview/{token}/components/{draft.listing.pk}/listings?city=上海").json()
    assert [r["title"] for r in listings["results"]] == ["Pudong flat"]


def test_drafts_stay_hidden_from_anyone_without_the_link(draft, operator):
    client = Client()
    # the public APIs serve published pages only
    assert client.get(f"/api/v1/components/{draft.listing.pk}/cities").status_code == 404
    assert client.get(f"/api/v1/components/{draft.listing.pk}/listings").status_code == 404
    assert client.get("/api/v1/activities/draft").status_code == 404
    # a made-up or tampered token opens nothing
    token = preview_token_make(draft)
    for bad in ("nonsense", token[:-2] + "xx"):
        assert client.get(f"/a/preview/{bad}/api/").status_code == 403
        assert client.get(f"/a/preview/{bad}/components/{draft.listing.pk}/cities").status_code == 403
    # another activity's link does not open this draft's listings
    other = services.activity_create(actor=operator, name="Other", slug="other")
    other_token = preview_token_make(other)
    assert client.get(f"/a/preview/{other_token}/components/{draft.listing.pk}/cities").status_code == 404
    assert client.get(f"/a/preview/{other_token}/components/{draft.listing.pk}/listings").status_code == 404
    response = client.get(f"/a/preview/{token}/api/")
    assert response["Cache-Control"] == "private, no-store" and response["X-Robots-Tag"] == "noindex"


@pytest.fixture
def op(client):
    groups_sync()
    user = staff_user_ensure(username="operator", password="operator-demo-2026", group=OPERATOR_GROUP)
    client.force_login(user)
    return user


def test_publishing_shows_a_checklist_that_blocks_on_problems(op, client, operator):
    activity = services.activity_create(actor=op, name="Sale", slug="sale", ends_at=timezone.now() + timedelta(days=3))
    listing = services.component_create(activity=activity, actor=op, type="listing", title="Homes")
    url = reverse("admin:activities_activity_publish", args=[activity.pk])
    page = client.get(url).content.decode()
    assert "Homes" in page and "no listings uploaded yet" in page
    assert "hd-confirm-publish" not in page
    client.post(url, {"confirm": "1", "confirm_warnings": "on"})
    activity.refresh_from_db()
    assert activity.status == "draft" and activity.published_revision_id is None

    listing_save(component=listing, city="北京", external_id="bj-1", title="Flat", price_fen=100)
    page = client.get(url).content.decode()
    assert "1 listings in 1 cities" in page and "hd-confirm-publish" in page
    assert "No start time in the future" in page  # a warning, confirmed with a tick
    unconfirmed = client.post(url, {"confirm": "1"}, follow=True)
    assert "read the warnings" in unconfirmed.content.decode()
    activity.refresh_from_db()
    assert activity.status == "draft"
    done = client.post(url, {"confirm": "1", "confirm_warnings": "on"})
    assert done.status_code == 302
    activity.refresh_from_db()
    assert activity.status == "online"


def test_the_checklist_names_empty_stock_and_bad_schedules(op, client):
    start = timezone.now() + timedelta(days=2)
    activity = services.activity_create(
        actor=op, name="Later", slug="later", starts_at=start, ends_at=start + timedelta(days=1)
    )
    pack_component = services.component_create(activity=activity, actor=op, type="coupon_pack", title="Pack")
    template = CouponTemplate.objects.create(name="10 off", kind="fixed", value=1000, valid_days=7)
    coupon_pack_create(component=pack_component, name="Pack", total_stock=0, items=[(template, 1)])
    services.component_create(activity=activity, actor=op, type="paid_sale", title="VIP")
    page = client.get(reverse("admin:activities_activity_publish", args=[activity.pk])).content.decode()
    assert "Pack: no stock left" in page
    assert "VIP: no product set up yet" in page
    assert "Online from" in page and "Asia/Shanghai" in page
    assert Activity.objects.get(pk=activity.pk).status == "draft"
