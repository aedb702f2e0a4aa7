"""Coupon claims under 200 concurrent clients.

`coupons.claims_per_s`: successful claims per second when CLIENTS clients (threads,
each with its own database connection, released together: tests/concurrency.py)
claim one pack through the API's own path (`coupon_pack_claim` inside
`core.idempotency.idempotent_call_once` and `core.db.db_retry`, with
`coupon_pack_claim_check` as its `check`, as the claim view runs them), ATTEMPTS
attempts on a stock of STOCK so the pack sells out. The pack is a hot pack with
its stock over SHARDS counter rows (`stock_shards`, 64). Beside the figure, in the
same rounds, the same claims on a pack of ALT_SHARDS shards (16)
(`alt_shards_ratio`), so the shard count's effect is measured under the same load.

Baseline (`baseline` on the same entry): the same clients, in the same run and
process, with the same connection handling, write the same rows with plain
INSERTs and no checks, through the same insert code: for each of the STOCK
successful claims one transaction with the claim row, its coupon rows
(`coupons.services._coupons_issue`, one multi-row INSERT) and the idempotency
record holding the same answer (`claim_payload`); for each of the attempts
beyond the stock, the record of the refusal alone. Its rate is STOCK over its
time, like the claims'. ROUNDS rounds (3) of baseline and claims (fresh pack
each; which goes first alternates, and so do the two shard counts); the round
with the median ratio is reported (`bench.support.median_round`), every round in
`rounds_claims_per_s` and `rounds_baseline`.

`coupons.overissued`: packs issued beyond the stock, plus any disagreement between
the stock counter, the claim rows and the coupon rows, over every round (must be 0).

Run on MariaDB: TEST_DATABASE_NAME=bench_cpn DATABASE_URL=mysql://root@127.0.0.1:3306/test
    .venv/bin/python -m bench coupons
"""

from __future__ import annotations

import os
import time
from collections import Counter

from bench import support

CLIENTS = int(os.environ.get("BENCH_COUPONS_CLIENTS", "200"))
STOCK = int(os.environ.get("BENCH_COUPONS_STOCK", "2000"))
# The hot pack's stock counters: 64, the most a pack takes and what docs/coupons.md
# recommends for a pack that opens to hundreds of clients at once.
SHARDS = int(os.environ.get("BENCH_COUPONS_SHARDS", "64"))
# The same claims on a pack with this many shards, beside the figure (0: not run).
ALT_SHARDS = int(os.environ.get("BENCH_COUPONS_ALT_SHARDS", "16"))
ROUNDS = int(os.environ.get("BENCH_COUPONS_ROUNDS", "3"))
ATTEMPTS = STOCK + STOCK // 5  # 20% arrive after the pack sold out


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


def _plain_insert_rate(round_no: int) -> float:
    """The same rows, plain INSERTs through the same insert code, no checks."""
    from django.db import transaction
    from django.utils import timezone

    from core.errors import error_body
    from core.models import IdempotencyRecord
    from coupons.models import Claim, ClaimSource
    from coupons.selectors import claim_payload
    from coupons.services import _coupons_issue, _pack_items
    from tests.concurrency import clients_run

    pack = _make_pack(STOCK, SHARDS)
    items = _pack_items(pack)
    refusal = error_body("sold_out", "All packs have been claimed.")

    def record(n: int, status: int, body: dict) -> None:
        IdempotencyRecord.objects.create(
            scope="bench.plain",
            user_id=f"p{round_no}-{n}",
            key=f"k{n}",
            fingerprint="f" * 64,
            response_status=status,
            response_body=body,
        )

    def insert(n: int) -> bool:
        if n >= STOCK:
            record(n, 409, refusal)
            return False
        now = timezone.now()
        with transaction.atomic():
            claim = Claim.objects.create(
                pack=pack, user_id=f"p{n}", sequence=1, source=ClaimSource.PAGE, claimed_at=now
            )
            claim.issued = _coupons_issue(claim=claim, items=items, now=now)
            record(n, 201, claim_payload(claim))
        return True

    run = clients_run(list(range(ATTEMPTS)), insert, clients=CLIENTS)
    assert sum(run.results) == STOCK
    return STOCK / run.elapsed


