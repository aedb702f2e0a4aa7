"""Coupon writes: claims, code redemption, order redemption, expiry, stock.

Stock and limits are enforced by the database:
- a claim takes one pack with `UPDATE ... SET remaining = remaining - 1 WHERE
  remaining > 0 AND enabled` (and the CheckConstraint remaining >= 0 behind it);
- a user's page claims of a pack are numbered 1..per_user_limit and unique on
  (pack, user, sequence), so no interleaving can give a user more than the limit;
- an offline code is consumed by a conditional update and is the OneToOne key of
  the claim it produced.
The decrement comes first (see `_claim_take` for why) and the section under the
pack's row lock is kept to a few statements.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError

from activities.models import ActivityStatus
from components.models import Component
from core.idempotency import write_last
from core.redis import get_redis
from coupons import gate
from coupons.codes import code_new, code_normalize
from coupons.errors import CouponError, limit_reached, pack_disabled, pack_empty, sold_out
from coupons.models import (
    Claim,
    ClaimSource,
    Coupon,
    CouponKind,
    CouponPack,
    CouponPackItem,
    CouponStatus,
    CouponStockShard,
    CouponTemplate,
    RedeemCode,
    ValidityKind,
)
from coupons.selectors import coupon_pack_remaining

logger = logging.getLogger("huodong.coupons")

COMPONENT_TYPE = "coupon_pack"
MAX_CODES_PER_BATCH = 20000


# --- validity -------------------------------------------------------------------


def coupon_validity_compute(*, template: CouponTemplate, claimed_at: datetime) -> tuple[datetime, datetime]:
    """(valid_from, valid_until) of a coupon of `template` claimed at `claimed_at`:
    the template's dates when absolute; `valid_days` x 24 h from the claim when
    relative."""
    if template.validity_kind == ValidityKind.ABSOLUTE:
        # The template's check constraint makes absolute validity complete.
        assert template.valid_from is not None and template.valid_until is not None
        return template.valid_from, template.valid_until
    assert template.valid_days is not None  # likewise for relative validity
    return claimed_at, claimed_at + timedelta(days=template.valid_days)


def _coupons_issue(*, claim: Claim, items: list[CouponPackItem], now: datetime) -> list[Coupon]:
    coupons = []
    for item in items:
        valid_from, valid_until = coupon_validity_compute(template=item.template, claimed_at=now)
        for _copy in range(item.quantity):
            coupons.append(
                Coupon(
                    code=code_new(),
                    template=item.template,
                    claim=claim,
                    user_id=claim.user_id,
                    status=CouponStatus.UNUSED,
                    valid_from=valid_from,
                    valid_until=valid_until,
                    created_at=now,
                )
            )
    # No savepoint here (this runs under the pack's row lock): a code collision
    # has odds of about 2**-79 per pair, and the unique key would still refuse it.
    return Coupon.objects.bulk_create(coupons)


# --- claims ---------------------------------------------------------------------


# The URL's <int:> accepts any number of digits; no id lies beyond the 64-bit range
# (and SQLite cannot even bind one), so such an id names no component.
_MAX_ID = 2**63 - 1

# A pack's items with their templates, per process, keyed by the pack's
# `updated_at`: every write to a pack's items or to a template they use goes
# through a service that bumps the pack's `updated_at` (coupon_pack_items_set,
# coupon_template_update), so a claim reading the pack row knows whether its
# copy is current. Bounded: the oldest entries go first.
_ITEMS_CACHE: dict[int, tuple[datetime, list[CouponPackItem]]] = {}
_ITEMS_CACHE_SIZE = 512


_CACHES_LOCK = threading.Lock()


def _bounded_put(cache: dict, key: Any, value: Any, size: int) -> None:
    """Put into a per-process cache of at most `size` entries, the oldest going first
    (a lock: claims run on many threads, and evicting while another thread adds
    would fail)."""
    with _CACHES_LOCK:
        if len(cache) >= size and key not in cache:
            cache.pop(next(iter(cache)), None)
        cache[key] = value


def _pack_items(pack: CouponPack) -> list[CouponPackItem]:
    cached = _ITEMS_CACHE.get(pack.pk)
    if cached is not None and cached[0] == pack.updated_at:
        return cached[1]
    items = list(CouponPackItem.objects.filter(pack_id=pack.pk).select_related("template").order_by("id"))
    _bounded_put(_ITEMS_CACHE, pack.pk, (pack.updated_at, items), _ITEMS_CACHE_SIZE)
    return items


_PACK_COLUMNS = (
    "id",
    "name",
    "total_stock",
    "remaining",
    "per_user_limit",
    "claim_starts_at",
    "claim_ends_at",
    "enabled",
    "redis_gate",
    "stock_shards",
    "updated_at",
)


def _claim_read_sql() -> str:
    """One query with all a claim decides on: the pack, its component's
    `enabled`, its activity's status, the user's page claims so far and
    whether any shard holds stock (EXISTS: it stops at the first such shard,
    where a sum read all 64 of a hot pack's shards for every claim). Plain SQL:
    built once, no ORM compilation per claim (the claim's Python time is most of
    its cost under many clients)."""
    claim = Claim._meta.db_table
    columns = ", ".join(f"p.{c}" for c in _PACK_COLUMNS)
    return (
        f"SELECT {columns}, c.enabled, a.status,"
        f" (SELECT COUNT(*) FROM {claim} cl WHERE cl.pack_id = p.id AND cl.user_id = %s AND cl.source = %s),"
        f" {_shards_hold_stock_sql()} {_pack_from_sql()}"
        f" WHERE p.component_id = %s AND c.type = %s"
    )


def _pack_from_sql() -> str:
    """The pack (`p`) with its component (`c`) and activity (`a`): what a claim
    decides on, for the claim's read and the fast path's INSERT … SELECT alike."""
    from activities.models import Activity

    pack, component, activity = CouponPack._meta.db_table, Component._meta.db_table, Activity._meta.db_table
    return f"FROM {pack} p JOIN {component} c ON c.id = p.component_id JOIN {activity} a ON a.id = c.activity_id"


def _shards_hold_stock_sql() -> str:
    """Whether any shard of the pack `p` holds stock (EXISTS stops at the first)."""
    return f"EXISTS (SELECT 1 FROM {CouponStockShard._meta.db_table} s WHERE s.pack_id = p.id AND s.remaining > 0)"


_CLAIM_READ: list[str] = []


def _db_datetime(value: datetime | str | None) -> datetime | None:
    """A datetime column read with plain SQL (naive UTC on MySQL, maybe text on SQLite)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
        if value is None:
            raise ValueError("not a datetime column")
    return timezone.make_aware(value, UTC) if timezone.is_naive(value) else value


@dataclass(frozen=True)
class ClaimRead:
    """What a claim decides on, from one query (_claim_read_sql): the pack (a
    model instance built from the row, never saved), its component's `enabled`,
    its activity's status, the user's page claims of it so far and whether
    any of its shards holds stock."""

    pack: CouponPack
    component_enabled: bool
    activity_status: str
    user_claims: int
    shards_have_stock: bool

    @property
    def has_stock(self) -> bool:
        """Stock left in the pack's counter or in a shard, as read (no lock)."""
        return self.pack.remaining > 0 or self.shards_have_stock


def _component_not_found() -> CouponError:
    # Made only when raised: a DomainError resolves its lazy message when made.
    return CouponError("component_not_found", _("No such component."))


def _pack_for_claim(component_id: int, user_id: str) -> ClaimRead:
    """The component's pack with what a claim decides on, in one query."""
    if not 0 < component_id <= _MAX_ID:
        raise _component_not_found()
    if not _CLAIM_READ:
        _CLAIM_READ.append(_claim_read_sql())
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_READ[0], [user_id, ClaimSource.PAGE, component_id, COMPONENT_TYPE])
        row = cursor.fetchone()
    if row is None:
        if Component.objects.filter(pk=component_id).exists():
            raise CouponError("not_a_coupon_pack", _("This component has no coupon pack to claim."))
        raise _component_not_found()
    values = dict(zip(_PACK_COLUMNS, row, strict=False))
    for field in ("claim_starts_at", "claim_ends_at", "updated_at"):
        values[field] = _db_datetime(values[field])
    values["enabled"], values["redis_gate"] = bool(values["enabled"]), bool(values["redis_gate"])
    pack = CouponPack(component_id=component_id, **values)
    pack._state.adding = False
    return ClaimRead(
        pack=pack,
        component_enabled=bool(row[-4]),
        activity_status=str(row[-3]),
        user_claims=int(row[-2]),
        shards_have_stock=bool(row[-1]),
    )


