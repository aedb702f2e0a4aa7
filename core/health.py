"""/healthz: the process is up. /readyz: every dependency answers and the event
consumer is alive and draining its queues (core/events/liveness.py)."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from kombu import Connection


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except Exception as exc:  # report, don't raise: this is a health check
        detail, ok = f"{type(exc).__name__}: {exc}", False
    result = {"ok": ok, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    if detail:
        result["detail"] = detail
    return result


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def _redis() -> str:
    from core.redis import get_redis

    get_redis().ping()
    return "embedded" if settings.EMBEDDED_REDIS else "external"


def _broker(url: str):
    def check() -> str:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return conn.transport.driver_type

    return check


def _consumer() -> dict:
    from core.events.liveness import consumer_status

    started = time.perf_counter()
    try:
        status = consumer_status()
    except Exception as exc:  # Redis or the broker down: their own checks say which
        status = {"ok": False, "detail": f"cannot tell: {type(exc).__name__}: {exc}"}
    return {**status, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    checks = {
        "database": _timed(_database),
        "redis": _timed(_redis),
        "celery_broker": _timed(_broker(settings.CELERY_BROKER_URL)),
    }
    if settings.EVENTS_BROKER_URL != settings.CELERY_BROKER_URL:
        checks["events_broker"] = _timed(_broker(settings.EVENTS_BROKER_URL))
    checks["events_consumer"] = _consumer()
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
