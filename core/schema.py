"""OpenAPI post-processing (drf-spectacular POSTPROCESSING_HOOKS): every operation
documents the error answers any JSON path can give, all in the contract's one error
shape (`{"error": {"code", "message"}}`, contracts §6). The fuzz test
(tests/config/test_api_fuzz.py) holds the API to it."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": "The one error shape of the API (contracts §6).",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "Machine code, e.g. not_found, bad_query, sold_out."},
                "message": {"type": "string", "description": "Human text."},
                "details": {"description": "Per-field reasons of a validation error, when there are some."},
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}

# Answers every operation may give, whatever its view does (middleware, parser, auth).
COMMON_ERRORS = {
    "400": "Malformed request: invalid JSON (too deep, numbers out of range), a bad query value "
    "(bad_query: e.g. page or page_size not one whole number in range) or header (bad_header).",
    "401": "Missing, malformed, wrongly signed or expired user token (contracts §5).",
    "403": "Not allowed (e.g. a missing or wrong service token).",
    "404": "Nothing here (unknown id or path).",
    "405": "Method not allowed; the Allow header lists the allowed ones.",
    "406": "The Accept header asks for something other than JSON.",
    "413": "The body is larger than API_MAX_BODY_BYTES.",
    "415": "The body is not application/json.",
}
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in COMMON_ERRORS.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if status[:1] in ("4", "5"):
                    response.setdefault("description", "An error.")
                    response["content"] = error_content
    return result
