"""Attribution factories: a conversion with every column filled (text that needs
escaping, nested JSON, an aware non-UTC time), as the database-helper tests need."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import factory

from attribution.models import Conversion

SHANGHAI = ZoneInfo("Asia/Shanghai")
ACTIVATED_AT = datetime(2026, 11, 30, 21, 15, 7, 123456, tzinfo=SHANGHAI)


class ConversionFactory(factory.django.DjangoModelFactory):
    """`link` is required (a link made by `services.tracking_link_create`)."""

    class Meta:
        model = Conversion

    platform = "oceanengine"
    app_id = factory.LazyAttribute(lambda o: o.link.app_id)
    os = "ios"
    activation_event_id = factory.Sequence(lambda n: f"ev-{n}")
    click_id = factory.Sequence(lambda n: f"click-{n}")
    activated_at = ACTIVATED_AT
    click_at = factory.LazyAttribute(lambda o: o.activated_at - timedelta(seconds=30))
    seconds_to_install = 30
    match_method = "idfa"
    match_key = "idfa:ABC"
    user_id = "用户"
    callback = "https://ad.example/cb?x=1&y=“quoted”"
    click = factory.LazyFunction(
        lambda: {"id": "the-click", "ua": "Mozilla/5.0 (iPhone)", "us": 12, "nested": {"a": [1, 2.5, None, True]}}
    )
    device_keys = factory.LazyFunction(lambda: {"idfa": ["ABC"], "ipua": ["198.51.100.1+ua"]})
    is_test = True
    fraud_status = "flagged"
    fraud_rule = "ctit"
    fraud_reason = "installed 30 s after the click"
