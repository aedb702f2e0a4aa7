"""Redis gate for hot packs (CouponPack.redis_gate).

A counter per pack, `coupons:gate:<pack id>`, approximates the remaining stock so
that once a pack is sold out the flood of late claims is refused by Redis without
taking the pack's row lock. The database stays the truth: a claim that passes the
gate still needs the conditional decrement. When the database refuses (sold out),
the gate is set to 0; when a claim fails for another reason, its token goes back.
`coupons.tasks.coupon_gates_reconcile` (beat) sets every gate to the database
value, repairing drift from crashes between Redis and the commit.
"""

from __future__ import annotations

from core.redis import get_redis

_TAKE = """
local v = redis.call('GET', KEYS[1])
if not v then return -2 end
if tonumber(v) <= 0 then return -1 end
return redis.call('DECR', KEYS[1])
"""

MISSING = -2
EMPTY = -1


def gate_key(pack_id: int) -> str:
    return f"coupons:gate:{pack_id}"


def gate_take(*, pack_id: int) -> int:
    """Take one token: returns what is left (>= 0), EMPTY, or MISSING (no gate yet)."""
    return int(get_redis().eval(_TAKE, 1, gate_key(pack_id)))


def gate_give_back(*, pack_id: int) -> None:
    get_redis().incr(gate_key(pack_id))


def gate_close(*, pack_id: int) -> None:
    get_redis().set(gate_key(pack_id), 0)


def gate_set(*, pack_id: int, remaining: int, only_if_missing: bool = False) -> bool:
    return bool(get_redis().set(gate_key(pack_id), remaining, nx=only_if_missing))


def gate_read(*, pack_id: int) -> int | None:
    raw = get_redis().get(gate_key(pack_id))
    return None if raw is None else int(raw)


def gate_drop(*, pack_id: int) -> None:
    get_redis().delete(gate_key(pack_id))
