from __future__ import annotations

import pytest
from django.test import TestCase

from activities import services as activity_services
from activities.cache import public_cache_invalidate
from activities.models import Activity
from tests.factories import ComponentFactory
from tests.listings.factories import ListingComponentFactory, ListingFactory, ListingGroupFactory

pytestmark = pytest.mark.django_db


def publish(*components):
    """Publish the components' activities, running the after-commit hooks (the
    public cache generation bump) as a real commit would."""
    for component in components:
        with TestCase.captureOnCommitCallbacks(execute=True):
            activity_services.activity_publish(activity=component.activity, actor=None)
    return components[0]


def make(component, city: str, n: int, **kwargs):
    group = ListingGroupFactory(component=component, city=city)
    return [ListingFactory(group=group, **kwargs) for _ in range(n)]


def test_cities_come_in_the_configured_order_with_capped_counts(api_client):
    component = ListingComponentFactory(
        config={"listings_per_city": 3, "layout": "grid", "city_order": ["深圳", "上海"], "default_city": "上海"}
    )
    make(component, "北京", 2)
    make(component, "上海", 5)
    make(component, "杭州", 1, is_active=False)  # no active listing: no tab
    make(component, "深圳", 1)
    make(component, "广州", 4)

    publish(component)
    response = api_client.get(f"/api/v1/components/{component.pk}/cities")

    assert response.status_code == 200
    body = response.json()
    assert [(c["city"], c["count"], c["total"]) for c in body["cities"]] == [
        ("深圳", 1, 1),
        ("上海", 3, 5),
        ("北京", 2, 2),
        ("广州", 3, 4),
    ]
    assert body["default_city"] == "上海" and body["layout"] == "grid" and body["listings_per_city"] == 3


def test_default_city_falls_back_to_the_first(api_client):
    component = ListingComponentFactory(config={"default_city": "拉萨"})
    make(component, "成都", 1)
    publish(component)
    assert api_client.get(f"/api/v1/components/{component.pk}/cities").json()["default_city"] == "成都"


def test_listings_are_paged_in_sort_order_and_capped_at_the_display_count(api_client):
    component = ListingComponentFactory(config={"listings_per_city": 25})
    group = ListingGroupFactory(component=component, city="上海")
    for n in range(30):
        ListingFactory(group=group, sort_order=100 - n, title=f"t{100 - n}")
    ListingFactory(group=group, sort_order=-1, is_active=False)
    make(component, "北京", 3)

    publish(component)
    first = api_client.get(f"/api/v1/components/{component.pk}/listings", {"city": "上海"}).json()
    assert first["count"] == 25
    assert [item["sort_order"] for item in first["results"]] == list(range(71, 91))
    assert first["previous"] is None and "page=2" in first["next"]
    second = api_client.get(f"/api/v1/components/{component.pk}/listings", {"city": "上海", "page": 2}).json()
    assert [item["sort_order"] for item in second["results"]] == list(range(91, 96))
    assert second["next"] is None
    item = second["results"][0]
    assert set(item) >= {"id", "external_id", "city", "title", "price_fen", "area_m2", "layout", "tags", "detail_url"}
    assert item["city"] == "上海" and item["price_fen"] == 350_000


def test_page_size_is_honoured_but_never_beyond_the_display_count(api_client):
    component = ListingComponentFactory(config={"listings_per_city": 4})
    make(component, "上海", 10)
    publish(component)
    body = api_client.get(f"/api/v1/components/{component.pk}/listings", {"city": "上海", "page_size": 3}).json()
    assert body["count"] == 4 and len(body["results"]) == 3
    last = api_client.get(f"/api/v1/components/{component.pk}/listings?city=上海&page_size=3&page=2").json()
    assert len(last["results"]) == 1


def test_without_a_city_the_default_city_is_served(api_client):
    component = ListingComponentFactory(config={"default_city": "北京"})
    make(component, "上海", 2)
    make(component, "北京", 1)
    publish(component)
    body = api_client.get(f"/api/v1/components/{component.pk}/listings").json()
    assert body["count"] == 1 and body["results"][0]["city"] == "北京"


