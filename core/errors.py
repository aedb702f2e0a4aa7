"""One error shape for the whole API (contracts §6):
{"error": {"code": "<machine code>", "message": "<human text>"}}."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.utils.functional import Promise
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

# A message for people: a plain string or a lazy translation (gettext_lazy), rendered in
# the active language when it is shown.
if TYPE_CHECKING:
    from django.utils.functional import _StrPromise

    Message: TypeAlias = str | _StrPromise
else:
    Message = str | Promise


class DomainError(Exception):
    """A business rule said no. Services and selectors raise it (never an HTTP error);
    the API layer maps `code` to a status through DOMAIN_STATUS (400 when unlisted) and
    the JSON error shape; the admin shows `message` to the operator.

    Subclass per domain with a default code, e.g.::

        class SoldOut(DomainError):
            code = "sold_out"

    and add the code's status to DOMAIN_STATUS below when it is not a 400. A code
    that is not listed takes the status of its kind: `NotFound("…", code="order_not_found")`
    is a 404 like every NotFound, `Conflict("…", code="sold_out")` a 409.

    `message` is for people, in their language: mark it with `gettext_lazy` (imported
    as `_`), with named placeholders filled after translation, never an f-string inside
    `_()`::

        raise Conflict(_("Sold out."), code="sold_out")
        raise DomainError(_("Only %(left)s left.") % {"left": left}, code="too_many")

    The admin shows it in the operator's language; the API answers it in the request's
    (LocaleMiddleware: Accept-Language, else LANGUAGE_CODE). `code` never changes with
    the language: clients branch on the code, people read the message.
    """

    code = "invalid"

    def __init__(self, message: Message = "", *, code: str | None = None, details=None):
        super().__init__(message or self.code)
        if code is not None:
            self.code = code
        self.message = message or self.code
        self.details = details


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Forbidden(DomainError):
    code = "forbidden"


class Unavailable(DomainError):
    code = "unavailable"


# The one mapping from domain error codes to HTTP statuses (unlisted codes are 400).
DOMAIN_STATUS: dict[str, int] = {
    "not_found": status.HTTP_404_NOT_FOUND,
    "conflict": status.HTTP_409_CONFLICT,
    "forbidden": status.HTTP_403_FORBIDDEN,
    "unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,
}


def domain_status(error: DomainError | str) -> int:
    """The HTTP status of a domain error: its code's, else its kind's (the nearest
    class in the family whose code is listed), else 400."""
    if isinstance(error, str):
        return DOMAIN_STATUS.get(error, status.HTTP_400_BAD_REQUEST)
    for code in (error.code, *(getattr(kind, "code", None) for kind in type(error).__mro__)):
        if code in DOMAIN_STATUS:
            return DOMAIN_STATUS[code]
    return status.HTTP_400_BAD_REQUEST


class ApiError(exceptions.APIException):
    """Raise from a view or service with an explicit code and status."""

    def __init__(self, code: str, message: Message, status_code: int = status.HTTP_400_BAD_REQUEST, details=None):
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.details = details


def _plain(value):
    """`value` with every lazy (translatable) string rendered in the active language, so
    the body can be stored as JSON (idempotency records) as well as answered."""
    if isinstance(value, Promise):
        return str(value)
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def error_body(code: str, message: Message, details=None) -> dict:
    body: dict = {"error": {"code": code, "message": str(message)}}
    if details is not None:
        body["error"]["details"] = _plain(details)
    return body


def json_error(code: str, message: str, status_code: int, details=None) -> JsonResponse:
    return JsonResponse(
        error_body(code, message, details), status=status_code, json_dumps_params={"ensure_ascii": False}
    )


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return "; ".join(_flatten(item) for item in detail)
    return str(detail)


def api_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=domain_status(exc))
    if isinstance(exc, ApiError):
        return Response(error_body(exc.error_code, str(exc.detail), exc.details), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None  # a real bug: JsonErrorMiddleware turns it into a JSON 500
    if isinstance(exc, exceptions.ValidationError):
        code, message, details = "invalid", _flatten(exc.detail), exc.detail
    else:
        codes = exc.get_codes() if hasattr(exc, "get_codes") else None
        code = codes if isinstance(codes, str) else getattr(exc, "default_code", "error")
        message, details = _flatten(exc.detail), None
    response.data = error_body(code, message, details)
    return response
