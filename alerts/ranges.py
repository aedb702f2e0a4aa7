"""Clicks per source address range (the `source_range_spike` detector's series).

The click script (attribution/clicks.py) bumps one counter per click that reaches
it, accepted or rejected, in the same Lua call (no extra round trip):

- `{prefix}:src:{YYYYMMDDHHMM}` hash, one per 5-minute bucket (MM its first
  minute): field = the range of the click's device address (its `ip` parameter; the
  request's own address is the ad platform's server, contracts §1), value = clicks.
  IPv4 ranges are /24 (`203.0.113.0/24`), IPv6 ranges /48 (`2001:db8:1::/48`); a
  click without a valid address is not counted. The raw hash lives RAW_TTL_SECONDS.
- `{prefix}:srcd:{YYYYMMDDHHMM}`: the same bucket compacted by the detector once it
  closed: only ranges with at least `keep_min` clicks, plus the field `_` (the
  bucket's total), kept `baseline_days` + 1 days. A range below `keep_min` in a
  bucket reads as 0 there, which a spike rule with `min_volume` in the hundreds
  cannot tell apart; it bounds Redis memory to the busy ranges.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings

RAW_TTL_SECONDS = 3 * 3600
TOTAL = "_"


def source_range(ip: str | None) -> str:
    """The /24 (IPv4) or /48 (IPv6) of an address, "" when it is not one. On the
    click path: plain string work for IPv4, the common case."""
    if not ip or len(ip) > 45:
        return ""
    ip = ip.strip()
    if ":" not in ip:
        parts = ip.split(".")
        if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
            return ""
        return f"{int(parts[0])}.{int(parts[1])}.{int(parts[2])}.0/24"
    try:
        address = ipaddress.IPv6Address(ip)
    except ValueError:
        return ""
    if address.ipv4_mapped is not None:
        return source_range(str(address.ipv4_mapped))
    return str(ipaddress.IPv6Network((int(address) >> 80 << 80, 48)))


def bucket_name(start: datetime) -> str:
    return f"{start:%Y%m%d%H%M}"


def raw_key(start: datetime) -> str:
    return f"{settings.ATTRIBUTION_REDIS_PREFIX}:src:{bucket_name(start)}"


def compact_key(start: datetime) -> str:
    return f"{settings.ATTRIBUTION_REDIS_PREFIX}:srcd:{bucket_name(start)}"


def _decode(mapping: dict) -> dict[str, int]:
    return {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in mapping.items()}


def buckets_compact(client, *, starts: Iterable[datetime], keep_min: int, ttl_seconds: int) -> int:
    """Compact the closed buckets that have a raw hash and no compacted one yet
    (idempotent: two concurrent checks write the same hash). Returns how many."""
    starts = list(starts)
    pipe = client.pipeline(transaction=False)
    for start in starts:
        pipe.exists(compact_key(start))
        pipe.exists(raw_key(start))
    flags = pipe.execute()
    todo = [s for i, s in enumerate(starts) if not flags[2 * i] and flags[2 * i + 1]]
    if not todo:
        return 0
    pipe = client.pipeline(transaction=False)
    for start in todo:
        pipe.hgetall(raw_key(start))
    raws = pipe.execute()
    pipe = client.pipeline(transaction=True)
    for start, raw in zip(todo, raws, strict=True):
        counts = _decode(raw)
        kept = {k: v for k, v in counts.items() if v >= keep_min}
        kept[TOTAL] = sum(counts.values())
        pipe.hset(compact_key(start), mapping=kept)
        pipe.expire(compact_key(start), ttl_seconds)
    pipe.execute()
    return len(todo)


def window_counts(client, *, starts: list[datetime]) -> dict[str, int]:
    """Clicks per range summed over the given buckets (compacted where available)."""
    pipe = client.pipeline(transaction=False)
    for start in starts:
        pipe.hgetall(compact_key(start))
        pipe.hgetall(raw_key(start))
    values = pipe.execute()
    totals: dict[str, int] = defaultdict(int)
    for i in range(len(starts)):
        counts = _decode(values[2 * i] or values[2 * i + 1])
        counts.pop(TOTAL, None)
        for name, n in counts.items():
            totals[name] += n
    return totals


def history_counts(
    client, *, starts: dict[datetime, int], names: list[str]
) -> tuple[dict[str, dict[int, int]], set[int]]:
    """For each range in `names`: {day offset: clicks} over the buckets `starts`
    (bucket start -> day offset), and the day offsets that have data at all."""
    order = list(starts)
    pipe = client.pipeline(transaction=False)
    for start in order:
        pipe.hmget(compact_key(start), [TOTAL, *names])
        pipe.hmget(raw_key(start), names)
        pipe.exists(raw_key(start))
    values = pipe.execute()
    out: dict[str, dict[int, int]] = {name: defaultdict(int) for name in names}
    present: set[int] = set()
    for i, start in enumerate(order):
        compacted, raw, raw_exists = values[3 * i], values[3 * i + 1], values[3 * i + 2]
        day = starts[start]
        if compacted[0] is not None:
            present.add(day)
            counts = compacted[1:]
        elif raw_exists:
            present.add(day)
            counts = raw
        else:
            continue
        for name, n in zip(names, counts, strict=True):
            if n is not None:
                out[name][day] += int(n)
    return out, present


def counts_add(client, *, start: datetime, counts: dict[str, int], ttl_seconds: int = RAW_TTL_SECONDS) -> None:
    """Add clicks to a raw bucket as the click script does (simulations, tests)."""
    pipe = client.pipeline(transaction=False)
    for name, n in counts.items():
        pipe.hincrby(raw_key(start), name, n)
    pipe.expire(raw_key(start), ttl_seconds)
    pipe.execute()