def test_an_unknown_city_or_page_is_a_json_404(api_client):
    component = ListingComponentFactory()
    make(component, "上海", 1)
    publish(component)
    response = api_client.get(f"/api/v1/components/{component.pk}/listings", {"city": "火星"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "city_not_found"
    response = api_client.get(f"/api/v1/components/{component.pk}/listings", {"city": "上海", "page": 9})
    assert response.status_code == 404 and "error" in response.json()
    response = api_client.get(f"/api/v1/components/{component.pk}/listings", {"city": "上海", "page": "x"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_query"


@pytest.mark.parametrize("status", ["scheduled", "offline", "ended", "archived"])
def test_a_component_of_an_activity_that_is_not_online_is_a_404(api_client, status):
    component = ListingComponentFactory()
    make(component, "上海", 1)
    publish(component)
    assert api_client.get(f"/api/v1/components/{component.pk}/cities").status_code == 200
    Activity.objects.filter(pk=component.activity_id).update(status=status)
    public_cache_invalidate(component.activity.slug)
    for path in ("cities", "listings?city=上海"):
        response = api_client.get(f"/api/v1/components/{component.pk}/{path}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "component_not_found"


def test_only_what_is_published_is_served(api_client):
    component = ListingComponentFactory(config={"layout": "grid", "listings_per_city": 5})
    make(component, "上海", 1)
    assert api_client.get(f"/api/v1/components/{component.pk}/cities").status_code == 404  # never published
    publish(component)
    # Added to the draft after publishing: not on the page yet.
    later = ListingComponentFactory(activity=component.activity)
    make(later, "北京", 1)
    assert api_client.get(f"/api/v1/components/{later.pk}/cities").status_code == 404
    # Draft config edits wait for the next publish; listings are live.
    component.config = {**component.config, "layout": "carousel"}
    component.save()
    assert api_client.get(f"/api/v1/components/{component.pk}/cities").json()["layout"] == "grid"
    publish(component)
    assert api_client.get(f"/api/v1/components/{component.pk}/cities").json()["layout"] == "carousel"
    assert api_client.get(f"/api/v1/components/{later.pk}/cities").status_code == 200


def test_disabled_unknown_and_other_type_components_are_404(api_client):
    disabled = ListingComponentFactory(enabled=False)
    banner = ComponentFactory(type="banner", activity=disabled.activity, config={"image": "https://x/y.png"})
    publish(banner)
    for component_id in (disabled.pk, banner.pk, 999999):
        response = api_client.get(f"/api/v1/components/{component_id}/cities")
        assert response.status_code == 404 and response.json()["error"]["code"] == "component_not_found"


def test_a_bad_token_does_not_block_the_public_api(api_client):
    component = ListingComponentFactory()
    make(component, "上海", 1)
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    publish(component)
    assert api_client.get(f"/api/v1/components/{component.pk}/cities").status_code == 200


def test_the_endpoints_are_in_the_openapi_schema(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/components/{component_id}/cities" in schema["paths"]
    listings = schema["paths"]["/api/v1/components/{component_id}/listings"]["get"]
    assert {p["name"] for p in listings["parameters"]} >= {"city", "page", "component_id"}


def test_cities_are_cached_briefly_and_refreshed_by_imports_and_saves(
    api_client, run_import, tmp_path, django_capture_on_commit_callbacks
):
    from listings.services import listing_save
    from tests.listings.files import row, write_csv

    component = ListingComponentFactory()
    make(component, "上海", 1)
    publish(component)
    url = f"/api/v1/components/{component.pk}/cities"
    assert [c["count"] for c in api_client.get(url).json()["cities"]] == [1]
    make(component, "北京", 1)  # written behind the services' back: served after the cache expires
    assert [c["city"] for c in api_client.get(url).json()["cities"]] == ["上海"]

    with django_capture_on_commit_callbacks(execute=True):
        run_import(component, write_csv(tmp_path / "a.csv", [row(1, city="上海"), row(2, city="上海")]))
    assert [(c["city"], c["count"]) for c in api_client.get(url).json()["cities"]] == [("上海", 3), ("北京", 1)]
    with django_capture_on_commit_callbacks(execute=True):
        listing_save(component=component, city="杭州", external_id="HZ1", title="t", price_fen=1)
    assert [c["city"] for c in api_client.get(url).json()["cities"]] == ["上海", "北京", "杭州"]
