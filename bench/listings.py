"""Listings bulk import: 100,000 listings across 50 cities from one CSV.

Figures (value against a baseline measured in the same process):
- listings.import_100k_seconds: the whole import (read, check, upsert, commit);
  baseline = reading and checking the same file without touching the database: the
  same file, the same `RowSource` parser and `row_parse` checks, in the same process
  and with the same settings (DEBUG off), timed right before and right after each
  import (the mean of the two counts; every read in `baseline_runs_s`). What the
  import does beyond it is its own work: storing the upload, tracking repeated ids
  and cities, the spool, and the database. ROUNDS rounds (3), each importing the
  file into an empty listings table (emptied between rounds, outside the timing);
  the reads alternate with the imports, so one read closes a round and opens the
  next. The round with the median ratio is reported (`bench.support.median_round`),
  every round's (import, baseline) seconds in `rounds_s`. One import alone, as
  before 2026-12-04, swung the ratio 0.46-0.58 on a noisy machine.
- listings.import_rows_per_s: the same run as rows per second; baseline likewise.
- listings.import_peak_mb: peak Python memory (tracemalloc) while importing the
  100k-row file; baseline = peak while only reading and checking that file. Extra:
  the peak for a 10k-row file (flat memory means about the same number) and the
  process's peak-RSS growth over the timed imports.
"""

from __future__ import annotations

import csv
import os
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

ROWS = 100_000
CITIES = 50
ROUNDS = int(os.environ.get("BENCH_LISTINGS_ROUNDS", "3"))


def write_file(path: Path, rows: int, prefix: str = "B") -> Path:
    from listings.importing import TEMPLATE_COLUMNS

    with open(path, "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([column.label for column in TEMPLATE_COLUMNS])
        for n in range(rows):
            city = f"城市{n % CITIES:02d}"
            writer.writerow(
                [
                    f"{prefix}{n:07d}",
                    city,
                    f"{city} 精装两居 近地铁 {n}",
                    "浦东新区",
                    f"世纪大道 {n} 号",
                    f"{3000 + n % 9000}.{n % 100:02d}",
                    f"{50 + n % 120}.5",
                    "2室1厅",
                    f"https://img.example.com/{n}.jpg",
                    f"https://example.com/listing/{n}",
                    "近地铁|南北通透",
                    str(n % 1000),
                    "是",
                ]
            )
    return path


def read_only(path: Path) -> int:
    from listings.importing import RowSource, row_parse

    count = 0
    with open(path, "rb") as stream, RowSource(stream, path.name) as source:
        for line, raw in source.rows:
            values, _ = row_parse(line, raw)
            count += values is not None
    return count


def import_file(component, path: Path):
    from django.core.files import File

    from listings import importing

    with open(path, "rb") as handle:
        job = importing.listing_import_start(
            component=component, upload=File(handle, name=path.name), filename=path.name, run_async=False
        )
    return importing.listing_import_run(job_id=job.pk)


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run() -> dict[str, dict]:
    from bench import support

    with support.bench_database(), tempfile.TemporaryDirectory() as tmp:
        from django.core.management.color import no_style
        from django.db import connection
        from django.test import override_settings

        from activities.models import Activity
        from components.models import Component
        from listings.models import Listing

        tmp_path = Path(tmp)
        load_before = os.getloadavg()[0]
        # DEBUG off, as in production (and as the test runner runs): with DEBUG on, every
        # statement's SQL and parameters are kept and formatted, which is not the import's cost.
        with override_settings(MEDIA_ROOT=str(tmp_path / "media"), DEBUG=False):
            activity = Activity.objects.create(name="bench", slug="bench-listings", status="online")

            def component(n: int):
                return Component.objects.create(activity=activity, type="listing", position=n, config={})

            big = write_file(tmp_path / "100k.csv", ROWS)
            small = write_file(tmp_path / "10k.csv", ROWS // 10, prefix="S")

            def timed_read() -> float:
                started = time.perf_counter()
                assert read_only(big) == ROWS
                return time.perf_counter() - started

            # Reads and imports alternate (read, import, read, import, ..., read): each
            # import's baseline is the mean of the reads either side of it, since on a
            # shared machine the load drifts during a run of a minute. Each import goes
            # into an empty table, as the first: the table is emptied outside the timing
            # (a table that grows makes each import slower), with Django's own flush
            # (TRUNCATE on MySQL: no purge of deleted rows running into the next round).
            empty_listings = connection.ops.sql_flush(no_style(), [Listing._meta.db_table])
            reads, imports, baselines = [timed_read()], [], []
            rss_before = _maxrss_mb()
            for round_no in range(ROUNDS):
                connection.ops.execute_sql_flush(empty_listings)
                target = component(1 + round_no)
                started = time.perf_counter()
                job = import_file(target, big)
                imports.append(time.perf_counter() - started)
                assert job.status == "applied" and job.created_count == ROWS, (job.status, job.message, job.errors[:3])
                assert Listing.objects.filter(component=target).count() == ROWS
                reads.append(timed_read())
                baselines.append((reads[-2] + reads[-1]) / 2)  # the reads either side of it
                print(
                    f"    round {round_no + 1}: import {imports[-1]:.2f}s, read and check "
                    f"{reads[-2]:.2f}/{reads[-1]:.2f}s ({baselines[-1] / imports[-1]:.3f})",
                    flush=True,
                )
            rss_growth = _maxrss_mb() - rss_before
            pairs = list(zip(imports, baselines, strict=True))
            rows_per_s, read_rows_per_s = support.median_round([(ROWS / i, ROWS / b) for i, b in pairs])
            import_seconds, read_seconds = ROWS / rows_per_s, ROWS / read_rows_per_s
            read_runs = [round(r, 2) for r in reads]
            rounds_s = [[round(i, 2), round(b, 2)] for i, b in pairs]

            started = time.perf_counter()
            again = import_file(target, big)
            reimport_seconds = time.perf_counter() - started
            assert again.unchanged_count == ROWS

            tracemalloc.start()
            read_only(big)
            read_peak = tracemalloc.get_traced_memory()[1] / 1048576
            tracemalloc.reset_peak()
            import_file(component(ROUNDS + 1), small)
            small_peak = tracemalloc.get_traced_memory()[1] / 1048576
            tracemalloc.reset_peak()
            import_file(component(ROUNDS + 2), big)
            big_peak = tracemalloc.get_traced_memory()[1] / 1048576
            tracemalloc.stop()

        context = {
            "backend": connection.vendor,
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],  # before, after
        }
        return {
            "listings.import_100k_seconds": support.figure(
                import_seconds,
                "s",
                read_seconds,
                baseline_runs_s=read_runs,
                rounds_s=rounds_s,
                reimport_unchanged_seconds=round(reimport_seconds, 2),
                **context,
            ),
            "listings.import_rows_per_s": support.figure(
                ROWS / import_seconds,
                "rows/s",
                ROWS / read_seconds,
                baseline_runs_s=read_runs,
                rounds_s=rounds_s,
                **context,
            ),
            "listings.import_peak_mb": support.figure(
                big_peak,
                "MB",
                read_peak,
                peak_mb_10k_rows=round(small_peak, 2),
                rss_growth_mb=round(rss_growth, 1),
                **context,
            ),
        }
