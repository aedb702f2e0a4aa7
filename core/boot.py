"""What a process of the platform needs before it serves: called by the entry points.

    manage.py, config/wsgi.py, the Celery worker and beat (config/celery.py),
    tests/conftest.py, bench

Settings only name things (importing them has no side effects); `process_prepare`
makes the folders under var/ and, on the embedded defaults (no REDIS_URL), starts
the embedded Redis server (core/embedded_redis.py) or finds it running. Idempotent
and cheap when everything is already there.
"""

from __future__ import annotations

import gc
from pathlib import Path

from django.conf import settings


def process_prepare() -> None:
    var_dir = Path(settings.VAR_DIR)
    for folder in (var_dir, Path(settings.STATIC_ROOT)):
        folder.mkdir(parents=True, exist_ok=True)
    if settings.EMBEDDED_REDIS:
        from core import embedded_redis

        embedded_redis.ensure_running(var_dir)


def heap_freeze() -> None:
    """Call once a long-lived process has started and is about to serve (the event
    consumer, a gunicorn worker): collect, then move every object alive now to the
    collector's permanent generation (`gc.freeze`). Start-up leaves some hundred
    thousand objects (modules, models, URL conf, settings) that live as long as the
    process; every full collection walked all of them, a pause of 0.3-0.4 s every few
    thousand events in a consumer (0.15-0.2 ms an activation on average, measured in
    docs/events.md). Frozen objects are still freed when their last reference goes;
    only a cycle among them is never collected, hence the collection first."""
    gc.collect()
    gc.freeze()
