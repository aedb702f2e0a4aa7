"""Bounded JSON decoding for everything a client (or another system) sends us.

`json.loads` alone accepts input that later breaks us: nesting deep enough to raise
`RecursionError` (a 500, or a dead consumer thread), integers no column can hold,
`1e999` (infinity) and `NaN`. `json_loads_bounded` refuses all of it with a
`JsonRefused` (a `ValueError`) whose message says what was wrong, so callers answer
a 4xx or dead-letter the message instead of crashing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

MAX_DEPTH = 32
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # a signed 64-bit column holds every id and amount


class JsonRefused(ValueError):
    """The document is not JSON we accept; the message names the reason."""


def _parse_int(text: str) -> int:
    if len(text) > 20:
        raise JsonRefused("A number is out of range (signed 64-bit integers only).")
    value = int(text)
    if not INT_MIN <= value <= INT_MAX:
        raise JsonRefused("A number is out of range (signed 64-bit integers only).")
    return value


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonRefused("A number is out of range (finite numbers only).")
    return value


def _refuse_constant(name: str):
    raise JsonRefused(f"{name} is not a JSON number.")


def json_depth_exceeds(document, max_depth: int) -> bool:
    """Whether arrays/objects nest deeper than `max_depth` (iterative: never recurses)."""
    stack = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        children: Iterable[object]
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def json_loads_bounded(raw: bytes | str, *, max_depth: int = MAX_DEPTH):
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise JsonRefused("The body is not valid UTF-8.") from None
    try:
        document = json.loads(raw, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonRefused(f"The JSON nests deeper than {max_depth} levels.") from None
    except JsonRefused:
        raise
    except ValueError as exc:
        raise JsonRefused(f"The body is not valid JSON: {exc}") from None
    if json_depth_exceeds(document, max_depth):
        raise JsonRefused(f"The JSON nests deeper than {max_depth} levels.")
    return document