# --- the hot pack's claim without its read -----------------------------------------
#
# A hot pack (sharded, one claim per user, no Redis gate) is claimed by many users
# at once, each claim one read and five writes. Each process keeps what the last
# full read of the pack found (`_ClaimSnapshot`); while that read allowed claims,
# the next claim of the pack skips the read: its claim row goes in with
# `INSERT … SELECT` whose WHERE asks again, in the same statement, everything the
# read decided on (the pack, its component's `enabled`, the activity's status, the
# window at this claim's time, limit 1, sharded, no gate, stock left) and that the
# pack is the version the snapshot holds (`updated_at`: every service write of a
# pack, its items or their templates touches it), so the snapshot's items and name
# are current. Zero rows: something changed (or the pack sold out); the claim then
# takes the full path, which reads the pack and replaces the snapshot. A duplicate
# (pack, user, 1) key is the user's limit, as in `_claim_take_sharded`. The stock is
# still taken last from a shard (`_shard_take`, which checks `enabled` again), the
# guarantees are the same database keys and conditional updates. One round trip
# and the read (the costliest statement of the claim) fewer per hot-pack claim.


@dataclass(frozen=True)
class _ClaimSnapshot:
    pack: CouponPack
    items: list[CouponPackItem]
    fast: bool  # the read allowed a claim of a pack the fast path handles


_SNAPSHOTS: dict[int, _ClaimSnapshot] = {}
_SNAPSHOTS_SIZE = 512
_FAST_INSERT: list[str] = []


def _claim_snapshot_keep(component_id: int, read: ClaimRead, items: list[CouponPackItem]) -> None:
    """What a full read found, once it passed the pack-wide checks (window, items):
    the next claims of the pack skip the read while it held stock and the pack is
    one the fast path handles. A claim the fast path cannot make drops it."""
    pack = read.pack
    fast = read.has_stock and pack.stock_shards > 1 and pack.per_user_limit == 1 and not pack.redis_gate
    _bounded_put(_SNAPSHOTS, component_id, _ClaimSnapshot(pack=pack, items=items, fast=fast), _SNAPSHOTS_SIZE)


def _claim_snapshot_fast(component_id: int) -> _ClaimSnapshot | None:
    snapshot = _SNAPSHOTS.get(component_id)
    return snapshot if snapshot is not None and snapshot.fast else None


def _fast_insert_sql() -> str:
    return (
        f"INSERT INTO {Claim._meta.db_table} (pack_id, user_id, sequence, source, claimed_at, redeem_code_id)"
        f" SELECT p.id, %s, 1, %s, %s, NULL {_pack_from_sql()}"
        f" WHERE p.id = %s AND p.component_id = %s AND c.type = %s AND p.updated_at = %s"
        f" AND p.enabled AND c.enabled AND a.status = %s"
        f" AND p.per_user_limit = 1 AND p.stock_shards > 1 AND NOT p.redis_gate"
        f" AND (p.claim_starts_at IS NULL OR p.claim_starts_at <= %s)"
        f" AND (p.claim_ends_at IS NULL OR p.claim_ends_at > %s)"
        f" AND (p.remaining > 0 OR {_shards_hold_stock_sql()})"
    )


