"""Turning a message body into an event payload, bounded before anything is parsed.

A body is refused (`BadEvent`, dead-lettered at once with the reason) when it is
larger than EVENTS_MAX_BODY_BYTES, is not UTF-8, nests arrays/objects deeper than
EVENTS_MAX_DEPTH (checked on the raw text, so the JSON parser never recurses into a
hostile body), is not JSON, holds NaN/Infinity or a number no column of ours can
store (integers beyond signed 64 bits, floats that overflow), holds a string that is
not valid Unicode (a lone surrogate escape), or is not a JSON object.
"""

from __future__ import annotations

import json
import math
import re

# No column of ours stores an integer beyond a signed 64-bit one; the contracts bound
# each field further (contracts.MAX_STORED_INT).
MAX_INT = 2**63 - 1
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class BadEvent(ValueError):
    """The body cannot be an event; the message is the dead-letter reason."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > 19:
        raise BadEvent(f"integer out of range: {text[:40]}{'…' if len(text) > 40 else ''} ({len(text)} digits)")
    value = int(text)
    if not -MAX_INT <= value <= MAX_INT:
        raise BadEvent(f"integer out of range: {text}")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadEvent(f"number out of range: {text[:40]}")
    return value


def _parse_constant(name: str) -> float:
    raise BadEvent(f"{name} is not a JSON number")


def _depth(text: str) -> int:
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub("", text)):
        if match.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _check_strings(value: object) -> None:
    """Every string (keys included) must encode as UTF-8: no lone surrogates. The
    depth is already bounded, so this recursion is too."""
    if isinstance(value, str):
        value.encode("utf-8")
    elif isinstance(value, dict):
        for key, item in value.items():
            key.encode("utf-8")
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def decode_event(body: bytes, *, max_bytes: int, max_depth: int) -> dict:
    """The event payload of a message body, or BadEvent with the reason."""
    if len(body) > max_bytes:
        raise BadEvent(f"body is {len(body)} bytes, over the limit of {max_bytes}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadEvent(f"not valid UTF-8: {exc}") from None
    depth = _depth(text)
    if depth > max_depth:
        raise BadEvent(f"nested {depth} levels deep, over the limit of {max_depth}")
    try:
        payload = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except BadEvent:
        raise
    except (ValueError, RecursionError) as exc:
        raise BadEvent(f"not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(payload, dict):
        raise BadEvent(f"body is not a JSON object (a JSON {type(payload).__name__})")
    try:
        _check_strings(payload)
    except UnicodeEncodeError:
        raise BadEvent("holds a string that is not valid Unicode (a lone surrogate)") from None
    return payload
