"""Helpers for benchmarks: a throw-away database set up like the test suite's."""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def bench_database():
    """Create a fresh test database (named `bench`), migrate it, and drop it after;
    DEBUG is off inside, as in production.
    Works on SQLite (var/bench.sqlite3) and MySQL (database `bench`)."""
    os.environ.setdefault("TEST_DATABASE_NAME", "bench")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection

    from core.boot import process_prepare

    process_prepare()
    from django.test.utils import setup_test_environment, teardown_test_environment

    # DEBUG off, as in production and as the test runner runs: with DEBUG on, Django
    # keeps and formats every statement's SQL, a cost per statement that weighs on
    # whichever side of a figure runs more statements (the listings bench did this
    # on its own before; now every benchmark does).
    setup_test_environment(debug=False)
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        yield connection
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


def figure(value: float, unit: str, baseline: float | None = None, **extra) -> dict:
    return {
        "value": round(value, 4),
        "unit": unit,
        "baseline": None if baseline is None else round(baseline, 4),
        **extra,
    }


def median_round(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """Of interleaved rounds of (value, baseline), the round whose ratio is the median
    (the lower middle one of an even count), with its own value and baseline.

    Each round's two sides run back to back under the same load, so its ratio is the
    measurement; between rounds a shared machine's speed drifts (the same no-op drain
    ran 1,750-2,350 events/s minutes apart, the same claims 154-259/s). The median of
    each side taken apart can pair a slow round's value with a fast round's baseline;
    the median round keeps each figure's value, baseline and ratio one measurement."""
    if not pairs:
        raise ValueError("no rounds")
    ordered = sorted(pairs, key=lambda pair: pair[0] / pair[1])
    return ordered[(len(ordered) - 1) // 2]
