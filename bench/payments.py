"""Paid sales: orders under 100 concurrent clients, payment results by one worker.

`payments.orders_per_s`: orders placed per second (stock reserved, paycode fetched
from a loopback payment service, order answered) when CLIENTS threads, each with
its own database connection, released together, post to
`POST /api/v1/components/{id}/orders` in-process (DRF, JWT, Idempotency-Key,
conditional stock update), with more attempts than stock so the product sells out.
Baseline: one client placing orders one after another, in the same run.

`payments.results_per_s`: signed PAID `payment.result` events applied per second by
one event consumer (the real kombu consumer on EVENTS_BROKER_URL: validate,
de-duplicate, verify signature and amount, move the order, grant the
entitlement, ack). Baseline: the same consumer applying the same number of events
of a no-op event type (the mechanism's own cost).

`payments.oversold`: orders holding stock beyond the stock, plus any disagreement
between the stock counter and the orders (must be 0).

MariaDB: TEST_DATABASE_NAME=bench_pay DATABASE_URL=mysql://root@127.0.0.1:3306/test \\
    EVENTS_BROKER_URL=amqp://guest:guest@127.0.0.1:5672// .venv/bin/python -m bench payments
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from bench import support

CLIENTS = int(os.environ.get("BENCH_PAYMENTS_CLIENTS", "100"))
STOCK = int(os.environ.get("BENCH_PAYMENTS_STOCK", "1500"))
ATTEMPTS = STOCK + STOCK // 5
BASELINE_ORDERS = int(os.environ.get("BENCH_PAYMENTS_BASELINE_ORDERS", "150"))
RESULTS = int(os.environ.get("BENCH_PAYMENTS_RESULTS", "1000"))


def _ensure_connections(connection) -> None:
    """MariaDB's default max_connections (151) is shared with everything else on
    the server: make room for CLIENTS more for the server's lifetime."""
    if connection.vendor != "mysql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@max_connections")
        (current,) = cursor.fetchone()
        cursor.execute("SHOW STATUS LIKE 'Threads_connected'")
        connected = int(cursor.fetchone()[1])
        needed = connected + CLIENTS + 20
        if current < needed:
            cursor.execute(f"SET GLOBAL max_connections = {needed + 50}")
            print(f"    max_connections raised from {current} to {needed + 50} ({connected} already connected)")


def _product(stock: int):
    from activities.models import Activity
    from components.models import Component
    from payments.services import product_create

    activity = Activity.objects.create(name="bench", slug=f"bench-{time.monotonic_ns()}", status="online")
    component = Component.objects.create(activity=activity, type="paid_sale", config={})
    return product_create(
        component=component,
        name="bench VIP",
        price_fen=990,
        stock=stock,
        per_user_limit=1,
        entitlement_kind="membership",
        entitlement_days=30,
    )


def _order_client():
    from rest_framework.test import APIClient

    from core.auth import user_token_mint

    def place(component_id: int, user_id: str) -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token_mint(user_id=user_id)}")
        return client.post(
            f"/api/v1/components/{component_id}/orders", HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex
        ).status_code

    return place


def _orders_concurrently(component_id: int) -> tuple[float, Counter]:
    from django.db import connection

    place = _order_client()
    jobs = [f"u{i}" for i in range(ATTEMPTS)]
    chunks = [jobs[i::CLIENTS] for i in range(CLIENTS)]
    barrier = threading.Barrier(CLIENTS + 1)

    def client(chunk: list[str]) -> list[int]:
        out = []
        try:
            connection.ensure_connection()
            barrier.wait(timeout=120)
            for user_id in chunk:
                out.append(place(component_id, user_id))
        finally:
            connection.close()
        return out

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        futures = [pool.submit(client, chunk) for chunk in chunks]
        barrier.wait(timeout=120)
        started = time.perf_counter()
        statuses = Counter(s for f in futures for s in f.result())
        elapsed = time.perf_counter() - started
    return elapsed, statuses


def _oversold(product_id: int) -> int:
    from payments.models import Order, Product

    product = Product.objects.get(pk=product_id)
    holding = Order.objects.filter(product=product, holds_stock=True).count()
    return max(0, holding - product.stock) + abs(holding - product.held)


def _consume(expected: int, done) -> float:
    """Run one consumer until `done()` reaches `expected`; returns seconds."""
    from core.events.consumer import run_consumer

    consumer = run_consumer()
    thread = threading.Thread(target=consumer.run, daemon=True)
    started = time.perf_counter()
    thread.start()
    try:
        deadline = time.monotonic() + 600
        while done() < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"consumer applied {done()} of {expected} within 600s")
            time.sleep(0.02)
        return time.perf_counter() - started
    finally:
        consumer.should_stop = True
        thread.join(timeout=10)
        consumer.connection.release()


