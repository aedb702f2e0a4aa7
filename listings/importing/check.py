"""The rules of one listing, in one place (no database access).

- `row_parse(line, raw)`: one row of an uploaded file (raw spreadsheet cells) to
  clean values, or its row errors.
- `listing_values_check(values)`: the same rules on typed values (a listing saved
  one by one: `listings.services.listing_save`/`listing_update`, and the admin form
  that shows their messages beside the fields).

Both go through the same per-field rules below, so the upload and the admin can
never disagree about what a listing may hold.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from decimal import (
    ROUND_HALF_UP,
    Clamped,
    Context,
    Decimal,
    DecimalException,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
)
from typing import Any
from urllib.parse import urlsplit

from django.utils.translation import gettext

from core.spreadsheets import formula_like
from listings.importing.parse import COLUMN_BY_KEY, RowError

MAX_TAGS = 10
MAX_TAG_LENGTH = 16
MAX_PRICE_FEN = 10**13  # 1,000 亿元: anything above is a typo
MAX_AREA = Decimal("9999999.99")
MAX_SORT_ORDER = 1_000_000_000
NUMBER_COLUMNS = frozenset({"price_yuan", "price_fen", "area_m2", "sort_order"})  # "-3" is a number there
LENGTHS = {"external_id": 64, "city": 32, "title": 200, "district": 64, "address": 255, "layout": 32}
URL_LENGTH = 500
URL_FIELDS = ("cover_image_url", "detail_url")
TRUE_WORDS = {"1", "true", "yes", "y", "是", "上架", "on"}
FALSE_WORDS = {"0", "false", "no", "n", "否", "下架", "off"}
TAG_SPLIT = re.compile(r"[|,，、;；]")
_SPACE = re.compile(r"\s")
# Numbers are read exactly: a value that does not fit 28 significant digits and a
# small exponent is refused, so nothing later rounds or overflows (1e-999999999
# yuan must not become 0 fen, 1e999999 must not crash the import).
NUMBER_CONTEXT = Context(
    prec=28, Emax=99, Emin=-99, traps=[InvalidOperation, Overflow, Underflow, Subnormal, Inexact, Rounded, Clamped]
)


# --- the rules, one field at a time (a message, or None) ------------------------
# Messages are translated when made (gettext): the admin and the error file show
# them in the operator's language; the background import stores them in the
# default language (LANGUAGE_CODE).


def _not_a_number(value: Any) -> str:
    return gettext("is not a number (got %(value)s)") % {"value": repr(_text(value)[:40])}


def formula_problem(key: str, value: str) -> str | None:
    """Text a spreadsheet would run as a formula (OWASP CSV injection; core.spreadsheets)."""
    if value.lstrip().startswith("="):
        return gettext(
            "contains a formula (%(value)s); formulas are not imported. "
            "Copy the column and use Paste Special → Values, then upload again."
        ) % {"value": value.strip()[:40]}
    if key not in NUMBER_COLUMNS and formula_like(value):
        return gettext(
            "starts with %(first)s (%(value)s): text starting with = + - @, "
            "a tab or a line break would run as a formula when the listings are opened in Excel. "
            "Remove that first character."
        ) % {"first": repr(value.lstrip(" ")[:1]), "value": value.strip()[:40]}
    return None


def text_problem(key: str, text: str) -> str | None:
    limit = LENGTHS[key]
    if not text and COLUMN_BY_KEY[key].required:
        return gettext("is empty; every listing needs one")
    if len(text) > limit:
        return gettext("is too long (%(length)s characters; at most %(limit)s)") % {"length": len(text), "limit": limit}
    if not text.isprintable() and any(  # 全角空格 is text
        not ch.isprintable() and unicodedata.category(ch) != "Zs" for ch in text
    ):
        return gettext("contains line breaks or control characters")
    return None


def url_problem(text: str) -> str | None:
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or _SPACE.search(text):
        return gettext("is not a web address starting with http:// or https:// (got %(value)s)") % {
            "value": repr(text[:60])
        }
    if len(text) > URL_LENGTH:
        return gettext("is too long (%(length)s characters; at most %(limit)s)") % {
            "length": len(text),
            "limit": URL_LENGTH,
        }
    return None


def tags_problem(tags: list[str]) -> str | None:
    if len(tags) > MAX_TAGS:
        return gettext("has %(count)s tags; at most %(limit)s") % {"count": len(tags), "limit": MAX_TAGS}
    if any(len(t) > MAX_TAG_LENGTH for t in tags):
        return gettext("each tag must be at most %(limit)s characters") % {"limit": MAX_TAG_LENGTH}
    return None


def price_problem(fen: Decimal | int, *, shown: str, whole: str | None = None) -> str | None:
    if fen < 0:
        return gettext("must not be negative (got %(value)s)") % {"value": shown}
    if fen != int(fen):
        return gettext("must be in %(unit)s (got %(value)s)") % {"unit": whole or gettext("whole fen"), "value": shown}
    if fen > MAX_PRICE_FEN:
        return gettext("is implausibly large (got %(value)s); check the unit") % {"value": shown}
    return None


def area_problem(area: Decimal, *, shown: str) -> str | None:
    """None, or why `area` (already read as a number) is refused; stored with 2 decimals."""
    if area > MAX_AREA:
        return gettext("is implausibly large (got %(value)s)") % {"value": shown}
    if area.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) <= 0:
        return gettext("must be greater than 0 (got %(value)s)") % {"value": shown}
    return None


def sort_order_problem(order: Decimal | int, *, shown: str) -> str | None:
    if order != int(order) or abs(int(order)) > MAX_SORT_ORDER:
        return gettext("must be a whole number (got %(value)s)") % {"value": repr(shown[:40])}
    return None


# --- typed values (one listing saved on its own) --------------------------------


def listing_values_check(values: dict[str, Any]) -> dict[str, str]:
    """{field: message} for the fields of `values` that break a rule (empty: fine).
    `values` holds model values (price_fen int, area_m2 Decimal or None, tags a
    list); fields not given are not checked."""
    problems: dict[str, str] = {}

    def add(field: str, message: str | None) -> None:
        if message and field not in problems:
            problems[field] = message

    for key in (*LENGTHS, *URL_FIELDS, "tags"):
        if key not in values:
            continue
        items = values[key] if key == "tags" else [values[key]]
        for item in items or []:
            if isinstance(item, str):
                add(key, formula_problem(key, item))
    for key in LENGTHS:
        if key in values and key != "city":
            add(key, text_problem(key, "" if values[key] is None else str(values[key]).strip()))
    if "city" in values:
        add("city", text_problem("city", str(values["city"] or "").strip()))
    for key in URL_FIELDS:
        if key in values:
            add(key, url_problem(values[key] or ""))
    if "tags" in values:
        tags = values["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            add("tags", gettext("must be a list of texts"))
        else:
            add("tags", tags_problem(tags))
    if "price_fen" in values:
        price = values["price_fen"]
        if price is None:
            add("price_fen", gettext("is empty; every listing needs a price (0 is allowed)"))
        else:
            add("price_fen", price_problem(price, shown=str(price)))
    if values.get("area_m2") is not None:
        add("area_m2", area_problem(Decimal(values["area_m2"]), shown=str(values["area_m2"])))
    if values.get("sort_order") is not None:
        add("sort_order", sort_order_problem(values["sort_order"], shown=str(values["sort_order"])))
    return problems


# --- one row of a file ----------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value).strip()


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise InvalidOperation
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        text = str(value).strip().replace(",", "").replace("，", "").replace("¥", "").replace("￥", "").replace(" ", "")
        if not text:
            raise InvalidOperation
        number = Decimal(text)
    if not number.is_finite():
        raise InvalidOperation
    try:
        return NUMBER_CONTEXT.create_decimal(number)  # refuses what would round, overflow or underflow
    except DecimalException:
        raise InvalidOperation from None


def row_parse(line: int, raw: dict[str, Any]) -> tuple[dict[str, Any] | None, list[RowError]]:
    """Clean one row: (values, []) or (None, errors)."""
    errors: list[RowError] = []
    for key, value in raw.items():
        if isinstance(value, str) and (message := formula_problem(key, value)):
            errors.append(RowError(line, key, message))
    if errors:
        return None, errors

    out: dict[str, Any] = {}
    for key in LENGTHS:
        text = _text(raw.get(key))
        if message := text_problem(key, text):
            errors.append(RowError(line, key, message))
        out[key] = text

    if "price_fen" in raw:
        column, value = "price_fen", raw.get("price_fen")
    else:
        column, value = "price_yuan", raw.get("price_yuan")
    if value is None or _text(value) == "":
        errors.append(RowError(line, column, gettext("is empty; every listing needs a price (0 is allowed)")))
    else:
        try:
            number = _decimal(value)
        except (InvalidOperation, ValueError):
            errors.append(RowError(line, column, _not_a_number(value)))
        else:
            fen = number if column == "price_fen" else number * 100
            whole = gettext("whole fen") if column == "price_fen" else gettext("at most 2 decimals (fen)")
            if message := price_problem(fen, shown=_text(value), whole=whole):
                errors.append(RowError(line, column, message))
            else:
                out["price_fen"] = int(fen)

    area = raw.get("area_m2")
    out["area_m2"] = None
    if area is not None and _text(area) != "":
        try:
            number = _decimal(
                str(area).replace("㎡", "").replace("m²", "").replace("平米", "") if isinstance(area, str) else area
            )
        except (InvalidOperation, ValueError):
            errors.append(RowError(line, "area_m2", _not_a_number(area)))
        else:
            if message := area_problem(number, shown=_text(area)):
                errors.append(RowError(line, "area_m2", message))
            else:
                out["area_m2"] = number.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)  # stored with 2 decimals

    for key in URL_FIELDS:
        text = _text(raw.get(key))
        message = url_problem(text)
        if message:
            errors.append(RowError(line, key, message))
        out[key] = "" if message and url_problem(text[:URL_LENGTH]) else text  # not a web address: dropped

    tags_text = _text(raw.get("tags"))
    tags = [t.strip() for t in TAG_SPLIT.split(tags_text) if t.strip()] if tags_text else []
    if message := tags_problem(tags):
        errors.append(RowError(line, "tags", message))
    out["tags"] = tags

    order_text = _text(raw.get("sort_order"))
    out["sort_order"] = 0
    if order_text:
        try:
            order = _decimal(raw.get("sort_order"))
        except (InvalidOperation, ValueError):
            errors.append(
                RowError(
                    line,
                    "sort_order",
                    gettext("must be a whole number (got %(value)s)") % {"value": repr(order_text[:40])},
                )
            )
        else:
            if message := sort_order_problem(order, shown=order_text):
                errors.append(RowError(line, "sort_order", message))
            else:
                out["sort_order"] = int(order)

    active_text = _text(raw.get("is_active")).lower()
    if not active_text or active_text in TRUE_WORDS:
        out["is_active"] = True
    elif active_text in FALSE_WORDS:
        out["is_active"] = False
    else:
        errors.append(
            RowError(
                line,
                "is_active",
                gettext("must be yes or no (1/0, 是/否, 上架/下架); got %(value)s") % {"value": repr(active_text[:20])},
            )
        )

    return (None, errors) if errors else (out, [])
