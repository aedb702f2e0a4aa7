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
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import RedisError
from rest_framework import status

from components.models import Component
from core.errors import ApiError
from core.redis import get_redis
from coupons import gate
from coupons.codes import code_new, code_normalize
from coupons.models import (
    Claim,
    ClaimSource,
    Coupon,
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
        return template.valid_from, template.valid_until
    return claimed_at, claimed_at + timedelta(days=template.valid_days)


def _coupons_issue(*, claim: Claim, items: list[CouponPackItem], now: datetime) -> list[Coupon]:
    coupons = []
    for item in items:
        valid_from, valid_until = coupon_validity_compute(template=item.template, claimed_at=now)
        for _ in range(item.quantity):
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


def _pack_for_component(component_id: int) -> CouponPack:
    not_found = ApiError("component_not_found", "No such component.", status.HTTP_404_NOT_FOUND)
    if not 0 < component_id <= _MAX_ID:
        raise not_found
    try:
        pack = CouponPack.objects.select_related("component__activity").get(
            component_id=component_id, component__type=COMPONENT_TYPE
        )
    except CouponPack.DoesNotExist:
        if Component.objects.filter(pk=component_id).exists():
            raise ApiError(
                "not_a_coupon_pack", "This component has no coupon pack to claim.", status.HTTP_404_NOT_FOUND
            ) from None
        raise not_found from None
    return pack


def _claim_window_check(pack: CouponPack, now: datetime) -> None:
    if not pack.enabled or (pack.component is not None and not pack.component.enabled):
        raise ApiError("pack_disabled", "This coupon pack is no longer available.", status.HTTP_409_CONFLICT)
    activity = pack.component.activity if pack.component is not None else None
    if activity is not None and activity.status != "online":
        raise ApiError("activity_not_online", "This activity is not running.", status.HTTP_409_CONFLICT)
    if pack.claim_starts_at and now < pack.claim_starts_at:
        raise ApiError("not_started", "Claiming has not started yet.", status.HTTP_409_CONFLICT)
    if pack.claim_ends_at and now >= pack.claim_ends_at:
        raise ApiError("ended", "Claiming has ended.", status.HTTP_409_CONFLICT)


def _sold_out() -> ApiError:
    return ApiError("sold_out", "All packs have been claimed.", status.HTTP_409_CONFLICT)


def _limit_reached(limit: int) -> ApiError:
    return ApiError(
        "limit_reached", f"You have already claimed this pack {limit} time(s), the limit.", status.HTTP_409_CONFLICT
    )


def _page_claim_count(pack: CouponPack, user_id: str) -> int:
    return Claim.objects.filter(pack=pack, user_id=user_id, source=ClaimSource.PAGE).count()


@transaction.atomic
def coupon_pack_claim(*, component_id: int, user_id: str, now: datetime | None = None) -> Claim:
    """Issue one pack of the component's coupon pack to `user_id`, or raise
    ApiError (sold_out, limit_reached, pack_disabled, not_started, ended...)."""
    now = now or timezone.now()
    pack = _pack_for_component(component_id)
    _claim_window_check(pack, now)
    items = list(pack.items.select_related("template"))
    if not items:
        raise ApiError("pack_empty", "This coupon pack has no coupons in it yet.", status.HTTP_409_CONFLICT)
    # Cheap refusals that take no lock; the guarantees come below.
    claimed = _page_claim_count(pack, user_id)
    if claimed >= pack.per_user_limit:
        raise _limit_reached(pack.per_user_limit)
    if pack.stock_shards <= 1 and pack.remaining <= 0 and coupon_pack_remaining(pack=pack) <= 0:
        raise _sold_out()

    gated = False
    if pack.redis_gate:
        left = _gate_take(pack)
        if left == gate.EMPTY:
            raise _sold_out()
        gated = left != gate.MISSING
    try:
        if pack.stock_shards > 1:
            claim = _claim_take_sharded(pack=pack, user_id=user_id, items=items, now=now, claimed=claimed)
        else:
            claim = _claim_take(pack=pack, user_id=user_id, items=items, now=now)
    except ApiError as exc:
        if gated:
            _gate_quietly(gate.gate_close if exc.error_code == "sold_out" else gate.gate_give_back, pack)
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
            gate.gate_set(pack_id=pack.pk, remaining=pack.remaining, only_if_missing=True)
            left = gate.gate_take(pack_id=pack.pk)
        return left
    except RedisError:
        logger.warning("redis gate unavailable: the database alone decides", extra={"pack_id": pack.pk})
        return gate.MISSING


def _gate_quietly(operation, pack: CouponPack) -> None:
    """Give a token back or close the gate; drift from a failure here is repaired
    by the gate reconciliation job."""
    try:
        operation(pack_id=pack.pk)
    except RedisError:
        logger.warning("redis gate not updated; reconciliation will repair it", extra={"pack_id": pack.pk})


def _claim_take(*, pack: CouponPack, user_id: str, items: list[CouponPackItem], now: datetime) -> Claim:
    # The stock first. Taking the pack's row lock before inserting rows that
    # refer to the pack matters on InnoDB: a foreign-key check takes a shared lock
    # on the pack row, and two claims holding it while both wait to upgrade it
    # would deadlock. So the lock section is kept short instead: one indexed
    # count, two inserts, no savepoints.
    taken = CouponPack.objects.filter(pk=pack.pk, enabled=True, remaining__gt=0).update(remaining=F("remaining") - 1)
    if not taken and _stock_shards_fold(pack.pk):
        # Stock left in shards by a pack that is no longer sharded: back in the counter.
        taken = CouponPack.objects.filter(pk=pack.pk, enabled=True, remaining__gt=0).update(
            remaining=F("remaining") - 1
        )
    if not taken:
        if not CouponPack.objects.filter(pk=pack.pk, enabled=True).exists():
            raise ApiError("pack_disabled", "This coupon pack is no longer available.", status.HTTP_409_CONFLICT)
        raise _sold_out()
    # We hold the pack's row lock: every earlier claim of this pack has
    # committed, so the count is exact. Slots 1..limit are unique per (pack,
    # user): the unique key, not this count, is what makes the limit hold.
    sequence = _page_claim_count(pack, user_id) + 1
    if sequence > pack.per_user_limit:
        raise _limit_reached(pack.per_user_limit)
    try:
        claim = Claim.objects.create(
            pack=pack, user_id=user_id, sequence=sequence, source=ClaimSource.PAGE, claimed_at=now
        )
    except IntegrityError:
        # Only reachable if something bypassed the row lock; the enclosing
        # atomic block rolls the decrement back with the refusal.
        raise _limit_reached(pack.per_user_limit) from None
    _coupons_issue(claim=claim, items=items, now=now)
    return claim


# A shard found empty takes this many packs from the reservoir at once (fewer
# when less is left), so the pack's own row is locked about once per chunk.
SHARD_REFILL = 50


def _claim_take_sharded(
    *, pack: CouponPack, user_id: str, items: list[CouponPackItem], now: datetime, claimed: int
) -> Claim:
    """The claim of a hot pack: one unit from one of its stock shards.

    Lock order (every writer of a sharded pack's stock follows it): shard rows,
    then the pack row. A claim holds one shard's row lock from its decrement to
    its commit, and the foreign keys of its claim row take a shared lock on the
    pack row; a refill holds a shard row then updates the pack row; folding the
    shards back (stock change, code generation) locks all shard rows by slot
    first, then the pack row. No claim waits for another claim of another shard.
    """
    _shard_take(pack)
    # No pack lock here, so counting again would be no more exact than the count
    # `claimed` made before: it may miss a concurrent claim of the same user,
    # and the unique (pack, user, sequence) key refuses the second one.
    sequence = claimed + 1
    if pack.per_user_limit == 1:
        # A duplicate key here means the user's one slot belongs to a committed
        # claim (InnoDB waits for an uncommitted one): the limit, exactly.
        try:
            claim = Claim.objects.create(
                pack=pack, user_id=user_id, sequence=1, source=ClaimSource.PAGE, claimed_at=now
            )
        except IntegrityError:
            raise _limit_reached(pack.per_user_limit) from None
    else:
        claim = _claim_slot_insert(pack=pack, user_id=user_id, first=sequence, now=now)
    _coupons_issue(claim=claim, items=items, now=now)
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
    raise _limit_reached(pack.per_user_limit)


def _shard_take(pack: CouponPack) -> None:
    """Take one unit from a random shard, else from any non-empty one, else
    refill a shard from the reservoir; sold out only when all are empty."""
    shards = CouponStockShard.objects.filter(pack_id=pack.pk)
    slot = random.randrange(pack.stock_shards)
    if shards.filter(slot=slot, remaining__gt=0).update(remaining=F("remaining") - 1):
        return
    for _ in range(pack.stock_shards + 2):
        others = list(shards.filter(remaining__gt=0).values_list("slot", flat=True))
        random.shuffle(others)
        for other in others:
            if shards.filter(slot=other, remaining__gt=0).update(remaining=F("remaining") - 1):
                return
        refilled = _shard_refill(pack, slot)
        if refilled is True:
            return
        if refilled is None and not others:
            # The reservoir was empty (committed) before this look at the shards,
            # and stock only moves from the reservoir into shards: none is left.
            raise _sold_out()
    raise _sold_out()


def _shard_refill(pack: CouponPack, slot: int) -> bool | None:
    """Move a chunk of the reservoir into shard `slot` and take one unit of it.
    None when the reservoir is empty (without taking any lock), False when it
    emptied while waiting (raises when the pack is disabled)."""
    row = CouponPack.objects.filter(pk=pack.pk).values("remaining", "enabled").first()
    if row is not None and row["enabled"] and row["remaining"] <= 0:
        return None
    if CouponStockShard.objects.filter(pack_id=pack.pk).count() < pack.stock_shards:
        coupon_stock_shards_ensure(pack=pack)
    list(CouponStockShard.objects.select_for_update().filter(pack_id=pack.pk, slot=slot))  # shard, then pack
    while True:
        row = CouponPack.objects.filter(pk=pack.pk).values("remaining", "enabled").first()
        if row is None or not row["enabled"]:
            raise ApiError("pack_disabled", "This coupon pack is no longer available.", status.HTTP_409_CONFLICT)
        if row["remaining"] <= 0:
            return False
        chunk = min(row["remaining"], max(1, min(SHARD_REFILL, row["remaining"] // (2 * pack.stock_shards))))
        if CouponPack.objects.filter(pk=pack.pk, enabled=True, remaining__gte=chunk).update(
            remaining=F("remaining") - chunk
        ):
            break
    CouponStockShard.objects.filter(pack_id=pack.pk, slot=slot).update(remaining=F("remaining") + chunk - 1)
    return True


def coupon_stock_shards_ensure(*, pack: CouponPack) -> None:
    """The pack's shard rows (empty ones for slots it lacks). Made with the pack,
    so claims do not all create them at once; a claim makes them only if missing."""
    if pack.stock_shards > 1:
        CouponStockShard.objects.bulk_create(
            [CouponStockShard(pack_id=pack.pk, slot=n) for n in range(pack.stock_shards)], ignore_conflicts=True
        )


def _stock_shards_fold(pack_id: int) -> int:
    """Move every shard's stock back into the pack's `remaining` (inside the
    caller's transaction, which then holds the shards until it commits), so
    the pack's counter alone is the stock left."""
    held = list(CouponStockShard.objects.select_for_update().filter(pack_id=pack_id, remaining__gt=0).order_by("slot"))
    total = sum(shard.remaining for shard in held)
    if total:
        CouponStockShard.objects.filter(pk__in=[shard.pk for shard in held]).update(remaining=0)
        CouponPack.objects.filter(pk=pack_id).update(remaining=F("remaining") + total)
    return total


# --- offline codes --------------------------------------------------------------


@transaction.atomic
def redeem_codes_generate(
    *, pack: CouponPack, count: int, batch: str = "", expires_at: datetime | None = None
) -> list[RedeemCode]:
    """Generate `count` offline codes for `pack`, taking their packs from its
    stock (refused when the stock is short)."""
    if not 1 <= count <= MAX_CODES_PER_BATCH:
        raise ApiError("invalid_count", f"Generate between 1 and {MAX_CODES_PER_BATCH} codes at a time.")
    _stock_shards_fold(pack.pk)
    taken = CouponPack.objects.filter(pk=pack.pk, remaining__gte=count).update(remaining=F("remaining") - count)
    if not taken:
        raise ApiError(
            "insufficient_stock",
            f"Only {CouponPack.objects.get(pk=pack.pk).remaining} packs remain; cannot reserve {count} for codes.",
            status.HTTP_409_CONFLICT,
        )
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
        raise ApiError("code_not_found", "This code does not exist.", status.HTTP_404_NOT_FOUND)
    if redeem_code.redeemed_at is not None:
        raise _code_already_redeemed(redeem_code, user_id)
    if redeem_code.expires_at and now >= redeem_code.expires_at:
        raise ApiError("code_expired", "This code has expired.", status.HTTP_409_CONFLICT)
    pack = redeem_code.pack
    if not pack.enabled:
        raise ApiError("pack_disabled", "This coupon pack is no longer available.", status.HTTP_409_CONFLICT)
    items = list(pack.items.select_related("template"))
    if not items:
        raise ApiError("pack_empty", "This coupon pack has no coupons in it yet.", status.HTTP_409_CONFLICT)
    consumed = RedeemCode.objects.filter(pk=redeem_code.pk, redeemed_at__isnull=True).update(
        redeemed_by=user_id, redeemed_at=now
    )
    if not consumed:
        raise _code_already_redeemed(RedeemCode.objects.get(pk=redeem_code.pk), user_id)
    claim = Claim.objects.create(
        pack=pack, user_id=user_id, sequence=None, source=ClaimSource.CODE, redeem_code=redeem_code, claimed_at=now
    )
    _coupons_issue(claim=claim, items=items, now=now)
    return claim


CODE_FAILURES_PER_HOUR = 10


def _code_failures_key(user_id: str) -> str:
    return f"coupons:code_failures:{user_id}"


def redeem_code_attempts_check(*, user_id: str) -> None:
    """Refuse code redemption for an hour after CODE_FAILURES_PER_HOUR unknown codes
    (nobody guesses codes by brute force)."""
    failures = get_redis().get(_code_failures_key(user_id))
    if failures is not None and int(failures) >= CODE_FAILURES_PER_HOUR:
        raise ApiError(
            "too_many_attempts", "Too many wrong codes; try again in an hour.", status.HTTP_429_TOO_MANY_REQUESTS
        )


def redeem_code_attempt_failed(*, user_id: str) -> None:
    # One MULTI: the hour's window gets its expiry with the first failure, so a
    # crash between two commands can never leave a counter that lasts forever.
    key = _code_failures_key(user_id)
    pipe = get_redis().pipeline()
    pipe.set(key, 0, ex=3600, nx=True)
    pipe.incr(key)
    pipe.execute()


def _code_already_redeemed(redeem_code: RedeemCode, user_id: str) -> ApiError:
    if redeem_code.redeemed_by == user_id:
        return ApiError("code_already_redeemed", "You have already redeemed this code.", status.HTTP_409_CONFLICT)
    return ApiError("code_already_redeemed", "This code has already been redeemed.", status.HTTP_409_CONFLICT)


# --- redemption by the order system --------------------------------------------


def coupon_discount_compute(*, template: CouponTemplate, order_amount_fen: int) -> int:
    """Fen off an order of `order_amount_fen` (0 when the minimum spend is not met)."""
    if order_amount_fen < template.min_spend_fen:
        return 0
    if template.kind == "percent":
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
        raise ApiError("coupon_not_found", "No coupon has this code.", status.HTTP_404_NOT_FOUND)
    if coupon.user_id != user_id:
        raise ApiError("coupon_not_owned", "This coupon belongs to another user.", status.HTTP_403_FORBIDDEN)
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
        raise ApiError("coupon_used", "This coupon was already used by another order.", status.HTTP_409_CONFLICT)
    if coupon.status == CouponStatus.EXPIRED or now >= coupon.valid_until:
        raise ApiError("coupon_expired", "This coupon has expired.", status.HTTP_409_CONFLICT)
    if now < coupon.valid_from:
        raise ApiError("coupon_not_yet_valid", "This coupon is not valid yet.", status.HTTP_409_CONFLICT)
    if order_amount_fen is not None and order_amount_fen < coupon.template.min_spend_fen:
        raise ApiError(
            "min_spend_not_met",
            f"This coupon needs an order of at least {coupon.template.min_spend_fen} fen.",
            status.HTTP_409_CONFLICT,
        )
    used = Coupon.objects.filter(pk=coupon.pk, status=CouponStatus.UNUSED, valid_until__gt=now).update(
        status=CouponStatus.USED, order_id=order_id, used_at=now
    )
    if not used:  # a concurrent redeem or the expiry job got there first
        coupon.refresh_from_db(fields=["status", "order_id", "used_at"])
        if coupon.status == CouponStatus.USED and coupon.order_id == order_id:
            return coupon, False
        if coupon.status == CouponStatus.USED:
            raise ApiError("coupon_used", "This coupon was already used by another order.", status.HTTP_409_CONFLICT)
        raise ApiError("coupon_expired", "This coupon has expired.", status.HTTP_409_CONFLICT)
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
        raise ApiError("coupon_used", "This coupon is used by another order.", status.HTTP_409_CONFLICT)
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
    pack = CouponPack.objects.create(
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
    CouponPackItem.objects.bulk_create(
        [CouponPackItem(pack=pack, template=template, quantity=quantity) for template, quantity in items]
    )
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
        raise ApiError("stock_below_taken", f"{taken} packs are already taken; the stock cannot go below that.", 409)
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
