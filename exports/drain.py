"""The click log's drain: Redis streams -> durable chunks in the database.

The click script (attribution/clicks.py) appends every stored click to
`{prefix}:log:clicks` and every rejected one to `{prefix}:log:rejects`. One drainer
at a time (a Redis lock that expires if its holder dies) reads them through the
consumer group `exports`: first the entries it had read but not acknowledged (a
crash), then new ones. Each batch becomes one compressed Arrow chunk per UTC hour;
chunks and the stream's cursor commit in one transaction, then the entries are
acknowledged and trimmed from Redis. Entries at or below the cursor were stored
already and are only acknowledged (idempotent by stream id): nothing is lost when a
drainer dies, and nothing is stored twice.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import redis
from django.conf import settings
from django.db import transaction

from core.redis import get_redis
from exports.models import ClickLogChunk, ClickLogCursor
from exports.schemas import SCHEMAS

logger = logging.getLogger("huodong.exports.drain")

GROUP = "exports"
CONSUMER = "drain"
STREAMS = {"clicks": "log:clicks", "click_rejects": "log:rejects"}
_DEVICE_KINDS = ("idfa", "caid", "imei", "oaid", "android_id", "ipua")
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")


class DrainBusy(Exception):
    """Another drainer holds the lock."""


def stream_key(dataset: str) -> str:
    return f"{settings.ATTRIBUTION_REDIS_PREFIX}:{STREAMS[dataset]}"


def _lock(client: redis.Redis):
    return client.lock(
        f"{settings.ATTRIBUTION_REDIS_PREFIX}:log:drain-lock", timeout=settings.EXPORT_DRAIN_LOCK_SECONDS
    )


def _id_tuple(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def ip_truncate(ip: str) -> str:
    """IPv4 to its /24, IPv6 to its /48 (contract §9 outside `clicks`); junk to ''."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ""
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def _text(fields: dict, name: bytes) -> str:
    value = fields.get(name)
    return value.decode() if value is not None else ""


