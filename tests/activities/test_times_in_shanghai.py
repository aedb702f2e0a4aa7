"""Every time an end user reads in an API answer carries Asia/Shanghai (+08:00):
activity schedule and publish time, orders, entitlements, product sale windows."""

from __future__ import annotations

import datetime as dt

import pytest

from activities import services
from payments.models import Entitlement, Order, Product

pytestmark = pytest.mark.django_db

UTC = dt.UTC


def _shanghai(value: str | None) -> bool:
    return value is None or value.endswith("+08:00")


def _times(obj, out):
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key.endswith("_at") or key in ("valid_from", "valid_until"):
                out.append((key, value))
            _times(value, out)
    elif isinstance(obj, list):
        for value in obj:
            _times(value, out)
    return out


def test_orders_entitlements_and_activity_times_carry_asia_shanghai(operator, user_client, api_client):
    start = dt.datetime(2026, 1, 1, 2, 0, tzinfo=UTC)
    activity = services.activity_create(
        actor=operator, name="Sale", slug="tz-sale", ends_at=dt.datetime(2099, 1, 1, tzinfo=UTC)
    )
    component = services.component_create(activity=activity, actor=operator, type="paid_sale", title="VIP")
    product = Product.objects.create(
        component=component,
        name="VIP",
        price_fen=1990,
        stock=5,
        entitlement_kind="membership",
        entitlement_days=30,
        sale_starts_at=start,
        sale_ends_at=dt.datetime(2098, 1, 1, tzinfo=UTC),
    )
    services.activity_publish(activity=activity, actor=operator)
    order = Order.objects.create(
        order_no="HD1",
        product=product,
        user_id="10086",
        idempotency_key="k1",
        amount_fen=1990,
        state="paid",
        expires_at=start,
        paid_at=start,
    )
    Entitlement.objects.create(
        order=order,
        product=product,
        user_id="10086",
        kind="membership",
        granted_at=start,
        valid_from=start,
        valid_until=start + dt.timedelta(days=30),
    )
    client = user_client("10086")
    answers = [
        client.get("/api/v1/me/entitlements").json(),
        client.get("/api/v1/me/orders").json(),
        client.get("/api/v1/me/orders/HD1").json(),
        api_client.get("/api/v1/activities/tz-sale").json(),
    ]
    times = _times(answers, [])
    assert {"valid_from", "valid_until", "granted_at", "paid_at", "created_at", "published_at", "ends_at"} <= {
        k for k, _ in times
    }
    assert [t for t in times if not _shanghai(t[1])] == []
    assert ("valid_from", "2026-01-01T10:00:00+08:00") in times
