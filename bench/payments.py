"""Paid sales: orders under 100 concurrent clients, payment results by one worker.

`payments.orders_per_s`: orders placed per second (stock reserved, paycode fetched
from a loopback payment service, order answered) when CLIENTS threads, each with
its own database connection, released together, post to
`POST /api/v1/components/{id}/orders` in-process (DRF, JWT, Idempotency-Key,
conditional stock update), with more attempts than stock so the product sells out.
Baseline: one client placing orders one after another, in the same run.

`payments.results_per_s`: signed PAID `payment.result` events applied per second by
one event consumer (the worker's own, on EVENTS_BROKER_URL, with its batch settings:
validate, de-duplicate, verify signature and amount, move the order, grant the
entitlement, ack) draining a queued backlog of RESULTS (through its batch handler,
`payment_results_apply_many`). Baseline: the same consumer draining the same number
of no-op events of the same bodies and contract, through the same batch path (a
no-op batch handler, bench/_events.py), in interleaved rounds (the round with the median ratio). The entry also
records both rates one event per transaction (`one_by_one`).

`payments.oversold`: orders holding stock beyond the stock, plus any disagreement
between the stock counter and the orders (must be 0).

`BENCH_PAYMENTS_ONLY=results` runs `payments.results_per_s` alone.

MariaDB: TEST_DATABASE_NAME=bench_pay DATABASE_URL=mysql://root@127.0.0.1:3306/test \\
    EVENTS_BROKER_URL=amqp://guest:guest@127.0.0.1:5672// .venv/bin/python -m bench payments
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter

from bench import support

CLIENTS = int(os.environ.get("BENCH_PAYMENTS_CLIENTS", "100"))
STOCK = int(os.environ.get("BENCH_PAYMENTS_STOCK", "1500"))
ATTEMPTS = STOCK + STOCK // 5
BASELINE_ORDERS = int(os.environ.get("BENCH_PAYMENTS_BASELINE_ORDERS", "150"))
# Results per drain: 3,000 (was 1,000): a drain long enough that the consumer's start
# does not weigh on the faster no-op side (as for attribution.activations_per_s).
RESULTS = int(os.environ.get("BENCH_PAYMENTS_RESULTS", "3000"))
ONE_BY_ONE = min(RESULTS, 1000)  # the one-event-per-transaction rates beside it (slower: fewer events)


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
    # The one harness of tests and bench (tests/concurrency.py): a connection per
    # client before one barrier; a client that cannot connect aborts it.
    from tests.concurrency import clients_run

    place = _order_client()
    run = clients_run([f"u{i}" for i in range(ATTEMPTS)], lambda user_id: place(component_id, user_id), clients=CLIENTS)
    return run.elapsed, Counter(run.results)


def _oversold(product_id: int) -> int:
    from payments.models import Order, Product

    product = Product.objects.get(pk=product_id)
    holding = Order.objects.filter(product=product, holds_stock=True).count()
    return max(0, holding - product.stock) + abs(holding - product.held)


def _pending_orders(count: int) -> list[tuple[str, str, int]]:
    """`count` pending orders holding stock: [(order_no, paycode, amount_fen)]."""
    from datetime import timedelta

    from django.utils import timezone

    from payments.models import Order, OrderEvent, Product

    product = _product(count)
    tag = uuid.uuid4().hex[:6].upper()
    expires = timezone.now() + timedelta(hours=1)
    Order.objects.bulk_create(
        Order(
            order_no=f"PB{tag}{i:08d}",
            product=product,
            user_id=f"r{tag}{i}",
            idempotency_key=f"k{tag}{i}",
            amount_fen=product.price_fen,
            paycode=f"PC{tag}{i:08d}",
            expires_at=expires,
        )
        for i in range(count)
    )
    Product.objects.filter(pk=product.pk).update(held=count)
    OrderEvent.objects.bulk_create(
        OrderEvent(order=o, to_state="pending", cause="created") for o in Order.objects.filter(product=product)
    )
    return [(f"PB{tag}{i:08d}", f"PC{tag}{i:08d}", product.price_fen) for i in range(count)]


def _result_bodies(orders: list[tuple[str, str, int]]) -> list[bytes]:
    from django.utils import timezone

    from payments.signing import result_sign

    bodies = []
    for order_no, paycode, amount in orders:
        event = {
            "event_id": uuid.uuid4().hex,
            "paycode": paycode,
            "merchant_order_no": order_no,
            "status": "PAID",
            "amount_fen": amount,
            "channel": "alipay",
            "transaction_id": f"ALI{order_no[2:]}",
            "occurred_at": timezone.localtime().isoformat(),
        }
        event["signature"] = result_sign(event)
        bodies.append(json.dumps(event).encode())
    return bodies


def _results_bench() -> tuple[dict, int]:
    from bench import _events
    from payments.models import Entitlement

    double = 0

    def results(batch_size=None, count=RESULTS) -> float:
        nonlocal double
        orders = _pending_orders(count)
        before = Entitlement.objects.count()
        rate = _events.drain("payment", "payment.result", _result_bodies(orders), batch_size=batch_size)
        granted = Entitlement.objects.count() - before
        assert granted >= count, f"{granted} entitlements for {count} PAID results"
        double += granted - count
        return rate

    def noop(batch_size=None, count=RESULTS) -> float:
        # the same bodies (orders that exist, signed), through a handler that does nothing
        return _events.drain("payment", _events.NOOP, _result_bodies(_pending_orders(count)), batch_size=batch_size)

    load_before = _events.load_average()
    print(f"    load average before: {load_before}", flush=True)
    try:
        with _events.noop_like("payment.result"):
            value, base, _ = _events.interleaved(results, noop, label="results")
            one_value, one_base, _ = _events.interleaved(
                lambda: results(1, ONE_BY_ONE), lambda: noop(1, ONE_BY_ONE), rounds=1, label="results one by one"
            )
    finally:
        _events.delete_queues()
    load_after = _events.load_average()
    print(f"    load average after: {load_after}", flush=True)
    from django.conf import settings

    figure = support.figure(
        value,
        "results/s",
        base,
        events=RESULTS,
        batch_size=settings.EVENTS_BATCH_SIZE,
        batch_handler=True,  # payment.result and the no-op baseline both through the batch path
        load_average=f"{load_before} -> {load_after}",
        one_by_one={"value": round(one_value, 2), "baseline": round(one_base, 2)},
    )
    return figure, double


def run() -> dict[str, dict]:
    from bench import _events

    os.environ.setdefault("TEST_DATABASE_NAME", "bench_pay")
    _events.use_own_queues()
    only_results = os.environ.get("BENCH_PAYMENTS_ONLY") == "results"
    with support.bench_database() as connection:
        if only_results:
            results, double = _results_bench()
            return {"payments.results_per_s": results}
        from django.conf import settings
        from django.test.utils import override_settings

        from tests.concurrency import mysql_connections_ensure
        from tests.payments.fakes import FakePaymentService

        mysql_connections_ensure(connection, CLIENTS)
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
        results, double = _results_bench()
        print(f"    results: PAID applied by one consumer; entitlements beyond one per order: {double}")
        return {
            "payments.orders_per_s": support.figure(
                placed / elapsed, "orders/s", baseline, clients=CLIENTS, stock=STOCK, attempts=ATTEMPTS
            ),
            "payments.results_per_s": results,
            "payments.oversold": support.figure(oversold + max(double, 0), "orders", None),
        }
