"""The shared Redis client (REDIS_URL, or the embedded server)."""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


class _CountingRedis(redis.Redis):
    """Counts failed commands (huodong_redis_errors_total); NOSCRIPT is the Lua
    script cache's ordinary miss, which redis-py answers by loading the script."""

    def execute_command(self, *args, **options):
        try:
            return super().execute_command(*args, **options)
        except redis.exceptions.NoScriptError:
            raise
        except redis.RedisError as exc:
            from core import metrics

            metrics.REDIS_ERRORS.labels(type(exc).__name__).inc()
            raise


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    return _CountingRedis.from_url(
        settings.REDIS_URL,
        socket_timeout=2,
        socket_connect_timeout=2,
        health_check_interval=30,
        decode_responses=False,
    )
