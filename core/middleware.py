from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpResponseBadRequest, JsonResponse

from core.errors import json_error
from core.jsonbounds import INT_MAX, INT_MIN

request_logger = logging.getLogger("huodong.request")
error_logger = logging.getLogger("huodong.error")

# Paths whose clients are programs: they get JSON errors, never HTML.
JSON_PATH_PREFIXES = ("/api/", "/t/", "/healthz", "/readyz", "/metrics", "/sandbox/pay/v1/")


def wants_json(request) -> bool:
    return request.path.startswith(JSON_PATH_PREFIXES)


# Request headers the platform reads: printable ASCII only, bounded in length.
CHECKED_HEADERS = ("Authorization", "X-Signature", "Idempotency-Key", "If-None-Match")
MAX_HEADER_LENGTH = 4096

# The error code a JSON path answers for a status Django (not our views) produced.
STATUS_CODES = {
    400: ("bad_request", "The request is malformed."),
    401: ("not_authenticated", "Authentication is required."),
    403: ("forbidden", "You may not do this."),
    404: ("not_found", "Nothing here."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("payload_too_large", "The body is too large."),
    414: ("uri_too_long", "The URL is too long."),
    415: ("unsupported_media_type", "Send application/json."),
}


def _header_ok(value: str) -> bool:
    return len(value) <= MAX_HEADER_LENGTH and all(" " <= ch <= "~" for ch in value)


def _refuse_early(request):
    """Refusals decided from the request line and headers alone, before any view."""
    raw_length = request.META.get("CONTENT_LENGTH") or "0"
    if not raw_length.isdigit():
        return json_error("bad_request", "Content-Length is not a number.", 400)
    if int(raw_length) > settings.API_MAX_BODY_BYTES:
        return json_error("payload_too_large", f"The body is larger than {settings.API_MAX_BODY_BYTES} bytes.", 413)
    for name in CHECKED_HEADERS:
        value = request.headers.get(name)
        if value is None or _header_ok(value):
            continue
        if name == "Authorization":
            response = json_error("token_invalid", "The Authorization header must be printable ASCII.", 401)
            response["WWW-Authenticate"] = "Bearer"
            return response
        return json_error(
            "bad_header", f"The {name} header must be printable ASCII, at most {MAX_HEADER_LENGTH} characters.", 400
        )
    return None


def _json_shaped(response):
    """An error answer Django produced (HTML or empty) in the contract's JSON shape."""
    if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
        return response
    if response.status_code >= 500 and settings.DEBUG:
        return response  # the developer's traceback page
    data = getattr(response, "data", None)
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        shaped = JsonResponse(data, status=response.status_code, json_dumps_params={"ensure_ascii": False})
    else:
        code, message = STATUS_CODES.get(response.status_code, ("error", "The request was refused."))
        if response.status_code >= 500:
            code, message = "server_error", "Something went wrong on our side; it has been logged."
        shaped = json_error(code, message, response.status_code)
    for header in ("Allow", "WWW-Authenticate", "Retry-After"):
        if header in response:
            shaped[header] = response[header]
    return shaped


class JsonErrorShapeMiddleware:
    """Outermost: on the JSON paths (APIs, click URLs, health, the sandbox payment
    service) every error answer, Django's HTML 404/405/400 pages included (raised by any
    middleware or view, DEBUG on or off), leaves in the JSON error shape."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not wants_json(request):
            return self.get_response(request)
        try:
            response = self.get_response(request)
        except (SuspiciousOperation, BadRequest):
            # Only with DEBUG on: Django's debug page re-reads the request data that
            # raised (e.g. too many query fields) and raises again, out of the handler.
            return json_error("bad_request", "The request is malformed.", 400)
        return _json_shaped(response)


class JsonPathMiddleware:
    """The guard of the JSON paths (after logging, so refusals are logged): oversized
    bodies and unreadable headers are refused before any view runs, and path ids beyond
    64 bits are a 404."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not wants_json(request):
            return self.get_response(request)
        return _refuse_early(request) or self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        for name, value in view_kwargs.items():
            if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
                thing = name.removesuffix("_id")  # component_id -> component_not_found
                return json_error(f"{thing}_not_found", f"No {thing} with this id.", 404)
        return None


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
            extra={  # Elastic Common Schema names (core/logs.py)
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
        if isinstance(exception, OverflowError):
            # A client's number too large for the database (SQLite raises this on lookup).
            error_logger.warning("number out of range", extra={"path": request.path})
            if wants_json(request):
                return json_error("number_out_of_range", "A number in the request is out of range.", 400)
            return HttpResponseBadRequest("<h1>Bad request</h1><p>A number in the request is out of range.</p>")
        if not wants_json(request):
            return None
        if isinstance(exception, RequestDataTooBig):
            return json_error("payload_too_large", "The body is too large.", 413)
        if isinstance(exception, RecursionError):
            return json_error("invalid_json", "The request nests too deeply.", 400)
        if settings.DEBUG:
            return None
        if isinstance(exception, (Http404, PermissionDenied, BadRequest, SuspiciousOperation)):
            return None  # Django answers these with 404/403/400 (JSON through core.views)
        error_logger.exception("unhandled error", extra={"path": request.path, "method": request.method})
        return json_error("server_error", "Something went wrong on our side; it has been logged.", 500)
