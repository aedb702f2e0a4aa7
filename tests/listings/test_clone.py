from __future__ import annotations

import pytest

from components import registry
from listings.models import Listing, ListingGroup
from tests.listings.factories import ListingComponentFactory, ListingFactory, ListingGroupFactory

pytestmark = pytest.mark.django_db


def test_the_clone_hook_copies_groups_and_listings():
    source = ListingComponentFactory()
    shanghai = ListingGroupFactory(component=source, city="上海", position=0)
    beijing = ListingGroupFactory(component=source, city="北京", position=1)
    ListingFactory(group=shanghai, external_id="A", tags=["近地铁"], sort_order=3, is_active=False)
    ListingFactory(group=beijing, external_id="B", price_fen=0)
    target = ListingComponentFactory(activity=source.activity)

    registry.get("listing").clone(source=source, target=target)

    groups = list(ListingGroup.objects.filter(component=target).values_list("city", "position"))
    assert groups == [("上海", 0), ("北京", 1)]
    copied = {item.external_id: item for item in Listing.objects.filter(component=target)}
    assert copied["A"].group.city == "上海" and copied["A"].group.component_id == target.pk
    assert (copied["A"].tags, copied["A"].sort_order, copied["A"].is_active) == (["近地铁"], 3, False)
    assert copied["B"].price_fen == 0 and copied["B"].group.city == "北京"
    # The copy is independent of its source.
    Listing.objects.filter(component=source).update(title="changed")
    assert not Listing.objects.filter(component=target, title="changed").exists()
    assert Listing.objects.filter(component=source).count() == 2


def test_the_config_schema_validates_and_fills_defaults():
    config = registry.config_validate("listing", {"layout": "carousel"})
    assert config == {"listings_per_city": 20, "layout": "carousel", "city_order": [], "default_city": ""}
    with pytest.raises(registry.ConfigInvalid) as error:
        registry.config_validate("listing", {"layout": "table", "per_city": 3})
    assert set(error.value.errors) == {"layout", "per_city"}
