import uuid

import pytest

from payments.models import Order, OrderEvent, Product, ProductBuyer
from tests.payments.factories import ProductFactory
from tests.payments.fakes import FixedAnswerServer, SlowServer, closed_port_url

pytestmark = pytest.mark.django_db


def test_order_reserves_stock_and_returns_paycode_cashier_and_expiry(fake_payments, product, order_post):
    response = order_post(product.component_id)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= {"order_no", "status", "amount_fen", "paycode", "cashier_url", "expires_at", "paid_at"}
    assert body["status"] == "pending" and body["amount_fen"] == 990 and body["paid_at"] is None
    assert body["paycode"] == fake_payments.by_order[body["order_no"]]["paycode"]
    assert body["cashier_url"].endswith(body["paycode"])
    product.refresh_from_db()
    assert product.held == 1
    order = Order.objects.get(order_no=body["order_no"])
    assert [e.cause for e in order.events.all()] == ["created"]


def test_same_idempotency_key_replays_the_same_order_without_a_second_reservation(fake_payments, product, order_post):
    first = order_post(product.component_id, key="k-1").json()
    second = order_post(product.component_id, key="k-1")
    assert second.status_code == 201 and second["Idempotent-Replayed"] == "true"
    assert second.json()["order_no"] == first["order_no"] and second.json()["paycode"] == first["paycode"]
    assert Order.objects.count() == 1
    assert Product.objects.get().held == 1


def test_per_user_limit_counts_pending_orders_and_is_refused_cleanly(fake_payments, order_post):
    product = ProductFactory(per_user_limit=2)
    assert order_post(product.component_id).status_code == 201
    assert order_post(product.component_id).status_code == 201
    third = order_post(product.component_id)
    assert third.status_code == 409 and third.json()["error"]["code"] == "limit_reached"
    assert order_post(product.component_id, user_id="other").status_code == 201
    assert Product.objects.get().held == 3
    assert ProductBuyer.objects.get(user_id="10086").held == 2


def test_sold_out_is_a_409_and_changes_nothing(fake_payments, order_post):
    product = ProductFactory(stock=1)
    assert order_post(product.component_id, user_id="a").status_code == 201
    refused = order_post(product.component_id, user_id="b")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "sold_out"
    assert Order.objects.count() == 1 and not ProductBuyer.objects.filter(user_id="b", held__gt=0).exists()
    assert Product.objects.get().held == 1


@pytest.mark.parametrize("url_kind", ["closed_port", "sleeps_past_timeout", "answers_500"])
def test_payment_service_down_or_slow_fails_cleanly_and_releases_stock(settings, product, order_post, url_kind):
    slow = None
    if url_kind == "closed_port":
        settings.PAYMENT_SERVICE_URL = closed_port_url()
    elif url_kind == "answers_500":
        slow = SlowServer(delay=0)
        settings.PAYMENT_SERVICE_URL = slow.url
    else:
        slow = SlowServer(delay=3)
        settings.PAYMENT_SERVICE_URL = slow.url
        settings.PAYMENT_TIMEOUT_SECONDS = 0.5
    try:
        response = order_post(product.component_id, key="k-down")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "payment_unavailable"
        product.refresh_from_db()
        assert product.held == 0
        assert ProductBuyer.objects.get(user_id="10086").held == 0
        order = Order.objects.get()
        assert (order.state, order.close_cause, order.holds_stock) == ("closed", "payment_unavailable", False)
        assert list(OrderEvent.objects.values_list("cause", flat=True)) == ["created", "payment_unavailable"]
        # the same key replays the failure; nothing is reserved again
        again = order_post(product.component_id, key="k-down")
        assert again.status_code == 503 and Product.objects.get().held == 0
    finally:
        if slow:
            slow.stop()


@pytest.mark.parametrize(
    "answer",
    [
        {"paycode": "P" * 65, "cashier_url": "https://pay.example.com/c/1", "expires_at": "2026-11-27T12:00:00+08:00"},
        {"paycode": "", "cashier_url": "https://pay.example.com/c/1", "expires_at": "2026-11-27T12:00:00+08:00"},
        {"paycode": ["P1"], "cashier_url": "https://pay.example.com/c/1", "expires_at": "2026-11-27T12:00:00+08:00"},
        {"paycode": "P1", "cashier_url": "javascript:alert(1)", "expires_at": "2026-11-27T12:00:00+08:00"},
        {"paycode": "P1", "cashier_url": "https://pay.example.com/" + "c" * 500, "expires_at": "2026-11-27T12:00"},
    ],
    ids=["paycode_too_long", "paycode_empty", "paycode_not_a_string", "cashier_not_http", "cashier_too_long"],
)
def test_a_paycode_answer_outside_the_contract_fails_cleanly_and_releases_stock(settings, product, order_post, answer):
    server = FixedAnswerServer(200, answer)
    settings.PAYMENT_SERVICE_URL = server.url
    try:
        response = order_post(product.component_id)
    finally:
        server.stop()
    assert response.status_code == 503 and response.json()["error"]["code"] == "payment_unavailable"
    order = Order.objects.get()
    assert (order.state, order.close_cause, order.paycode) == ("closed", "payment_unavailable", "")
    assert Product.objects.get().held == 0


