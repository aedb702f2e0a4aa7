"""Truly concurrent clients: threads, each with its own database connection."""

import threading
import uuid
from collections import Counter

import pytest
from django.db import connection
from rest_framework.test import APIClient

from core.auth import user_token_mint
from payments.models import Order, Product, ProductBuyer
from tests.payments.factories import ProductFactory

THREADS = 60


def hammer(component_id: int, requests_: list[tuple[str, str]]) -> Counter:
    """Sends every (user_id, key) order from THREADS threads at once; counts answers."""
    statuses: Counter = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)
    chunks = [requests_[i::THREADS] for i in range(THREADS)]

    def worker(chunk):
        try:
            barrier.wait(timeout=30)
            for user_id, key in chunk:
                client = APIClient()
                client.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token_mint(user_id=user_id)}")
                response = client.post(f"/api/v1/components/{component_id}/orders", HTTP_IDEMPOTENCY_KEY=key)
                code = response.json().get("error", {}).get("code") if response.status_code != 201 else "created"
                with lock:
                    statuses[(response.status_code, code)] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


@pytest.mark.django_db(transaction=True)
def test_300_concurrent_orders_on_stock_100_reserve_exactly_100(fake_payments):
    product = ProductFactory(stock=100)
    statuses = hammer(product.component_id, [(f"user-{i}", uuid.uuid4().hex) for i in range(300)])
    assert statuses == {(201, "created"): 100, (409, "sold_out"): 200}
    product.refresh_from_db()
    assert product.held == 100
    assert Order.objects.filter(state="pending", holds_stock=True).count() == 100
    assert Order.objects.exclude(paycode="").count() == 100
    assert len(fake_payments.by_order) == 100


@pytest.mark.django_db(transaction=True)
def test_one_user_racing_many_orders_gets_only_the_limit_and_same_key_races_make_one_order(fake_payments):
    product = ProductFactory(stock=100, per_user_limit=2)
    statuses = hammer(product.component_id, [("greedy", uuid.uuid4().hex) for _ in range(THREADS)])
    assert statuses == {(201, "created"): 2, (409, "limit_reached"): THREADS - 2}
    assert ProductBuyer.objects.get(user_id="greedy").held == 2
    same_key = hammer(product.component_id, [("retrier", "one-key")] * THREADS)
    assert same_key == {(201, "created"): THREADS}
    assert Order.objects.filter(user_id="retrier").count() == 1
    assert Product.objects.get().held == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_of_one_users_memberships_stack_without_overlap(fake_payments):
    """Two paid orders of the same membership applied at once (two consumers) still
    stack: the second starts when the first ends, so the user gets every day paid for."""
    from payments import services
    from payments.models import Entitlement
    from tests.payments.conftest import result_event

    product = ProductFactory(stock=100, per_user_limit=2)
    users = [f"stacker-{i}" for i in range(15)]
    orders = [
        services.order_place(component_id=product.component_id, user_id=user, idempotency_key=key)
        for user in users
        for key in ("a", "b")
    ]
    events = [result_event(order, "PAID") for order in orders]
    barrier = threading.Barrier(len(events))

    def apply(event):
        try:
            barrier.wait(timeout=30)
            services.payment_result_apply(payload=event)
        finally:
            connection.close()

    threads = [threading.Thread(target=apply, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for user in users:
        first, second = Entitlement.objects.filter(user_id=user).order_by("valid_from", "pk")
        assert second.valid_from == first.valid_until, user
        assert (second.valid_until - first.valid_from).days == 60
