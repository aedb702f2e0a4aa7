import factory

from listings.models import Listing, ListingGroup
from tests.factories import ActivityFactory, ComponentFactory


class OnlineActivityFactory(ActivityFactory):
    status = "online"


class ListingComponentFactory(ComponentFactory):
    activity = factory.SubFactory(OnlineActivityFactory)
    type = "listing"
    config = factory.LazyFunction(
        lambda: {"listings_per_city": 20, "layout": "list", "city_order": [], "default_city": ""}
    )


class ListingGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ListingGroup

    component = factory.SubFactory(ListingComponentFactory)
    city = factory.Sequence(lambda n: f"城市{n}")
    position = factory.Sequence(lambda n: n)


class ListingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Listing

    group = factory.SubFactory(ListingGroupFactory)
    component = factory.SelfAttribute("group.component")
    external_id = factory.Sequence(lambda n: f"L{n:05d}")
    title = factory.Sequence(lambda n: f"房源 {n}")
    price_fen = 350_000
    tags = factory.LazyFunction(list)
