"""Coupon claims under 200 concurrent clients.

`coupons.claims_per_s`: successful claims per second when CLIENTS threads, each
with its own database connection, released together, claim one pack through the
same path as the API (Idempotency-Key record, conditional stock decrement, claim
slot, coupon rows), with more attempts than stock so the pack sells out. The
pack is a hot pack with its stock over SHARDS counter rows (`stock_shards`).
Baseline: the rate at which the same threads, in the same run, insert the same
rows (idempotency record, claim, coupons) with plain INSERTs and no checks.

`coupons.overissued`: packs issued beyond the stock, plus any disagreement between
the stock counter, the claim rows and the coupon rows (must be 0).

Run on MariaDB: TEST_DATABASE_NAME=bench_cpn DATABASE_URL=mysql://root@127.0.0.1:3306/test
    .venv/bin/python -m bench coupons
(MariaDB's default max_connections, 151, is below CLIENTS + 1; the benchmark
raises it for the server's lifetime when it is lower.)
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bench import support

CLIENTS = int(os.environ.get("BENCH_COUPONS_CLIENTS", "200"))
STOCK = int(os.environ.get("BENCH_COUPONS_STOCK", "2000"))
SHARDS = int(os.environ.get("BENCH_COUPONS_SHARDS", "16"))  # the hot pack's stock counters
ATTEMPTS = STOCK + STOCK // 5  # 20% arrive after the pack sold out


def _ensure_connections(connection) -> None:
    if connection.vendor != "mysql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@max_connections")
        (current,) = cursor.fetchone()
        if current < CLIENTS + 20:
            cursor.execute(f"SET GLOBAL max_connections = {CLIENTS + 100}")
            print(f"    max_connections raised from {current} to {CLIENTS + 100}")


def _concurrently(jobs: list, work: Callable) -> tuple[float, list]:
    """Run `work(job)` for every job on CLIENTS threads that start together;
    returns (seconds, results)."""
    from django.db import connection

    barrier = threading.Barrier(CLIENTS + 1)
    chunks = [jobs[i::CLIENTS] for i in range(CLIENTS)]

    def client(chunk: list) -> list:
        out = []
        try:
            try:
                connection.ensure_connection()
            except Exception:
                barrier.abort()  # never leave the others waiting for a client that cannot come
                raise
            barrier.wait(timeout=120)
            for job in chunk:
                out.append(work(job))
        finally:
            connection.close()
        return out

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        futures = [pool.submit(client, chunk) for chunk in chunks]
        try:
            barrier.wait(timeout=120)
        except threading.BrokenBarrierError:
            for future in futures:
                future.result()  # raises the client's own error (e.g. too many connections)
            raise
        started = time.perf_counter()
        results = [r for f in futures for r in f.result()]
        elapsed = time.perf_counter() - started
    return elapsed, results


def _make_pack(stock: int, shards: int = 1):
    from activities.models import Activity
    from components.models import Component
    from coupons.models import CouponTemplate
    from coupons.services import coupon_pack_create

    activity = Activity.objects.create(name="bench", slug=f"bench-{time.monotonic_ns()}", status="online")
    component = Component.objects.create(activity=activity, type="coupon_pack", config={})
    templates = [
        CouponTemplate.objects.create(
            name="满100减10", kind="threshold", value=1000, min_spend_fen=10000, valid_days=7
        ),
        CouponTemplate.objects.create(name="无门槛5元", kind="fixed", value=500, valid_days=3),
    ]
    return coupon_pack_create(
        component=component,
        name="bench",
        total_stock=stock,
        items=[(templates[0], 2), (templates[1], 1)],
        stock_shards=shards,
    )


def _plain_insert_rate() -> float:
    """The same rows, plain INSERTs in one transaction per claim, no checks."""
    from django.db import transaction
    from django.utils import timezone

    from core.models import IdempotencyRecord
    from coupons.codes import code_new
    from coupons.models import Claim, Coupon
    from coupons.services import coupon_validity_compute

    pack = _make_pack(STOCK)
    items = list(pack.items.select_related("template"))

    def insert(n: int) -> bool:
        now = timezone.now()
        with transaction.atomic():
            IdempotencyRecord.objects.create(
                scope="bench.plain",
                user_id=f"p{n}",
                key=f"k{n}",
                fingerprint="f",
                response_status=201,
                response_body={},
            )
            claim = Claim.objects.create(pack=pack, user_id=f"p{n}", sequence=1, claimed_at=now)
            coupons = []
            for item in items:
                valid_from, valid_until = coupon_validity_compute(template=item.template, claimed_at=now)
                coupons += [
                    Coupon(
                        code=code_new(),
                        template=item.template,
                        claim=claim,
                        user_id=claim.user_id,
                        valid_from=valid_from,
                        valid_until=valid_until,
                        created_at=now,
                    )
                    for _ in range(item.quantity)
                ]
            Coupon.objects.bulk_create(coupons)
        return True

    elapsed, results = _concurrently(list(range(STOCK)), insert)
    assert len(results) == STOCK
    return STOCK / elapsed


def _claim_rate() -> tuple[float, int, Counter]:
    from core.db import db_retry
    from core.errors import ApiError
    from core.idempotency import idempotent_call
    from coupons.models import Claim
    from coupons.selectors import claim_payload, coupon_pack_audit
    from coupons.services import coupon_pack_claim

    pack = _make_pack(STOCK, SHARDS)

    def claim(n: int) -> str:
        user_id = f"u{n}"
        try:
            status, body, _ = db_retry(
                lambda: idempotent_call(
                    scope="coupons.claim",
                    user_id=user_id,
                    key=f"k{n}",
                    fingerprint=f"component:{pack.component_id}",
                    compute=lambda: (
                        201,
                        claim_payload(coupon_pack_claim(component_id=pack.component_id, user_id=user_id)),
                    ),
                )
            )
        except ApiError as exc:
            return exc.error_code
        return "ok" if status == 201 else body["error"]["code"]

    elapsed, results = _concurrently(list(range(ATTEMPTS)), claim)
    outcome = Counter(results)
    audit = coupon_pack_audit(pack_id=pack.pk)
    per_user = Claim.objects.filter(pack=pack).values("user_id").distinct().count()
    overissued = (
        max(0, audit["page_claims"] - audit["total_stock"])
        + abs(audit["drift"])
        + abs(audit["coupons"] - audit["coupons_expected"])
        + (audit["page_claims"] - per_user)
        + abs(outcome["ok"] - audit["page_claims"])
    )
    return outcome["ok"] / elapsed, overissued, outcome


def run() -> dict[str, dict]:
    os.environ.setdefault("TEST_DATABASE_NAME", "bench_cpn")
    with support.bench_database() as connection:
        _ensure_connections(connection)
        baseline = _plain_insert_rate()
        rate, overissued, outcome = _claim_rate()
        print(f"    {connection.vendor}: {CLIENTS} clients, stock {STOCK}, {ATTEMPTS} attempts: {dict(outcome)}")
        print(f"    claims {rate:.1f}/s, plain inserts of the same rows {baseline:.1f}/s")
        return {
            "coupons.claims_per_s": support.figure(
                rate, "claims/s", baseline, clients=CLIENTS, stock=STOCK, shards=SHARDS, backend=connection.vendor
            ),
            "coupons.overissued": support.figure(float(overissued), "packs", None, backend=connection.vendor),
        }
