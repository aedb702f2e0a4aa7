"""Export benchmark (contracts §9).

- `export.rows_per_s`: one UTC hour of 1,000,000 clicks (BENCH_EXPORT_CLICKS), already
  drained into the database, exported to a local folder as its Parquet partition
  (`exports.services.partition_export`: read the staged chunks, write the parts,
  `_SUCCESS` last); baseline: pyarrow writing the same rows, held in memory as one
  table, to one Parquet file with the same compression.
- `export.drain_rows_per_s`: the same clicks drained from the Redis stream (as the
  click script appends them) into durable chunks: read through the consumer group,
  parsed, committed, acknowledged and trimmed; no baseline.

Runs on the configured database and Redis (a fresh `bench` database; the stream under
a key prefix of this run only, removed at the end).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

CLICKS = int(os.environ.get("BENCH_EXPORT_CLICKS", "1000000"))
XADD_BATCH = 5000


def _fill_stream(client, key: str, hour_start_s: int, n: int) -> None:
    """Entries laid out exactly as the click script writes them, spread over the hour."""
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
    step_us = 3_600_000_000 // n
    for start in range(0, n, XADD_BATCH):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(start + XADD_BATCH, n)):
            us = hour_start_s * 1_000_000 + i * step_us
            device = uuid.UUID(int=i).hex
            record = json.dumps(
                {
                    "id": device[:20],
                    "at": us // 1000,
                    "us": us,
                    "ts": us // 1000 - 1500,
                    "os": "ios",
                    "cb": "EJiw267wvfQCGKf2g74ZIPD89",
                    "click_id": f"req{i:012d}",
                    "account": "1780000000000001",
                    "campaign": str(7300000000 + i % 50),
                    "ad": str(7310000000 + i % 500),
                    "creative": str(7320000000 + i % 2000),
                    "ip": f"203.0.{i % 250}.{i % 200}",
                    "ua": ua,
                },
                separators=(",", ":"),
            )
            pipe.xadd(
                key,
                {
                    "l": "1",
                    "p": "oceanengine",
                    "o": "ios",
                    "r": 0,
                    "c": record,
                    "k": f"idfa:{device} ipua:{device[::-1]}",
                },
            )
        pipe.execute()


def run() -> dict[str, dict]:
    from bench.support import bench_database, figure

    with bench_database():
        import pyarrow as pa
        import pyarrow.parquet as pq
        from django.conf import settings
        from django.utils import timezone

        from core.redis import get_redis
        from exports import datasets, drain, services
        from exports.models import ClickLogChunk
        from exports.schemas import SCHEMAS

        settings.ATTRIBUTION_REDIS_PREFIX = f"bench-{uuid.uuid4().hex[:8]}:att"
        settings.EXPORT_DRAIN_LOCK_SECONDS = 300
        folder = Path(tempfile.mkdtemp(prefix="bench-export-"))
        settings.EXPORT_URL = str(folder / "raw")
        client = get_redis()
        key = drain.stream_key("clicks")
        hour = services.hour_floor(timezone.now()) - services.HOUR * 3
        try:
            _fill_stream(client, key, int(hour.timestamp()), CLICKS)

            started = time.perf_counter()
            stored = drain.click_log_drain(max_seconds=3600).stored["clicks"]
            drain_s = time.perf_counter() - started
            assert stored == CLICKS, stored
            staged = sum(len(bytes(data)) for data in ClickLogChunk.objects.values_list("data", flat=True).iterator())

            started = time.perf_counter()
            partition = services.partition_export(dataset="clicks", hour=hour)
            export_s = time.perf_counter() - started
            assert partition.rows == CLICKS and partition.status == "done", partition

            table = pa.concat_tables(list(datasets.dataset_batches("clicks", hour)))
            assert table.num_rows == CLICKS and table.schema == SCHEMAS["clicks"]
            started = time.perf_counter()
            pq.write_table(table, str(folder / "baseline.parquet"), compression="zstd")
            baseline_s = time.perf_counter() - started
        finally:
            client.delete(key, drain.stream_key("click_rejects"))
            shutil.rmtree(folder, ignore_errors=True)
    return {
        "export.rows_per_s": figure(
            CLICKS / export_s,
            "rows/s",
            CLICKS / baseline_s,
            rows=CLICKS,
            seconds=round(export_s, 2),
            baseline_seconds=round(baseline_s, 2),
            bytes=partition.bytes,
            files=partition.files,
        ),
        "export.drain_rows_per_s": figure(
            CLICKS / drain_s, "rows/s", rows=CLICKS, seconds=round(drain_s, 2), staged_bytes=staged
        ),
    }
