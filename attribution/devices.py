"""Device identifiers: normalise, drop placeholders, canonicalise (contracts §1).

A click and an activation meet on *canonical keys* `<kind>:<value>`:

- `idfa`: md5(upper(IDFA)) — a raw IDFA is hashed so that it meets the md5 the
  platforms send (`idfa_md5` of the contract; the raw upper-case IDFA is kept on
  the click for the record but never used as an index).
- `caid`: md5 of the raw CAID (oceanengine only sends the md5).
- `imei`: md5(lower(trim(IMEI))).
- `oaid`: md5(OAID).
- `android_id`: md5(lower(Android ID)).
- `ipua`: md5(ip + "|" + user agent), the probabilistic fallback.

A value that is empty, an unreplaced macro (`__SOMETHING__`), a known placeholder
(all-zero ids, `NULL`, `unknown`, ...) or the digest of one of those is *missing*
and never produces a key.
"""

from __future__ import annotations

import hashlib
import json
import re
from urllib.parse import unquote

# Match order of device ids (issue: IDFA, CAID, IMEI md5, OAID, Android ID md5).
DEVICE_KINDS = ("idfa", "caid", "imei", "oaid", "android_id")
IPUA = "ipua"

_MACRO = re.compile(r"^_{1,2}[A-Z0-9_]+_{1,2}$|^\{\{?[A-Za-z0-9_]+\}?\}$|^\$\{?[A-Za-z0-9_]+\}?$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_PLACEHOLDERS = frozenset(
    {"", "null", "none", "nil", "unknown", "undefined", "nan", "n/a", "na", "-", "0", "default", "(null)", "false"}
)
_ZERO_FORMS = (
    "00000000-0000-0000-0000-000000000000",
    "0000000000000000",
    "000000000000000",
    "00000000000000",
    "0",
    "",
)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def _placeholder_digests() -> frozenset[str]:
    forms = set(_PLACEHOLDERS) | set(_ZERO_FORMS)
    forms |= {f.upper() for f in forms}
    forms |= {"NULL", "Unknown", "None"}
    return frozenset(_md5(f) for f in forms)


PLACEHOLDER_DIGESTS = _placeholder_digests()


def clean(value: object) -> str | None:
    """The trimmed value, or None when it is missing (empty, macro, placeholder)."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if "%" in text:
        text = unquote(text).strip()
    lowered = text.lower()
    if lowered in _PLACEHOLDERS or _MACRO.match(text):
        return None
    if set(lowered) <= set("0-:."):  # all-zero ids in any layout
        return None
    return text


def clean_digest(value: object) -> str | None:
    """A platform-supplied md5: lower-case hex, or None when missing or malformed."""
    text = clean(value)
    if text is None:
        return None
    text = text.lower()
    if not _HEX32.match(text) or text in PLACEHOLDER_DIGESTS:
        return None
    return text


def idfa_key(raw: object) -> str | None:
    text = clean(raw)
    return None if text is None else _md5(text.upper())


def imei_key(raw: object) -> str | None:
    text = clean(raw)
    return None if text is None else _md5(text.lower())


def oaid_key(raw: object) -> str | None:
    text = clean(raw)
    return None if text is None else _md5(text)


def android_id_key(raw: object) -> str | None:
    text = clean(raw)
    return None if text is None else _md5(text.lower())


MAX_CAIDS = 4  # a CAID list carries the current and previous versions: 2 in practice


class MalformedDeviceValue(ValueError):
    """A device value whose shape breaks contracts §1 (raised only when asked to be strict)."""


def _flat(item: object) -> bool:
    scalars = (str, int, float, bool, type(None))
    return isinstance(item, scalars) or (isinstance(item, dict) and all(isinstance(v, scalars) for v in item.values()))


def caid_keys(raw: object, *, hashed: bool = False, strict: bool = False) -> list[str]:
    """CAIDs: a JSON list of {"caid"|"caid_md5", "version"} (URL-encoded or not), or one
    plain value. `hashed` says the plain values are already md5 digests. Malformed JSON
    (deep nesting included) gives no key, or MalformedDeviceValue when `strict`: a list
    of more than MAX_CAIDS entries or of nested values is malformed too."""
    text = clean(raw)
    if text is None:
        return []
    items: list = [text]
    if text[:1] in "[{":
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            if strict:
                raise MalformedDeviceValue("caid is not valid JSON") from None
            return []
        items = parsed if isinstance(parsed, list) else [parsed]
        if strict and (len(items) > MAX_CAIDS or not all(_flat(item) for item in items)):
            raise MalformedDeviceValue(f"caid: a list of at most {MAX_CAIDS} flat entries")
    keys: list[str] = []
    for item in items:
        if isinstance(item, dict):
            if item.get("caid_md5") is not None:
                digest = clean_digest(item.get("caid_md5"))
            else:
                value = clean(item.get("caid"))
                digest = None if value is None else _md5(value)
        else:
            if hashed:
                digest = clean_digest(item)
            else:
                value = clean(item)
                digest = None if value is None else _md5(value)
        if digest and digest not in PLACEHOLDER_DIGESTS and digest not in keys:
            keys.append(digest)
    return keys


def ipua_key(ip: object, ua: object) -> str | None:
    ip_text, ua_text = clean(ip), clean(ua)
    if ip_text is None or ua_text is None:
        return None
    return _md5(f"{ip_text}|{ua_text}")


def activation_keys(device: dict | None, *, ip: object = None, ua: object = None) -> dict[str, list[str]]:
    """Canonical keys of a user-center event's raw device (contracts §2), by kind."""
    device = device or {}
    keys: dict[str, list[str]] = {}
    for kind, value in (
        ("idfa", idfa_key(device.get("idfa"))),
        ("imei", imei_key(device.get("imei"))),
        ("oaid", oaid_key(device.get("oaid"))),
        ("android_id", android_id_key(device.get("android_id"))),
    ):
        if value:
            keys[kind] = [value]
    caids = caid_keys(device.get("caid"))
    if caids:
        keys["caid"] = caids
    ipua = ipua_key(ip, ua)
    if ipua:
        keys[IPUA] = [ipua]
    return keys


def flat_keys(keys: dict[str, list[str]], *, with_ipua: bool = False) -> list[str]:
    """`kind:value` strings in match order."""
    kinds = DEVICE_KINDS + ((IPUA,) if with_ipua else ())
    return [f"{kind}:{value}" for kind in kinds for value in keys.get(kind, [])]
