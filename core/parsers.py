"""The API's one JSON parser: bounded size, depth and numbers (core.jsonbounds).

(It raises DRF exceptions, not core.errors.ApiError: DRF imports its parsers while
core.errors is still importing rest_framework.views.)"""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

from core.jsonbounds import JsonRefused, json_loads_bounded


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
        try:
            return json_loads_bounded(raw)
        except JsonRefused as exc:
            raise exceptions.ParseError(str(exc), code="invalid_json") from None