def _claim_fast(component_id: int, user_id: str, now: datetime) -> Claim | None:
    """The hot pack's claim without its read (above), or None: take the full path."""
    snapshot = _claim_snapshot_fast(component_id)
    if snapshot is None:
        return None
    pack, ops = snapshot.pack, connection.ops
    if not _FAST_INSERT:
        _FAST_INSERT.append(_fast_insert_sql())
    at = ops.adapt_datetimefield_value(now)
    params = [
        user_id,
        ClaimSource.PAGE,
        at,
        pack.pk,
        component_id,
        COMPONENT_TYPE,
        ops.adapt_datetimefield_value(pack.updated_at),
        ActivityStatus.ONLINE,
        at,
        at,
    ]
    try:
        with connection.cursor() as cursor:
            cursor.execute(_FAST_INSERT[0], params)
            if cursor.rowcount != 1:
                _SNAPSHOTS.pop(component_id, None)  # the full read decides, and keeps a new one
                return None
            claim_id = cursor.lastrowid
    except IntegrityError:
        raise limit_reached(1) from None
    claim = Claim(id=claim_id, pack=pack, user_id=user_id, sequence=1, source=ClaimSource.PAGE, claimed_at=now)
    claim._state.adding = False
    claim.issued = _coupons_issue(claim=claim, items=snapshot.items, now=now)
    # Last, after the API door's idempotency record, as in _claim_take_sharded.
    write_last(lambda: _shard_take(pack))
    return claim


def _claim_window_check(read: ClaimRead, now: datetime) -> None:
    pack = read.pack
    if not pack.enabled or not read.component_enabled:
        raise pack_disabled()
    if read.activity_status != ActivityStatus.ONLINE:
        raise CouponError("activity_not_online", _("This activity is not running."))
    if pack.claim_starts_at and now < pack.claim_starts_at:
        raise CouponError("not_started", _("Claiming has not started yet."))
    if pack.claim_ends_at and now >= pack.claim_ends_at:
        raise CouponError("ended", _("Claiming has ended."))


def _page_claim_count(pack: CouponPack, user_id: str) -> int:
    return Claim.objects.filter(pack=pack, user_id=user_id, source=ClaimSource.PAGE).count()


def coupon_pack_claim_check(*, component_id: int, user_id: str, now: datetime | None = None) -> ClaimRead | None:
    """The claim's refusals that take no lock, made before its transaction (reads
    only; the API door runs it first: `core.idempotency.idempotent_call_once`'s
    `check`), so a refusal costs one read and the stored answer. Returns what the
    read found, for `coupon_pack_claim(checked=…)`, or None when the pack's claims
    take the fast path (no read: its INSERT asks the same questions). Raises
    CouponError."""
    now = now or timezone.now()
    if _claim_snapshot_fast(component_id) is not None:
        return None
    return _claim_checked(component_id, user_id, now)


def _claim_checked(component_id: int, user_id: str, now: datetime) -> ClaimRead:
    """The full read and its cheap refusals (they take no lock; the guarantees come
    in the transaction). Keeps the pack's snapshot for the fast path."""
    read = _pack_for_claim(component_id, user_id)
    pack = read.pack
    _claim_window_check(read, now)
    items = _pack_items(pack)
    if not items:
        raise pack_empty()
    _claim_snapshot_keep(component_id, read, items)
    if read.user_claims >= pack.per_user_limit:
        raise limit_reached(pack.per_user_limit)
    if not read.has_stock:
        raise sold_out()
    return read


@transaction.atomic(savepoint=False)
def coupon_pack_claim(
    *, component_id: int, user_id: str, now: datetime | None = None, checked: ClaimRead | None = None
) -> Claim:
    """Issue one pack of the component's coupon pack to `user_id`, or raise
    CouponError (sold_out, limit_reached, pack_disabled, not_started, ended...).

    `checked`: what `coupon_pack_claim_check` read just before, outside the
    transaction (else the claim reads the pack itself, or takes the fast path).
    The returned claim carries its coupons in `claim.issued` (claim_payload
    answers from them without reading the rows back). No savepoint of its own:
    a refusal rolls back the caller's transaction, as the API door does anyway.
    """
    now = now or timezone.now()
    if checked is None:
        fast = _claim_fast(component_id, user_id, now)
        if fast is not None:
            return fast
        checked = _claim_checked(component_id, user_id, now)
    read, pack = checked, checked.pack
    items = _pack_items(pack)
    if not items:  # the check found items; a copy evicted meanwhile is read again
        raise pack_empty()
    claimed = read.user_claims

    gated = False
    if pack.redis_gate:
        left = _gate_take(pack)
        if left == gate.EMPTY:
            raise sold_out()
        gated = left != gate.MISSING
    try:
        if pack.stock_shards > 1:
            claim = _claim_take_sharded(pack=pack, user_id=user_id, items=items, now=now, claimed=claimed)
        else:
            claim = _claim_take(pack=pack, user_id=user_id, items=items, now=now)
    except CouponError as exc:
        if gated:
            _gate_quietly(gate.gate_close if exc.code == "sold_out" else gate.gate_give_back, pack)
        raise
    except Exception:
        if gated:
            _gate_quietly(gate.gate_give_back, pack)
        raise
    return claim


def _gate_take(pack: CouponPack) -> int:
    """A token from the pack's Redis gate; MISSING (no gate: the database alone
    decides) when Redis cannot be reached, since the gate only sheds load."""
    try:
        left = gate.gate_take(pack_id=pack.pk)
        if left == gate.MISSING:
            gate.gate_set(pack_id=pack.pk, remaining=coupon_pack_remaining(pack=pack), only_if_missing=True)
            left = gate.gate_take(pack_id=pack.pk)
        return left
    except RedisError:
        logger.warning("redis gate unavailable: the database alone decides", extra={"pack_id": pack.pk})
        return gate.MISSING


