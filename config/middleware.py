from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404

from config.errors import json_error

request_logger = logging.getLogger("huodong.request")
error_logger = logging.getLogger("huodong.error")

# Paths whose clients are programs: they get JSON errors, never HTML.
JSON_PATH_PREFIXES = ("/api/", "/t/", "/healthz", "/readyz", "/metrics", "/sandbox/pay/v1/")


def wants_json(request) -> bool:
    return request.path.startswith(JSON_PATH_PREFIXES)


class RequestLogMiddleware:
    """One structured JSON log line per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and getattr(user, "is_authenticated", False):
            user_label = str(getattr(user, "id", None) or user)
        else:
            user_label = None
        elapsed = time.perf_counter() - started
        request_logger.info(
            "request",
            extra={  # Elastic Common Schema names (config/logs.py)
                "http.request.method": request.method,
                "url.path": request.path,
                "http.response.status_code": response.status_code,
                "event.duration": int(elapsed * 1e9),
                "latency_ms": round(elapsed * 1000, 2),
                "user.id": user_label,
            },
        )
        return response


class JsonErrorMiddleware:
    """An unhandled exception on a JSON path becomes a JSON 500 with no traceback."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not wants_json(request) or settings.DEBUG:
            return None
        if isinstance(exception, (Http404, PermissionDenied, BadRequest, SuspiciousOperation)):
            return None  # Django answers these with 404/403/400 (JSON through config.views)
        error_logger.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return json_error("server_error", "Something went wrong on our side; it has been logged.", 500)
