"""Prometheus metrics (prometheus-client in multiprocess mode).

Every process (gunicorn workers, Celery workers and the event consumer) writes its
figures to files under PROMETHEUS_MULTIPROC_DIR (exported below, before
prometheus-client is imported); `/metrics` (core.views.metrics) adds them up. The
definitions below are the whole catalogue; docs/observability.md says what each
means and deploy/ holds the Grafana dashboard and alert rules built on them.

Labels are bounded sets only (route templates, platform names, outcomes, queue
and task names), never ids or user input.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings

# prometheus-client picks its multiprocess mode when it is imported, and writes its
# files at once: the folder exists and the variable is exported before it loads.
Path(settings.PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.PROMETHEUS_MULTIPROC_DIR)

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess  # noqa: E402

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

HTTP_REQUEST_DURATION = Histogram(
    "huodong_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template, method and status.",
    ["route", "method", "status"],
    buckets=_LATENCY_BUCKETS,
)
CLICKS = Counter(
    "huodong_clicks_total",
    "Click callbacks by platform and outcome (accepted, or the rejection reason).",
    ["platform", "outcome"],
)
EVENTS_CONSUMED = Counter(
    "huodong_events_consumed_total",
    "Inbound events handled, by queue and outcome (applied, duplicate, ...).",
    ["queue", "outcome"],
)
EVENTS_DEAD_LETTERED = Counter(
    "huodong_events_dead_lettered_total", "Inbound events sent to the dead-letter queue.", ["queue"]
)
EVENTS_RETRIED = Counter("huodong_events_retried_total", "Inbound events put back for another attempt.", ["queue"])
EVENTS_LAG = Histogram(
    "huodong_events_lag_seconds",
    "Consumer lag: from the event's occurred_at to its handling, by queue.",
    ["queue"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
CELERY_TASK_DURATION = Histogram(
    "huodong_celery_task_duration_seconds",
    "Celery task run time, by task and final state.",
    ["task", "state"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
)
CELERY_TASK_FAILURES = Counter("huodong_celery_task_failures_total", "Celery tasks that raised.", ["task"])
POSTBACK_ATTEMPTS = Counter(
    "huodong_postback_attempts_total",
    "Postback attempts to ad platforms, by platform and result (succeeded, retry, failed).",
    ["platform", "result"],
)
PAYMENT_RESULTS = Counter(
    "huodong_payment_results_total",
    "Payment results handled, by source and outcome (applied, no_change, refused).",
    ["source", "outcome"],
)
COUPON_CLAIMS = Counter(
    "huodong_coupon_claims_total",
    "Coupon pack claims, by result (claimed, sold_out, or the refusal code).",
    ["result"],
)
REDIS_ERRORS = Counter("huodong_redis_errors_total", "Redis commands that failed, by error type.", ["error"])
DB_ERRORS = Counter("huodong_db_errors_total", "Database statements that failed, by error type.", ["error"])


def metrics_text() -> tuple[bytes, str]:
    """Every process's figures, added up, in Prometheus text format."""
    from prometheus_client import CONTENT_TYPE_LATEST

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST


# --- cheap recorders for hot paths ---------------------------------------------
_children: dict = {}


def click_count(platform: str, outcome: str) -> None:
    """Count a click; `platform` is the raw path part, folded to `other` when unknown."""
    from attribution.platforms import PLATFORMS

    key = (platform if platform in PLATFORMS else "other", outcome)
    child = _children.get(key)
    if child is None:
        child = _children[key] = CLICKS.labels(*key)
    child.inc()


_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def request_observe(route: str, method: str, status: int, seconds: float) -> None:
    key = (route, method if method in _METHODS else "other", status)
    child = _children.get(key)
    if child is None:
        child = _children[key] = HTTP_REQUEST_DURATION.labels(key[0], key[1], str(status))
    child.observe(seconds)