def _gate_quietly(operation: Callable[..., object], pack: CouponPack) -> None:
    """Give a token back or close the gate; drift from a failure here is repaired
    by the gate reconciliation job."""
    try:
        operation(pack_id=pack.pk)
    except RedisError:
        logger.warning("redis gate not updated; reconciliation will repair it", extra={"pack_id": pack.pk})


def _claim_take(*, pack: CouponPack, user_id: str, items: list[CouponPackItem], now: datetime) -> Claim:
    # One counter (the pack's row): the stock first. Taking the pack's row lock
    # before inserting rows that refer to the pack matters on InnoDB: a
    # foreign-key check takes a shared lock on the pack row, and two claims
    # holding it while both wait to upgrade it would deadlock. So the lock
    # section is kept short instead: one indexed count, two inserts, no savepoints.
    taken = CouponPack.objects.filter(pk=pack.pk, enabled=True, remaining__gt=0).update(remaining=F("remaining") - 1)
    if not taken and _stock_shards_fold(pack.pk):
        # Stock left in shards by a pack that is no longer sharded: back in the counter.
        taken = CouponPack.objects.filter(pk=pack.pk, enabled=True, remaining__gt=0).update(
            remaining=F("remaining") - 1
        )
    if not taken:
        if not CouponPack.objects.filter(pk=pack.pk, enabled=True).exists():
            raise pack_disabled()
        raise sold_out()
    # We hold the pack's row lock: every earlier claim of this pack has
    # committed, so the count is exact. Slots 1..limit are unique per (pack,
    # user): the unique key, not this count, is what makes the limit hold.
    sequence = _page_claim_count(pack, user_id) + 1
    if sequence > pack.per_user_limit:
        raise limit_reached(pack.per_user_limit)
    try:
        claim = Claim.objects.create(
            pack=pack, user_id=user_id, sequence=sequence, source=ClaimSource.PAGE, claimed_at=now
        )
    except IntegrityError:
        # Only reachable if something bypassed the row lock; the enclosing
        # atomic block rolls the decrement back with the refusal.
        raise limit_reached(pack.per_user_limit) from None
    claim.issued = _coupons_issue(claim=claim, items=items, now=now)
    return claim


def _claim_take_sharded(
    *, pack: CouponPack, user_id: str, items: list[CouponPackItem], now: datetime, claimed: int
) -> Claim:
    """The claim of a hot pack: its rows first, then one unit from one of its
    stock shards as the last statement before the commit, so a shard's row
    lock is held for one round trip and the commit only.

    Lock order (every writer of a sharded pack's stock follows it): the pack
    row, then shard rows. A claim's inserts take a shared lock on the pack row
    (foreign key), then its decrement one shard row; folding and spreading the
    shards (stock change, code generation, shard count change) lock the pack
    row for update first, then the shard rows by slot. No claim waits for a
    claim of another shard. Only a claim that finds every shard empty and
    stock left in the reservoir takes the pack row for update (while holding
    its shared lock): two such claims at once deadlock, and the victim is run
    again whole by `db_retry`. The reservoir is empty except right after the
    shard count was raised, since stock is spread over the shards when a pack is
    made and after every fold.
    """
    # No pack lock here, so the count made with the pack read may miss a
    # concurrent claim of the same user: the unique (pack, user, sequence) key
    # refuses the second one.
    if pack.per_user_limit == 1:
        # A duplicate key here means the user's one slot belongs to a committed
        # claim (InnoDB waits for an uncommitted one): the limit, exactly.
        try:
            claim = Claim.objects.create(
                pack=pack, user_id=user_id, sequence=1, source=ClaimSource.PAGE, claimed_at=now
            )
        except IntegrityError:
            raise limit_reached(pack.per_user_limit) from None
    else:
        claim = _claim_slot_insert(pack=pack, user_id=user_id, first=claimed + 1, now=now)
    claim.issued = _coupons_issue(claim=claim, items=items, now=now)
    if pack.redis_gate:
        _shard_take(pack)  # here, so a refusal passes the gate's give-back (coupon_pack_claim)
    else:
        # Last, after the API door's idempotency record: the shard's row lock is
        # then held for the commit alone.
        write_last(lambda: _shard_take(pack))
    return claim


def _claim_slot_insert(*, pack: CouponPack, user_id: str, first: int, now: datetime) -> Claim:
    """The user's next free slot from `first` on (a savepoint per try, so a
    slot taken by the same user's concurrent claim moves on to the next)."""
    for sequence in range(first, pack.per_user_limit + 1):
        try:
            with transaction.atomic():
                return Claim.objects.create(
                    pack=pack, user_id=user_id, sequence=sequence, source=ClaimSource.PAGE, claimed_at=now
                )
        except IntegrityError:
            continue
    raise limit_reached(pack.per_user_limit)


_SHARD_TAKE: list[str] = []


def _shard_update(pack_id: int, slot: int) -> int:
    """Take one unit of shard `slot`, only while the pack is enabled (claims
    stop at once when it is disabled). Plain SQL, built once. On MySQL the pack
    is joined (a tenth cheaper for the server than the EXISTS subquery, measured;
    the same shared lock on the pack row, which the claim's foreign key holds
    already); SQLite has no UPDATE … JOIN."""
    if not _SHARD_TAKE:
        shard, pack = CouponStockShard._meta.db_table, CouponPack._meta.db_table
        if connection.vendor == "mysql":
            _SHARD_TAKE.append(
                f"UPDATE {shard} s JOIN {pack} p ON p.id = s.pack_id SET s.remaining = s.remaining - 1"
                f" WHERE s.pack_id = %s AND s.slot = %s AND s.remaining > 0 AND p.enabled"
            )
        else:
            _SHARD_TAKE.append(
                f"UPDATE {shard} SET remaining = remaining - 1 WHERE pack_id = %s AND slot = %s AND remaining > 0"
                f" AND EXISTS (SELECT 1 FROM {pack} p WHERE p.id = {shard}.pack_id AND p.enabled)"
            )
    with connection.cursor() as cursor:
        cursor.execute(_SHARD_TAKE[0], [pack_id, slot])
        return int(cursor.rowcount)


