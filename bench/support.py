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