def _results_bench() -> tuple[float, float, int]:
    from datetime import timedelta

    from django.utils import timezone
    from kombu import Connection

    from core.events import registry
    from core.events.publish import publish_event
    from core.models import ProcessedEvent
    from payments.models import Entitlement, Order, OrderEvent, Product
    from payments.signing import result_sign

    product = _product(RESULTS)
    expires = timezone.now() + timedelta(hours=1)
    Order.objects.bulk_create(
        Order(
            order_no=f"PB{i:010d}",
            product=product,
            user_id=f"r{i}",
            idempotency_key=f"k{i}",
            amount_fen=product.price_fen,
            paycode=f"PC{i:010d}",
            expires_at=expires,
        )
        for i in range(RESULTS)
    )
    Product.objects.filter(pk=product.pk).update(held=RESULTS)
    OrderEvent.objects.bulk_create(
        OrderEvent(order=o, to_state="pending", cause="created") for o in Order.objects.filter(product=product)
    )

    # baseline: the same number of no-op events through the same consumer
    registry.register(
        "bench.noop",
        lambda payload: None,
        exchange="payment",
        schema={"type": "object", "required": ["event_id"], "properties": {"event_id": {"type": "string"}}},
    )
    from django.conf import settings

    from core.events.consumer import declare_topology

    with Connection(settings.EVENTS_BROKER_URL) as conn:
        declare_topology(conn, settings.EVENTS_QUEUE_PREFIX)  # queues first, or the events are dropped
        for _ in range(RESULTS):
            publish_event("payment", "bench.noop", {"event_id": uuid.uuid4().hex}, connection=conn)
    before = ProcessedEvent.objects.count()
    baseline_s = _consume(RESULTS, lambda: ProcessedEvent.objects.count() - before)

    with Connection(settings.EVENTS_BROKER_URL) as conn:
        for i in range(RESULTS):
            event = {
                "event_id": uuid.uuid4().hex,
                "paycode": f"PC{i:010d}",
                "merchant_order_no": f"PB{i:010d}",
                "status": "PAID",
                "amount_fen": product.price_fen,
                "channel": "alipay",
                "transaction_id": f"ALI{i:012d}",
                "occurred_at": timezone.localtime().isoformat(),
            }
            event["signature"] = result_sign(event)
            publish_event("payment", "payment.result", json.loads(json.dumps(event)), connection=conn)
    measured_s = _consume(RESULTS, lambda: Entitlement.objects.filter(product=product).count())
    registry.unregister("bench.noop")
    double = Entitlement.objects.filter(product=product).count() - RESULTS
    return RESULTS / measured_s, RESULTS / baseline_s, double


def run() -> dict[str, dict]:
    os.environ.setdefault("TEST_DATABASE_NAME", "bench_pay")
    os.environ.setdefault("EVENTS_QUEUE_PREFIX", f"bench-{uuid.uuid4().hex[:8]}")
    with support.bench_database() as connection:
        from django.conf import settings
        from django.test.utils import override_settings

        from tests.payments.fakes import FakePaymentService

        _ensure_connections(connection)
        fake = FakePaymentService(settings.PAYMENT_SECRET)
        try:
            with override_settings(PAYMENT_SERVICE_URL=fake.url):
                place = _order_client()
                baseline_product = _product(BASELINE_ORDERS)
                started = time.perf_counter()
                for i in range(BASELINE_ORDERS):
                    place(baseline_product.component_id, f"b{i}")
                baseline = BASELINE_ORDERS / (time.perf_counter() - started)

                product = _product(STOCK)
                elapsed, statuses = _orders_concurrently(product.component_id)
                placed = statuses.get(201, 0)
                oversold = _oversold(product.pk) + abs(placed - STOCK)
                print(f"    orders: {dict(statuses)} in {elapsed:.2f}s ({CLIENTS} clients, stock {STOCK})")
        finally:
            fake.stop()
        results_rate, results_baseline, double = _results_bench()
        print(f"    results: {RESULTS} PAID applied by one consumer; entitlements beyond one per order: {double}")
        return {
            "payments.orders_per_s": support.figure(
                placed / elapsed, "orders/s", baseline, clients=CLIENTS, stock=STOCK, attempts=ATTEMPTS
            ),
            "payments.results_per_s": support.figure(results_rate, "results/s", results_baseline, events=RESULTS),
            "payments.oversold": support.figure(oversold + max(double, 0), "orders", None),
        }
