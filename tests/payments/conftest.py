from __future__ import annotations

import uuid

import pytest
from django.conf import settings as django_settings

from payments.signing import result_sign
from tests.payments.factories import ProductFactory
from tests.payments.fakes import FakePaymentService


@pytest.fixture
def fake_payments(settings):
    """The payment team's service as a fast loopback fake of the contract."""
    fake = FakePaymentService(django_settings.PAYMENT_SECRET)
    settings.PAYMENT_SERVICE_URL = fake.url
    yield fake
    fake.stop()


@pytest.fixture
def sandbox(settings, live_server):
    """The project's sandbox payment service, served by the live server."""
    settings.PAYMENT_SERVICE_URL = live_server.url + "/sandbox/pay"
    return live_server


@pytest.fixture
def product(db):
    return ProductFactory()


@pytest.fixture
def order_post(user_client):
    def post(component_id: int, user_id: str = "10086", key: str | None = None):
        client = user_client(user_id)
        return client.post(
            f"/api/v1/components/{component_id}/orders",
            format="json",
            HTTP_IDEMPOTENCY_KEY=key or uuid.uuid4().hex,
        )

    return post


def result_event(order, status: str = "PAID", **overrides) -> dict:
    """A payment.result event as the payment team signs it."""
    event = {
        "event_id": str(uuid.uuid4()),
        "paycode": order.paycode,
        "merchant_order_no": order.order_no,
        "status": status,
        "amount_fen": order.amount_fen,
        "channel": "alipay",
        "transaction_id": "ALI" + uuid.uuid4().hex[:12] if status == "PAID" else None,
        "occurred_at": "2026-11-27T10:15:02.123+08:00",
    }
    event.update({k: v for k, v in overrides.items() if k != "signature"})
    event["signature"] = overrides.get("signature") or result_sign(event)
    return event