def _claim_rate(round_no: int, shards: int = SHARDS) -> tuple[float, int, Counter]:
    from core.db import db_retry
    from core.idempotency import idempotent_call_once
    from coupons.models import Claim
    from coupons.selectors import claim_payload, coupon_pack_audit
    from coupons.services import coupon_pack_claim, coupon_pack_claim_check
    from tests.concurrency import clients_run

    pack = _make_pack(STOCK, shards)

    def claim(n: int) -> str:
        user_id = f"u{round_no}-{n}-{shards}"
        checked: list = [None]

        def check() -> None:
            checked[0] = coupon_pack_claim_check(component_id=pack.component_id, user_id=user_id)

        status, body, _ = db_retry(
            lambda: idempotent_call_once(
                scope="coupons.claim",
                user_id=user_id,
                key=f"k{n}",
                fingerprint=f"component:{pack.component_id}",
                compute=lambda: (
                    201,
                    claim_payload(
                        coupon_pack_claim(component_id=pack.component_id, user_id=user_id, checked=checked[0])
                    ),
                ),
                check=check,
            )
        )
        return "ok" if status == 201 else body["error"]["code"]

    run = clients_run(list(range(ATTEMPTS)), claim, clients=CLIENTS)
    outcome = Counter(run.results)
    audit = coupon_pack_audit(pack_id=pack.pk)
    per_user = Claim.objects.filter(pack=pack).values("user_id").distinct().count()
    overissued = (
        max(0, audit["page_claims"] - audit["total_stock"])
        + abs(audit["drift"])
        + abs(audit["coupons"] - audit["coupons_expected"])
        + (audit["page_claims"] - per_user)
        + abs(outcome["ok"] - audit["page_claims"])
    )
    return outcome["ok"] / run.elapsed, overissued, outcome


def run() -> dict[str, dict]:
    os.environ.setdefault("TEST_DATABASE_NAME", "bench_cpn")
    with support.bench_database() as connection:
        from tests.concurrency import mysql_connections_ensure

        mysql_connections_ensure(connection, CLIENTS)
        baselines, rates, alts, overissued = [], [], [], 0
        for round_no in range(ROUNDS):
            # The baseline and the claims alternate which goes first; the figure's pack
            # (SHARDS) and, beside it, the same claims on ALT_SHARDS swap order too.
            variants = [SHARDS, ALT_SHARDS] if ALT_SHARDS else [SHARDS]
            runs: list[tuple[int, float, Counter]] = []
            if round_no % 2 == 0:
                baselines.append(_plain_insert_rate(round_no))
            for shards in variants if round_no % 2 == 0 else variants[::-1]:
                rate, over, outcome = _claim_rate(round_no, shards)
                (rates if shards == SHARDS else alts).append(rate)
                overissued += over
                runs.append((shards, rate, outcome))
            if round_no % 2 == 1:
                baselines.append(_plain_insert_rate(round_no))
            for shards, rate, outcome in runs:
                print(
                    f"    round {round_no + 1}, {shards} shards: {dict(outcome)}; claims {rate:.1f}/s, "
                    f"plain inserts of the same rows {baselines[-1]:.1f}/s ({rate / baselines[-1]:.3f})",
                    flush=True,
                )
        rate, baseline = support.median_round(list(zip(rates, baselines, strict=True)))
        load = os.getloadavg()
        print(f"    {connection.vendor}: {CLIENTS} clients, stock {STOCK}, {ATTEMPTS} attempts, load {load[0]:.2f}")
        extra = dict(
            clients=CLIENTS,
            stock=STOCK,
            attempts=ATTEMPTS,
            shards=SHARDS,
            rounds=ROUNDS,
            backend=connection.vendor,
            load_average=round(load[0], 2),
            rounds_claims_per_s=[round(r, 1) for r in rates],
            rounds_baseline=[round(b, 1) for b in baselines],
        )
        if alts:
            alt_rate, alt_baseline = support.median_round(list(zip(alts, baselines, strict=True)))
            extra.update(
                alt_shards=ALT_SHARDS,
                rounds_alt_shards_claims_per_s=[round(r, 1) for r in alts],
                alt_shards_ratio=round(alt_rate / alt_baseline, 3),
            )
        return {
            "coupons.claims_per_s": support.figure(rate, "claims/s", baseline, **extra),
            "coupons.overissued": support.figure(float(overissued), "packs", None, backend=connection.vendor),
        }
