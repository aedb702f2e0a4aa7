"""What a process of the platform needs before it serves: called by the entry points.

    manage.py, config/wsgi.py, the Celery worker and beat (config/celery.py),
    tests/conftest.py, bench

Settings only name things (importing them has no side effects); `process_prepare`
makes the folders under var/ and, on the embedded defaults (no REDIS_URL), starts
the embedded Redis server (core/embedded_redis.py) or finds it running. Idempotent
and cheap when everything is already there.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def process_prepare() -> None:
    var_dir = Path(settings.VAR_DIR)
    for folder in (var_dir, Path(settings.STATIC_ROOT)):
        folder.mkdir(parents=True, exist_ok=True)
    if settings.EMBEDDED_REDIS:
        from core import embedded_redis

        embedded_redis.ensure_running(var_dir)
