"""The doors of observability: `/metrics`, the request-metrics middleware, and
the hooks that count database errors and time Celery tasks. The catalogue of
metrics is core/metrics.py; tracing is core/telemetry.py; profiling is
core/profiling.py."""

from __future__ import annotations

import hmac
import time

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpResponse

from core import metrics
from core.errors import json_error


def metrics_view(request):
    """Prometheus scrape endpoint. With METRICS_TOKEN set (required in production)
    it answers only `Authorization: Bearer <METRICS_TOKEN>`."""
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            response = json_error("unauthorized", "Send Authorization: Bearer <METRICS_TOKEN>.", 401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    body, content_type = metrics.metrics_text()
    return HttpResponse(body, content_type=content_type)


class RequestMetricsMiddleware:
    """Request latency by route template (never the raw path), method and status."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = "/" + match.route if match is not None and match.route else "unmatched"
        metrics.request_observe(route, request.method, response.status_code, time.perf_counter() - started)
        return response


def _count_db_errors(execute, sql, params, many, context):
    try:
        return execute(sql, params, many, context)
    except DatabaseError as exc:
        metrics.DB_ERRORS.labels(type(exc).__name__).inc()
        raise


def db_connection_instrument(sender, connection, **kwargs) -> None:
    """`connection_created` receiver: count every failing statement on the connection."""
    if _count_db_errors not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count_db_errors)


_task_started: dict[str, float] = {}


def task_started(task_id=None, **kwargs) -> None:
    _task_started[task_id] = time.perf_counter()


def task_finished(task_id=None, task=None, state=None, **kwargs) -> None:
    started = _task_started.pop(task_id, None)
    if started is not None and task is not None:
        metrics.CELERY_TASK_DURATION.labels(task.name, state or "UNKNOWN").observe(time.perf_counter() - started)


def task_failed(sender=None, **kwargs) -> None:
    metrics.CELERY_TASK_FAILURES.labels(getattr(sender, "name", "unknown")).inc()


def event_count(*, source: str, action: str, body) -> None:
    """Count one handled event by queue (its source exchange) and outcome; for a
    first handling, observe the lag from the event's `occurred_at`."""
    from core.events.contracts import EXCHANGES

    queue = source if source in EXCHANGES else "other"
    metrics.EVENTS_CONSUMED.labels(queue, action).inc()
    if action == "dead":
        metrics.EVENTS_DEAD_LETTERED.labels(queue).inc()
    elif action == "retry":
        metrics.EVENTS_RETRIED.labels(queue).inc()
    elif action == "applied":
        lag = _event_lag(body)
        if lag is not None:
            metrics.EVENTS_LAG.labels(queue).observe(lag)


def _event_lag(body) -> float | None:
    import json
    from datetime import datetime

    try:
        occurred = datetime.fromisoformat(json.loads(body)["occurred_at"])
        return max(0.0, time.time() - occurred.timestamp())
    except Exception:  # a body without a readable offset-aware occurred_at has no lag to tell
        return None
