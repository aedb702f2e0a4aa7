"""The listings admin writes through listings.services: the rules are the upload's,
and the public city counts are fresh after every admin edit."""

from __future__ import annotations

import pytest
from django.test import TestCase

from listings import services
from listings.errors import ListingInvalid
from listings.models import Listing, ListingGroup
from tests.listings.factories import ListingComponentFactory, ListingFactory, ListingGroupFactory
from tests.listings.test_api import publish

pytestmark = pytest.mark.django_db


@pytest.fixture
def published():
    component = ListingComponentFactory()
    shanghai = ListingGroupFactory(component=component, city="上海")
    beijing = ListingGroupFactory(component=component, city="北京")
    ListingFactory(group=shanghai)
    ListingFactory(group=shanghai)
    only = ListingFactory(group=beijing)
    publish(component)
    return component, only


def cities(api_client, component) -> list[tuple[str, int]]:
    body = api_client.get(f"/api/v1/components/{component.pk}/cities").json()
    return [(c["city"], c["total"]) for c in body["cities"]]


def test_switching_a_listing_off_in_the_admin_list_updates_the_city_counts_at_once(
    operator_client, api_client, published
):
    component, only = published
    assert cities(api_client, component) == [("上海", 2), ("北京", 1)]  # now cached for 30 s

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = operator_client.post(
            f"/admin/listings/listing/?group__city=北京&component__id__exact={component.pk}",
            {
                "form-TOTAL_FORMS": "1",
                "form-INITIAL_FORMS": "1",
                "form-0-id": str(only.pk),
                "form-0-sort_order": "5",
                # is_active unticked: switched off
                "_save": "Save",
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    only.refresh_from_db()
    assert only.is_active is False and only.sort_order == 5
    assert cities(api_client, component) == [("上海", 2)]


def test_an_admin_edit_and_delete_go_through_the_services_and_refresh_the_counts(
    operator_client, api_client, published
):
    component, only = published
    assert cities(api_client, component) == [("上海", 2), ("北京", 1)]
    shanghai = ListingGroup.objects.get(component=component, city="上海")
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = operator_client.post(
            f"/admin/listings/listing/{only.pk}/change/",
            {
                "component": component.pk,
                "group": shanghai.pk,  # moved to 上海
                "external_id": only.external_id,
                "title": "搬到上海",
                "price_fen": "120000",
                "tags": '["近地铁"]',
                "sort_order": "0",
                "is_active": "on",
            },
        )
    assert response.status_code == 302
    assert cities(api_client, component) == [("上海", 3)]

    with TestCase.captureOnCommitCallbacks(execute=True):
        response = operator_client.post(f"/admin/listings/listing/{only.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Listing.objects.filter(pk=only.pk).exists()
    assert cities(api_client, component) == [("上海", 2)]


def test_renaming_a_city_in_the_admin_refreshes_the_counts_and_refuses_a_taken_name(
    operator_client, api_client, published
):
    component, _ = published
    assert cities(api_client, component) == [("上海", 2), ("北京", 1)]
    beijing = ListingGroup.objects.get(component=component, city="北京")
    taken = operator_client.post(
        f"/admin/listings/listinggroup/{beijing.pk}/change/", {"city": "上海", "position": str(beijing.position)}
    )
    assert taken.status_code == 200 and "already has a city" in taken.content.decode()
    with TestCase.captureOnCommitCallbacks(execute=True):
        renamed = operator_client.post(
            f"/admin/listings/listinggroup/{beijing.pk}/change/", {"city": "北京市", "position": str(beijing.position)}
        )
    assert renamed.status_code == 302
    assert cities(api_client, component) == [("上海", 2), ("北京市", 1)]


def test_the_services_refuse_what_the_upload_refuses():
    component = ListingComponentFactory()
    with pytest.raises(ListingInvalid) as refused:
        services.listing_save(component=component, city="上海", external_id="A1", title="=1+1", price_fen=-1)
    assert set(refused.value.details) == {"title", "price_fen"}
    assert refused.value.code == "listing_invalid"
    listing = services.listing_save(component=component, city="上海", external_id="A1", title="ok", price_fen=1)
    with pytest.raises(ListingInvalid, match="at most 10"):
        services.listing_update(listing_id=listing.pk, fields={"tags": [str(n) for n in range(11)]})
    other = ListingGroupFactory(city="北京")
    with pytest.raises(ListingInvalid, match="belongs to another listing component"):
        services.listing_update(listing_id=listing.pk, fields={"group": other})