def _hour_of(us: int) -> datetime:
    return datetime.fromtimestamp(us // 3_600_000_000 * 3600, tz=UTC)


def _click_columns(entries: list[tuple[str, dict]]) -> dict[datetime, dict[str, list]]:
    names = SCHEMAS["clicks"].names
    by_hour: dict[datetime, dict[str, list]] = {}
    for entry_id, fields in entries:
        record = json.loads(fields[b"c"])
        us = int(record["us"])
        cols = by_hour.get(_hour_of(us))
        if cols is None:
            cols = by_hour[_hour_of(us)] = {name: [] for name in names}
        pairs = _text(fields, b"k").split()
        first: dict[str, str] = {}
        for pair in pairs:
            kind, _, value = pair.partition(":")
            first.setdefault(kind, value)
        ts = record.get("ts")
        cols["click_at"].append(us)
        cols["click_id"].append(record.get("id", ""))
        cols["tracking_link_id"].append(int(fields[b"l"]))
        cols["platform"].append(_text(fields, b"p"))
        cols["os"].append(_text(fields, b"o"))
        cols["platform_click_id"].append(record.get("click_id", ""))
        cols["platform_click_at"].append(int(ts) * 1000 if ts else None)
        for name in ("account", "campaign", "ad", "creative", "ip", "ua"):
            cols[name].append(record.get(name, ""))
        for kind in _DEVICE_KINDS:
            cols[kind].append(first.get(kind))
        cols["device_keys"].append(pairs)
        cols["repeated"].append(fields.get(b"r") == b"1")
        cols["log_id"].append(entry_id)
    return by_hour


def _reject_columns(entries: list[tuple[str, dict]]) -> dict[datetime, dict[str, list]]:
    names = SCHEMAS["click_rejects"].names
    by_hour: dict[datetime, dict[str, list]] = {}
    for entry_id, fields in entries:
        record = json.loads(fields[b"c"])
        us = int(record["us"])
        cols = by_hour.get(_hour_of(us))
        if cols is None:
            cols = by_hour[_hour_of(us)] = {name: [] for name in names}
        link = _text(fields, b"l")
        cols["rejected_at"].append(us)
        cols["click_id"].append(record.get("id", ""))
        cols["tracking_link_id"].append(int(link) if link else None)
        cols["platform"].append(_text(fields, b"p"))
        cols["reason"].append(_text(fields, b"x"))
        cols["os"].append(record.get("os", ""))
        cols["platform_click_id"].append(record.get("click_id", ""))
        for name in ("account", "campaign", "ad", "creative", "ua"):
            cols[name].append(record.get(name, ""))
        cols["ip"].append(ip_truncate(record.get("ip", "")))
        cols["log_id"].append(entry_id)
    return by_hour


_COLUMNS = {"clicks": _click_columns, "click_rejects": _reject_columns}


def chunk_encode(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def chunk_decode(data: bytes | memoryview) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(bytes(data))).read_all()


def _store(dataset: str, entries: list[tuple[str, dict]]) -> int:
    """Store the entries above the cursor as chunks; return how many were new."""
    schema = SCHEMAS[dataset]
    with transaction.atomic():
        cursor, _ = ClickLogCursor.objects.select_for_update().get_or_create(stream=dataset)
        floor = _id_tuple(cursor.last_id)
        fresh = [(eid, fields) for eid, fields in entries if fields and _id_tuple(eid) > floor]
        if not fresh:
            return 0
        chunks = []
        for hour, cols in _COLUMNS[dataset](fresh).items():
            table = pa.Table.from_pydict(cols, schema=schema)
            chunks.append(
                ClickLogChunk(
                    dataset=dataset,
                    hour=hour,
                    first_id=cols["log_id"][0],
                    last_id=cols["log_id"][-1],
                    rows=table.num_rows,
                    data=chunk_encode(table),
                )
            )
        ClickLogChunk.objects.bulk_create(chunks)
        cursor.last_id = fresh[-1][0]
        cursor.save(update_fields=["last_id", "updated_at"])
    return len(fresh)


def _ensure_group(client: redis.Redis, key: str) -> None:
    try:
        client.xgroup_create(key, GROUP, id="0", mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def _drain_stream(client: redis.Redis, lock, dataset: str, batch: int, deadline: float) -> tuple[int, bool]:
    """Returns (entries stored, whether the stream was drained to its end)."""
    key = stream_key(dataset)
    _ensure_group(client, key)
    stored = 0
    for start in ("0", ">"):  # first what we read before a crash, then new entries
        while True:
            if time.monotonic() >= deadline:
                return stored, False
            answer: Any = client.xreadgroup(GROUP, CONSUMER, {key: start}, count=batch)  # [[key, [(id, fields)]]]
            entries = [(eid.decode(), fields) for eid, fields in (answer[0][1] if answer else [])]
            if not entries:
                break
            stored += _store(dataset, entries)
            client.xack(key, GROUP, *[eid for eid, _ in entries])
            # everything up to here is durable in the database: Redis can let it go
            client.xtrim(key, minid=entries[-1][0], approximate=False)
            lock.reacquire()
    return stored, True


@dataclass(frozen=True)
class Drained:
    stored: dict[str, int]  # entries stored per dataset
    complete: bool  # every stream was drained up to the moment of the call


def click_log_drain(*, wait_seconds: float = 0, batch: int | None = None, max_seconds: float = 240) -> Drained:
    """Move the click log into chunks, up to the moment of the call (or max_seconds,
    then `complete` is false). `wait_seconds`: how long to wait for a running
    drainer; DrainBusy after that."""
    client = get_redis()
    lock = _lock(client)
    if not lock.acquire(blocking=wait_seconds > 0, blocking_timeout=wait_seconds or None):
        raise DrainBusy("another drainer is running")
    try:
        deadline = time.monotonic() + max_seconds
        batch = batch or settings.EXPORT_DRAIN_BATCH
        results = {dataset: _drain_stream(client, lock, dataset, batch, deadline) for dataset in STREAMS}
        return Drained({d: n for d, (n, _) in results.items()}, all(done for _, done in results.values()))
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            logger.warning("drain lock expired while draining")