def _shard_take(pack: CouponPack) -> None:
    """Take one unit from a random shard, else from any non-empty one, else
    from the reservoir; sold out only when all are empty."""
    if _shard_update(pack.pk, random.randrange(pack.stock_shards)):
        return
    for _try in range(pack.stock_shards + 2):
        others = list(CouponStockShard.objects.filter(pack_id=pack.pk, remaining__gt=0).values_list("slot", flat=True))
        random.shuffle(others)
        for other in others:
            if _shard_update(pack.pk, other):
                return
        if not others:
            break
    # Every shard is empty: the reservoir (pack row; see the lock order above).
    # Read first, without a lock: at sell-out every claim in flight gets here,
    # and each asking for the pack row's exclusive lock while the others hold
    # their shared one (the claim rows' foreign key) would deadlock in waves.
    # The committed reservoir is 0 except in the rare case the docstring of
    # _claim_take_sharded names; only then is the row locked and decremented.
    state = CouponPack.objects.filter(pk=pack.pk).values_list("enabled", "remaining").first()
    if state is None or not state[0]:
        raise pack_disabled()
    if state[1] > 0 and CouponPack.objects.filter(pk=pack.pk, enabled=True, remaining__gt=0).update(
        remaining=F("remaining") - 1
    ):
        return
    raise sold_out()


def coupon_stock_shards_ensure(*, pack: CouponPack) -> None:
    """The pack's shard rows (empty ones for slots it lacks), with the stock
    spread over them. Made with the pack, so claims never create them."""
    if pack.stock_shards > 1:
        CouponStockShard.objects.bulk_create(
            [CouponStockShard(pack_id=pack.pk, slot=n) for n in range(pack.stock_shards)], ignore_conflicts=True
        )
    with transaction.atomic():
        _stock_shards_fold(pack.pk)
        _stock_shards_spread(pack.pk)


def _stock_shards_lock(pack_id: int) -> tuple[int, int, list[CouponStockShard]]:
    """Lock the pack row, then its shard rows by slot (the lock order); returns
    (the pack's stock_shards, its reservoir, the shards)."""
    row = CouponPack.objects.select_for_update().filter(pk=pack_id).values("stock_shards", "remaining").first()
    if row is None:
        return 1, 0, []
    shards = list(CouponStockShard.objects.select_for_update().filter(pack_id=pack_id).order_by("slot"))
    return row["stock_shards"], row["remaining"], shards


def _stock_shards_fold(pack_id: int) -> int:
    """Move every shard's stock back into the pack's `remaining` (inside the
    caller's transaction, which then holds the pack and its shards until it
    commits), so the pack's counter alone is the stock left; returns how much
    moved. Spread it again with `_stock_shards_spread` when done."""
    _remaining, _total, shards = _stock_shards_lock(pack_id)
    total = sum(shard.remaining for shard in shards)
    if total:
        CouponStockShard.objects.filter(pk__in=[s.pk for s in shards if s.remaining]).update(remaining=0)
        CouponPack.objects.filter(pk=pack_id).update(remaining=F("remaining") + total)
    return total


def _stock_shards_spread(pack_id: int) -> None:
    """Move the pack's reservoir into its shards, evenly (a pack with one
    counter keeps it in its own row). Takes the locks in order, like a fold."""
    stock_shards, reservoir, shards = _stock_shards_lock(pack_id)
    slots = [s for s in shards if s.slot < stock_shards]
    if stock_shards <= 1 or not reservoir or not slots:
        return
    share, extra = divmod(reservoir, len(slots))
    CouponPack.objects.filter(pk=pack_id).update(remaining=F("remaining") - reservoir)
    for index, shard in enumerate(slots):
        amount = share + (1 if index < extra else 0)
        if amount:
            CouponStockShard.objects.filter(pk=shard.pk).update(remaining=F("remaining") + amount)


# --- offline codes --------------------------------------------------------------


