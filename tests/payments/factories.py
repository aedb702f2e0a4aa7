import factory

from activities.models import ActivityStatus
from payments.models import Product
from tests.factories import ActivityFactory, ComponentFactory


class PaidSaleComponentFactory(ComponentFactory):
    type = "paid_sale"
    activity = factory.SubFactory(ActivityFactory, status=ActivityStatus.ONLINE)
    config = factory.LazyFunction(lambda: {"button_text": "立即购买", "show_stock": True, "note": ""})


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    component = factory.SubFactory(PaidSaleComponentFactory)
    name = factory.Sequence(lambda n: f"VIP 月卡 {n}")
    price_fen = 990
    stock = 100
    per_user_limit = 1
    entitlement_kind = "membership"
    entitlement_days = 30