def test_after_an_outage_a_new_attempt_succeeds(settings, fake_payments, product, order_post):
    real = settings.PAYMENT_SERVICE_URL
    settings.PAYMENT_SERVICE_URL = closed_port_url()
    assert order_post(product.component_id).status_code == 503
    settings.PAYMENT_SERVICE_URL = real
    assert order_post(product.component_id).status_code == 201
    assert Product.objects.get().held == 1


def test_bad_requests_get_clear_4xx_and_change_nothing(fake_payments, product, order_post, api_client, user_client):
    anonymous = api_client.post(f"/api/v1/components/{product.component_id}/orders", HTTP_IDEMPOTENCY_KEY="k")
    assert anonymous.status_code == 401
    no_key = user_client("1").post(f"/api/v1/components/{product.component_id}/orders", format="json")
    assert no_key.status_code == 400 and no_key.json()["error"]["code"] == "idempotency_key_required"
    assert order_post(999999).status_code == 404
    banner = ProductFactory().component
    banner.type = "banner"
    banner.save()
    assert order_post(banner.pk).json()["error"]["code"] == "component_not_found"
    first = order_post(product.component_id, key="reused")
    other = ProductFactory()
    reused = order_post(other.component_id, key="reused")
    assert first.status_code == 201 and reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_sale_window_and_offline_activity_are_refused(fake_payments, order_post):
    from datetime import timedelta

    from django.utils import timezone

    early = ProductFactory(sale_starts_at=timezone.now() + timedelta(hours=1))
    late = ProductFactory(
        sale_starts_at=timezone.now() - timedelta(days=2), sale_ends_at=timezone.now() - timedelta(days=1)
    )
    offline = ProductFactory(component__activity__status="offline")
    assert order_post(early.component_id).json()["error"]["code"] == "sale_not_started"
    assert order_post(late.component_id).json()["error"]["code"] == "sale_ended"
    assert order_post(offline.component_id).json()["error"]["code"] == "not_on_sale"
    assert Order.objects.count() == 0


def test_user_sees_own_order_only(fake_payments, product, order_post, user_client):
    order_no = order_post(product.component_id, user_id="alice").json()["order_no"]
    mine = user_client("alice").get(f"/api/v1/me/orders/{order_no}")
    assert mine.status_code == 200 and mine.json()["status"] == "pending"
    assert user_client("bob").get(f"/api/v1/me/orders/{order_no}").status_code == 404
    listing = user_client("alice").get("/api/v1/me/orders").json()
    assert listing["count"] == 1 and listing["results"][0]["order_no"] == order_no
    entitlements = user_client("alice").get("/api/v1/me/entitlements").json()
    assert entitlements == {"count": 0, "next": None, "previous": None, "results": []}


def test_order_numbers_are_unique_and_keys_are_per_user(fake_payments, product, order_post):
    key = uuid.uuid4().hex
    a = order_post(product.component_id, user_id="a", key=key).json()
    b = order_post(product.component_id, user_id="b", key=key).json()
    assert a["order_no"] != b["order_no"]


def test_order_list_reads_a_page_in_the_same_number_of_queries_however_many_orders(fake_payments, user_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from payments import services
    from tests.payments.conftest import result_event

    product = ProductFactory(per_user_limit=5)
    client = user_client("lister")

    def buy() -> None:
        order = services.order_place(
            component_id=product.component_id, user_id="lister", idempotency_key=uuid.uuid4().hex
        )
        services.payment_result_apply(payload=result_event(order, "PAID"))

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            body = client.get("/api/v1/me/orders").json()
        assert all(o["entitlement"]["order_no"] == o["order_no"] for o in body["results"])
        return len(captured)

    buy()
    one = queries()
    for _ in range(3):
        buy()
    assert queries() == one