@transaction.atomic
def redeem_codes_generate(
    *, pack: CouponPack, count: int, batch: str = "", expires_at: datetime | None = None
) -> list[RedeemCode]:
    """Generate `count` offline codes for `pack`, taking their packs from its
    stock (refused when the stock is short)."""
    if not 1 <= count <= MAX_CODES_PER_BATCH:
        raise CouponError(
            "invalid_count", _("Generate between 1 and %(max)s codes at a time.") % {"max": MAX_CODES_PER_BATCH}
        )
    _stock_shards_fold(pack.pk)
    taken = CouponPack.objects.filter(pk=pack.pk, remaining__gte=count).update(remaining=F("remaining") - count)
    if not taken:
        left = CouponPack.objects.get(pk=pack.pk).remaining
        raise CouponError(
            "insufficient_stock",
            _("Only %(left)s packs remain; cannot reserve %(count)s for codes.") % {"left": left, "count": count},
        )
    _stock_shards_spread(pack.pk)
    for attempt in range(3):
        codes = [RedeemCode(code=code_new(), pack=pack, batch=batch, expires_at=expires_at) for _ in range(count)]
        try:
            with transaction.atomic():
                return RedeemCode.objects.bulk_create(codes, batch_size=1000)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def redeem_code_redeem(*, code: str, user_id: str, now: datetime | None = None) -> Claim:
    """A user turns an offline code into a pack in their wallet, once per code."""
    now = now or timezone.now()
    normalized = code_normalize(code or "")
    redeem_code = RedeemCode.objects.select_related("pack").filter(code=normalized).first() if normalized else None
    if redeem_code is None:
        # Counted against the user's hour of guesses (Redis: stays counted when
        # this transaction rolls back; a replayed answer never gets here).
        redeem_code_attempt_failed(user_id=user_id)
        raise CouponError("code_not_found", _("This code does not exist."))
    if redeem_code.redeemed_at is not None:
        raise _code_already_redeemed(redeem_code, user_id)
    if redeem_code.expires_at and now >= redeem_code.expires_at:
        raise CouponError("code_expired", _("This code has expired."))
    pack = redeem_code.pack
    if not pack.enabled:
        raise pack_disabled()
    items = list(pack.items.select_related("template"))
    if not items:
        raise pack_empty()
    consumed = RedeemCode.objects.filter(pk=redeem_code.pk, redeemed_at__isnull=True).update(
        redeemed_by=user_id, redeemed_at=now
    )
    if not consumed:
        raise _code_already_redeemed(RedeemCode.objects.get(pk=redeem_code.pk), user_id)
    claim = Claim.objects.create(
        pack=pack, user_id=user_id, sequence=None, source=ClaimSource.CODE, redeem_code=redeem_code, claimed_at=now
    )
    claim.issued = _coupons_issue(claim=claim, items=items, now=now)
    return claim


CODE_FAILURES_PER_HOUR = 10


def _code_failures_key(user_id: str) -> str:
    return f"coupons:code_failures:{user_id}"


def redeem_code_attempts_check(*, user_id: str) -> None:
    """Refuse code redemption for an hour after CODE_FAILURES_PER_HOUR unknown codes
    (nobody guesses codes by brute force)."""
    failures = get_redis().get(_code_failures_key(user_id))
    if failures is not None and int(failures) >= CODE_FAILURES_PER_HOUR:
        raise CouponError("too_many_attempts", _("Too many wrong codes; try again in an hour."))


def redeem_code_attempt_failed(*, user_id: str) -> None:
    # One MULTI: the hour's window gets its expiry with the first failure, so a
    # crash between two commands can never leave a counter that lasts forever.
    key = _code_failures_key(user_id)
    pipe = get_redis().pipeline()
    pipe.set(key, 0, ex=3600, nx=True)
    pipe.incr(key)
    pipe.execute()


def _code_already_redeemed(redeem_code: RedeemCode, user_id: str) -> CouponError:
    if redeem_code.redeemed_by == user_id:
        return CouponError("code_already_redeemed", _("You have already redeemed this code."))
    return CouponError("code_already_redeemed", _("This code has already been redeemed."))


# --- redemption by the order system --------------------------------------------


def coupon_discount_compute(*, template: CouponTemplate, order_amount_fen: int) -> int:
    """Fen off an order of `order_amount_fen` (0 when the minimum spend is not met)."""
    if order_amount_fen < template.min_spend_fen:
        return 0
    if template.kind == CouponKind.PERCENT:
        off = order_amount_fen * template.value // 100
        if template.max_discount_fen is not None:
            off = min(off, template.max_discount_fen)
    else:
        off = template.value
    return max(0, min(off, order_amount_fen))


def _coupon_of(*, code: str, user_id: str) -> Coupon:
    """The coupon with this code, refused unless it is `user_id`'s (with what its payload needs)."""
    coupon = Coupon.objects.select_related("template", "claim").filter(code=code_normalize(code or "")).first()
    if coupon is None:
        raise CouponError("coupon_not_found", _("No coupon has this code."))
    if coupon.user_id != user_id:
        raise CouponError("coupon_not_owned", _("This coupon belongs to another user."))
    return coupon


@transaction.atomic
def coupon_redeem(
    *, code: str, order_id: str, user_id: str, order_amount_fen: int | None = None, now: datetime | None = None
) -> tuple[Coupon, bool]:
    """Mark a coupon used by an order. Idempotent per (coupon, order): a repeat
    for the same order returns (coupon, False); another order is refused."""
    now = now or timezone.now()
    coupon = _coupon_of(code=code, user_id=user_id)
    if coupon.status == CouponStatus.USED:
        if coupon.order_id == order_id:
            return coupon, False
        raise CouponError("coupon_used", _("This coupon was already used by another order."))
    if coupon.status == CouponStatus.EXPIRED or now >= coupon.valid_until:
        raise CouponError("coupon_expired", _("This coupon has expired."))
    if now < coupon.valid_from:
        raise CouponError("coupon_not_yet_valid", _("This coupon is not valid yet."))
    if order_amount_fen is not None and order_amount_fen < coupon.template.min_spend_fen:
        minimum = coupon.template.min_spend_fen
        raise CouponError(
            "min_spend_not_met", _("This coupon needs an order of at least %(minimum)s fen.") % {"minimum": minimum}
        )
    used = Coupon.objects.filter(pk=coupon.pk, status=CouponStatus.UNUSED, valid_until__gt=now).update(
        status=CouponStatus.USED, order_id=order_id, used_at=now
    )
    if not used:  # a concurrent redeem or the expiry job got there first
        coupon.refresh_from_db(fields=["status", "order_id", "used_at"])
        if coupon.status == CouponStatus.USED and coupon.order_id == order_id:
            return coupon, False
        if coupon.status == CouponStatus.USED:
            raise CouponError("coupon_used", _("This coupon was already used by another order."))
        raise CouponError("coupon_expired", _("This coupon has expired."))
    coupon.status, coupon.order_id, coupon.used_at = CouponStatus.USED, order_id, now
    return coupon, True


