from __future__ import annotations

import io

import pytest
from django.test import TestCase

from activities import services as activity_services
from activities.models import Activity
from listings import demo
from listings.models import Listing, ListingGroup
from tests.factories import ActivityFactory
from tests.listings.factories import ListingFactory, ListingGroupFactory

pytestmark = pytest.mark.django_db


def test_seed_adds_one_listing_component_with_cities_idempotently():
    demo.seed(io.StringIO())
    demo.seed(io.StringIO())
    activity = Activity.objects.get(slug="demo")
    components = list(activity.components.filter(type="listing"))
    assert len(components) == 1
    assert list(ListingGroup.objects.filter(component=components[0]).values_list("city", flat=True)) == [
        "上海",
        "北京",
        "杭州",
    ]
    assert Listing.objects.filter(component=components[0]).count() == 10


def test_a_published_activity_serves_the_listing_component_on_its_page_and_api(client, api_client):
    activity = ActivityFactory()
    component = activity_services.component_create(
        activity=activity,
        actor=None,
        type="listing",
        title="热门房源",
        config={"layout": "grid", "city_order": ["北京"], "listings_per_city": 2},
    )
    ListingFactory(group=ListingGroupFactory(component=component, city="上海"))
    ListingFactory(group=ListingGroupFactory(component=component, city="北京"))
    assert api_client.get(f"/api/v1/components/{component.pk}/cities").status_code == 404  # a draft

    with TestCase.captureOnCommitCallbacks(execute=True):  # the public cache bump, as on a real commit
        activity_services.activity_publish(activity=activity, actor=None)
    activity.refresh_from_db()
    assert activity.status == "online"

    snapshot = api_client.get(f"/api/v1/activities/{activity.slug}").json()
    public = next(c for c in snapshot["components"] if c["type"] == "listing")
    assert public["config"]["layout"] == "grid"
    assert public["config"]["cities_url"] == f"/api/v1/components/{component.pk}/cities"
    page = client.get(f"/a/{activity.slug}/").content.decode()
    assert "hd-listing--grid" in page and f'data-cities-url="/api/v1/components/{component.pk}/cities"' in page
    cities = api_client.get(public["config"]["cities_url"]).json()["cities"]
    assert [c["city"] for c in cities] == ["北京", "上海"]

    # Live data, not the snapshot: a listing added after publishing is served at once.
    ListingFactory(group=ListingGroup.objects.get(component=component, city="上海"), title="新上架")
    body = api_client.get(public["config"]["listings_url"], {"city": "上海"}).json()
    assert body["count"] == 2 and body["results"][1]["title"] == "新上架"


def test_cloning_an_activity_carries_its_listings():
    activity = ActivityFactory()
    component = activity_services.component_create(activity=activity, actor=None, type="listing", config={})
    ListingFactory(group=ListingGroupFactory(component=component, city="上海"), external_id="X")
    copy = activity_services.activity_clone(source=activity, actor=None, is_template=True)
    cloned = copy.components.get(type="listing")
    assert cloned.pk != component.pk
    assert list(Listing.objects.filter(component=cloned).values_list("external_id", "group__city")) == [("X", "上海")]