@transaction.atomic
def coupon_release(*, code: str, order_id: str, user_id: str, now: datetime | None = None) -> tuple[Coupon, bool]:
    """Give a coupon back when its order was cancelled or not paid. Idempotent:
    releasing a coupon that is not used by this order changes nothing; a coupon
    whose validity ended meanwhile goes back as expired."""
    now = now or timezone.now()
    coupon = _coupon_of(code=code, user_id=user_id)
    if coupon.status == CouponStatus.USED and coupon.order_id != order_id:
        raise CouponError("coupon_used", _("This coupon is used by another order."))
    back = CouponStatus.UNUSED if now < coupon.valid_until else CouponStatus.EXPIRED
    released = Coupon.objects.filter(pk=coupon.pk, status=CouponStatus.USED, order_id=order_id).update(
        status=back, order_id="", used_at=None
    )
    coupon.refresh_from_db(fields=["status", "order_id", "used_at"])
    return coupon, bool(released)


# --- expiry, packs, gates ---------------------------------------------------------


def coupons_expire(*, now: datetime | None = None, chunk: int = 5000) -> int:
    """Mark unused coupons past their validity as expired, in chunks so a big
    backlog never holds long locks. Returns how many were marked."""
    now = now or timezone.now()
    total = 0
    while True:
        ids = list(
            Coupon.objects.filter(status=CouponStatus.UNUSED, valid_until__lte=now).values_list("pk", flat=True)[:chunk]
        )
        if not ids:
            return total
        with transaction.atomic():
            total += Coupon.objects.filter(pk__in=ids, status=CouponStatus.UNUSED, valid_until__lte=now).update(
                status=CouponStatus.EXPIRED
            )


@transaction.atomic
def coupon_pack_create(
    *,
    name: str,
    total_stock: int,
    items: list[tuple[CouponTemplate, int]],
    component: Component | None = None,
    per_user_limit: int = 1,
    claim_starts_at: datetime | None = None,
    claim_ends_at: datetime | None = None,
    description: str = "",
    enabled: bool = True,
    redis_gate: bool = False,
    stock_shards: int = 1,
) -> CouponPack:
    pack = CouponPack(
        stock_shards=stock_shards,
        component=component,
        name=name,
        description=description,
        total_stock=total_stock,
        remaining=total_stock,
        per_user_limit=per_user_limit,
        claim_starts_at=claim_starts_at,
        claim_ends_at=claim_ends_at,
        enabled=enabled,
        redis_gate=redis_gate,
    )
    _checked(pack)
    pack.save()
    coupon_pack_items_set(pack=pack, items=items)
    coupon_stock_shards_ensure(pack=pack)
    return pack


@transaction.atomic
def coupon_pack_stock_change(*, pack: CouponPack, total_stock: int) -> CouponPack:
    """Raise or lower a pack's total stock; `remaining` moves by the same amount,
    atomically, and the stock can never drop below what is already taken."""
    # remaining + new total - old total, added before it is subtracted: the columns
    # are UNSIGNED on MySQL, where any negative intermediate is an error (1690), and
    # the WHERE guarantees remaining + new total >= old total on the row it updates.
    # `remaining` is assigned before `total_stock` (MySQL evaluates SET left to
    # right with the new values; keep this order). A hot pack's shards are folded
    # back into `remaining` first, so the condition sees all of the stock left.
    _stock_shards_fold(pack.pk)
    changed = CouponPack.objects.filter(pk=pack.pk, total_stock__lte=F("remaining") + total_stock).update(
        remaining=F("remaining") + total_stock - F("total_stock"), total_stock=total_stock
    )
    if not changed:
        pack.refresh_from_db()
        taken = pack.total_stock - pack.remaining
        raise CouponError(
            "stock_below_taken",
            _("%(taken)s packs are already taken; the stock cannot go below that.") % {"taken": taken},
        )
    _stock_shards_spread(pack.pk)
    pack.refresh_from_db()
    if pack.redis_gate:
        transaction.on_commit(lambda: coupon_gate_reconcile(pack_id=pack.pk))
    return pack


def coupon_packs_enable(*, pack_ids: list[int], enabled: bool) -> int:
    """Disable (claims stop at once: the decrement requires enabled) or re-enable packs."""
    with transaction.atomic():
        count = CouponPack.objects.filter(pk__in=pack_ids).update(enabled=enabled, updated_at=timezone.now())
    for pack_id in pack_ids:
        coupon_gate_reconcile(pack_id=pack_id)
    return count


# --- templates and packs, as operators edit them -----------------------------------

TEMPLATE_FIELDS = (
    "name",
    "kind",
    "value",
    "min_spend_fen",
    "max_discount_fen",
    "validity_kind",
    "valid_from",
    "valid_until",
    "valid_days",
    "usage_notes",
)
# What an operator edits on a pack; `remaining` never (the platform keeps it) and
# `total_stock` only through coupon_pack_stock_change (it moves `remaining`).
PACK_FIELDS = (
    "name",
    "description",
    "component",
    "per_user_limit",
    "claim_starts_at",
    "claim_ends_at",
    "enabled",
    "redis_gate",
    "stock_shards",
)


def _checked(instance: models.Model, *, exclude: list[str] | None = None) -> None:
    """The model's own rules (field bounds, check constraints) as a domain error."""
    try:
        instance.full_clean(exclude=exclude, validate_unique=False)
    except ValidationError as exc:
        details = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        message = "; ".join(f"{k}: {' '.join(v)}" if k != "__all__" else " ".join(v) for k, v in details.items())
        raise CouponError("invalid", message, details=details) from None


def _attname(name: str) -> str:
    """The column attribute of a pack field (`component` -> `component_id`)."""
    field = CouponPack._meta.get_field(name)
    assert isinstance(field, models.Field)  # PACK_FIELDS are concrete fields
    return field.attname


def _unknown_fields(data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise CouponError("invalid", _("Not editable here: %(fields)s.") % {"fields": ", ".join(unknown)})


@transaction.atomic
def coupon_template_create(**fields: Any) -> CouponTemplate:
    """A coupon template from the operator's fields (TEMPLATE_FIELDS); refused
    (CouponError `invalid`) when they break a template rule."""
    _unknown_fields(fields, TEMPLATE_FIELDS)
    template = CouponTemplate(**fields)
    _checked(template)
    template.save()
    return template


@transaction.atomic
def coupon_template_update(*, template: CouponTemplate, **fields: Any) -> CouponTemplate:
    """Change a template. Coupons already issued keep their validity and values
    as issued; the packs using it are touched (`updated_at`), so claims read the
    new template at once (see _pack_items)."""
    _unknown_fields(fields, TEMPLATE_FIELDS)
    for field, value in fields.items():
        setattr(template, field, value)
    _checked(template)
    if fields:
        template.save(update_fields=[*fields, "updated_at"])
        CouponPack.objects.filter(items__template=template).update(updated_at=timezone.now())
    return template


@transaction.atomic
def coupon_pack_items_set(*, pack: CouponPack, items: list[tuple[CouponTemplate, int]]) -> None:
    """The pack's coupons become exactly `items` (template, quantity); the pack
    is touched so claims use the new items at once."""
    wanted: dict[int, int] = {}
    for template, quantity in items:
        if quantity < 1:
            raise CouponError("invalid", _("A pack holds at least one of each coupon it lists."))
        if template.pk in wanted:
            raise CouponError(
                "invalid", _("Coupon “%(template)s” is listed twice; give it one quantity.") % {"template": template}
            )
        wanted[template.pk] = quantity
    current = {item.template_id: item for item in CouponPackItem.objects.filter(pack=pack)}
    CouponPackItem.objects.filter(pack=pack).exclude(template_id__in=list(wanted)).delete()
    for template_id, quantity in wanted.items():
        item = current.get(template_id)
        if item is None:
            CouponPackItem.objects.create(pack=pack, template_id=template_id, quantity=quantity)
        elif item.quantity != quantity:
            CouponPackItem.objects.filter(pk=item.pk).update(quantity=quantity)
    CouponPack.objects.filter(pk=pack.pk).update(updated_at=timezone.now())


@transaction.atomic
def coupon_pack_update(*, pack: CouponPack, **fields: Any) -> CouponPack:
    """Change a pack's settings (PACK_FIELDS), its `total_stock` and its
    `items` ([(template, quantity)], see coupon_pack_items_set), all or nothing.
    A new total goes through coupon_pack_stock_change first (refused below what
    is taken: then nothing changes); a new shard count spreads the stock over
    the new shards; the Redis gate follows `enabled` and `redis_gate` after the
    commit. The stock counter is never written from here (a form holds a stale
    value); a claim landing meanwhile is never undone."""
    total_stock = fields.pop("total_stock", None)
    items = fields.pop("items", None)
    data = fields
    _unknown_fields(data, PACK_FIELDS)
    if total_stock is not None and total_stock != CouponPack.objects.get(pk=pack.pk).total_stock:
        coupon_pack_stock_change(pack=pack, total_stock=total_stock)
    if items is not None:
        coupon_pack_items_set(pack=pack, items=items)
    fresh = CouponPack.objects.get(pk=pack.pk)
    for field, value in data.items():
        setattr(fresh, field, value)
    _checked(fresh, exclude=["remaining"])
    if data:
        columns = [_attname(f) for f in data]
        values = {c: getattr(fresh, c) for c in columns}
        CouponPack.objects.filter(pk=pack.pk).update(**values, updated_at=timezone.now())
    if "stock_shards" in data:
        coupon_stock_shards_ensure(pack=fresh)
    if {"enabled", "redis_gate"} & set(data):
        transaction.on_commit(lambda: coupon_gate_reconcile(pack_id=pack.pk))
    pack.refresh_from_db()
    return pack


def coupon_gate_reconcile(*, pack_id: int) -> int | None:
    """Set a pack's Redis gate to the database's remaining stock (drop it when the
    pack is not gated). Returns the drift that was repaired, or None."""
    pack = CouponPack.objects.filter(pk=pack_id).first()
    if pack is None or not pack.redis_gate:
        gate.gate_drop(pack_id=pack_id)
        return None
    target = coupon_pack_remaining(pack=pack) if pack.enabled else 0
    current = gate.gate_read(pack_id=pack_id)
    if current != target:
        gate.gate_set(pack_id=pack_id, remaining=target)
        logger.info("coupon gate repaired", extra={"pack_id": pack_id, "gate": current, "database": target})
        return None if current is None else current - target
    return 0


def coupon_gates_reconcile() -> dict[int, int | None]:
    ids = CouponPack.objects.filter(redis_gate=True).values_list("pk", flat=True)
    return {pack_id: coupon_gate_reconcile(pack_id=pack_id) for pack_id in ids}


# --- component clone hook ---------------------------------------------------------


@transaction.atomic
def coupon_pack_clone(*, source: Component, target: Component) -> None:
    """Clone hook of the coupon_pack component type: the copy gets its own pack
    with the same settings and full stock; never claims, coupons or codes. Like
    the activity's dates, the claim window is not copied: a copy is scheduled anew."""
    pack = CouponPack.objects.filter(component=source).first()
    if pack is None:
        return
    coupon_pack_create(
        component=target,
        name=pack.name,
        description=pack.description,
        total_stock=pack.total_stock,
        per_user_limit=pack.per_user_limit,
        enabled=pack.enabled,
        redis_gate=pack.redis_gate,
        stock_shards=pack.stock_shards,
        items=[(item.template, item.quantity) for item in pack.items.select_related("template")],
    )
