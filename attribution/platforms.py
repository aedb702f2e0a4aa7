"""What differs between ad platforms (contracts §1 and §3): click-URL macros, the
answer to a click, and the postback request and its success test."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

OCEANENGINE = "oceanengine"
TENCENT = "tencent"
KUAISHOU = "kuaishou"
GENERIC = "generic"
PLATFORMS = (OCEANENGINE, TENCENT, KUAISHOU, GENERIC)
PLATFORM_CHOICES = [
    (OCEANENGINE, "巨量引擎 (Ocean Engine)"),
    (TENCENT, "广点通 (Tencent Ads)"),
    (KUAISHOU, "磁力引擎 (Kuaishou)"),
    (GENERIC, "Generic"),
]

EVENT_ACTIVATE = "activate"
EVENT_REGISTER = "register"
EVENT_PAY = "pay"
EVENT_TYPES = (EVENT_ACTIVATE, EVENT_REGISTER, EVENT_PAY)

# Our query parameter -> the platform's macro (contracts §1). None: not offered.
_MACROS: dict[str, dict[str, str | None]] = {
    OCEANENGINE: {
        "account": "__ADVERTISER_ID__",
        "campaign": "__PROJECT_ID__",
        "ad": "__PROMOTION_ID__",
        "creative": "__CID__",
        "click_id": "__REQUEST_ID__",
        "os": "__OS__",
        "idfa": "__IDFA__",
        "idfa_md5": "__IDFA_MD5__",
        "imei_md5": "__IMEI__",
        "oaid": "__OAID__",
        "oaid_md5": "__OAID_MD5__",
        "android_id_md5": "__ANDROIDID__",
        "caid": "__CAID_MD5__",
        "ip": "__IP__",
        "ua": "__UA__",
        "ts": "__TS__",
        "callback": "__CALLBACK_PARAM__",
    },
    TENCENT: {
        "account": "__ACCOUNT_ID__",
        "campaign": "__CAMPAIGN_ID__",
        "ad": "__ADGROUP_ID__",
        "creative": "__AD_ID__",
        "click_id": "__CLICK_ID__",
        "os": "__DEVICE_OS_TYPE__",
        "idfa_md5": "__MUID__",  # on iOS links; imei_md5 on Android links
        "oaid": "__OAID__",
        "oaid_md5": "__HASH_OAID__",
        "android_id_md5": "__HASH_ANDROID_ID__",
        "caid": "__CAID__",
        "ip": "__IP__",
        "ua": "__USER_AGENT__",
        "ts": "__CLICK_TIME__",
        "callback": "__CALLBACK__",
    },
    KUAISHOU: {
        "account": "__ACCOUNTID__",
        "campaign": "__DID__",
        "ad": "__AID__",
        "creative": "__CID__",
        "idfa_md5": "__IDFA2__",
        "imei_md5": "__IMEI2__",
        "oaid": "__OAID__",
        "oaid_md5": "__OAID2__",
        "android_id_md5": "__ANDROIDID2__",
        "ip": "__IP__",
        "ua": "__UA__",
        "ts": "__TS__",
        "callback": "__CALLBACK__",
    },
    GENERIC: {
        "campaign": "{campaign}",
        "ad": "{ad}",
        "creative": "{creative}",
        "click_id": "{click_id}",
        "os": "{os}",
        "idfa": "{idfa}",
        "idfa_md5": "{idfa_md5}",
        "imei_md5": "{imei_md5}",
        "oaid": "{oaid}",
        "oaid_md5": "{oaid_md5}",
        "android_id_md5": "{android_id_md5}",
        "caid": "{caid}",
        "ip": "{ip}",
        "ua": "{ua}",
        "ts": "{ts_ms}",
        "callback": "{callback_url}",
    },
}


def macros(platform: str, os: str) -> dict[str, str]:
    table = {k: v for k, v in _MACROS[platform].items() if v}
    if platform == TENCENT and os == "android":
        table["imei_md5"] = table.pop("idfa_md5")
    return table


def click_url_template(*, site_url: str, platform: str, token: str, os: str) -> str:
    query = "&".join(f"{param}={macro}" for param, macro in macros(platform, os).items())
    return f"{site_url.rstrip('/')}/t/{platform}/{token}?{query}"


def click_answer(platform: str) -> bytes:
    """The body of an accepted click (contracts §1)."""
    return b'{"ret": 0, "msg": "ok"}' if platform == TENCENT else b'{"code": 0}'


def click_time_ms(platform: str, raw: str | None) -> int | None:
    """The platform's click time in Unix ms (tencent sends seconds)."""
    text = (raw or "").strip()
    # ASCII digits only ("²".isdigit() is true but int() refuses it); 16 digits is far past any Unix ms
    if not (text.isascii() and text.isdigit()) or len(text) > 16:
        return None
    value = int(text)
    if platform == TENCENT or value < 10**11:
        value *= 1000
    return value


def click_os(platform: str, raw: str | None, link_os: str) -> str:
    value = (raw or "").strip().lower()
    if platform == OCEANENGINE:
        return {"0": "android", "1": "ios"}.get(value, link_os)
    if value in ("ios", "android"):
        return value
    return link_os


# --- postbacks (contracts §3) -------------------------------------------------
EVENT_CODES: dict[str, dict[str, str]] = {
    OCEANENGINE: {EVENT_ACTIVATE: "0", EVENT_REGISTER: "1", EVENT_PAY: "2"},
    TENCENT: {EVENT_ACTIVATE: "ACTIVATE_APP", EVENT_REGISTER: "REGISTER", EVENT_PAY: "PURCHASE"},
    KUAISHOU: {EVENT_ACTIVATE: "1", EVENT_REGISTER: "2", EVENT_PAY: "3"},
    GENERIC: {EVENT_ACTIVATE: "activate", EVENT_REGISTER: "register", EVENT_PAY: "pay"},
}


@dataclass(frozen=True)
class PostbackRequest:
    method: str
    url: str
    body: bytes | None = None
    to_callback: bool = False  # the URL is the click's callback (outside input), not a configured base URL

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"} if self.body is not None else {}


class PostbackNotPossible(ValueError):
    """The click lacks what the platform needs (no callback): nothing to send."""


def _add_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _callback_url(callback: str) -> str:
    url = callback.strip()
    if "%3A" in url[:12].upper():
        url = unquote(url)
    if not url.startswith(("http://", "https://")):
        raise PostbackNotPossible("the click's callback is not an http(s) URL")
    return url


def postback_request(
    *,
    platform: str,
    base_url: str,
    callback: str,
    event_type: str,
    event_time_ms: int,
    conversion_id: int,
    amount_fen: int | None,
    device_keys: dict[str, list[str]],
    oaid: str = "",
) -> PostbackRequest:
    if not callback:
        raise PostbackNotPossible("the click carried no callback")
    code = EVENT_CODES[platform][event_type]
    if platform == OCEANENGINE:
        params = {"callback": callback, "event_type": code, "conv_time": str(event_time_ms // 1000)}
        if event_type == EVENT_PAY:
            params["props"] = json.dumps({"pay_amount": amount_fen or 0}, separators=(",", ":"))
        return PostbackRequest("GET", _add_query(base_url, params))
    if platform == KUAISHOU:
        params = {"callback": callback, "event_type": code, "event_time": str(event_time_ms)}
        if event_type == EVENT_PAY:
            params["purchase_amount"] = str(Decimal(amount_fen or 0) / 100)
        return PostbackRequest("GET", _add_query(base_url, params))
    if platform == TENCENT:
        user_id: dict[str, str] = {}
        if device_keys.get("idfa"):
            user_id = {"hash_idfa": device_keys["idfa"][0]}
        elif device_keys.get("imei"):
            user_id = {"hash_imei": device_keys["imei"][0]}
        elif oaid:
            user_id = {"oaid": oaid}
        elif device_keys.get("android_id"):
            user_id = {"hash_android_id": device_keys["android_id"][0]}
        action: dict = {
            "outer_action_id": str(conversion_id),
            "action_time": event_time_ms // 1000,
            "user_id": user_id,
            "action_type": code,
        }
        if event_type == EVENT_PAY:
            action["action_param"] = {"value": amount_fen or 0}
        body = json.dumps({"actions": [action]}, separators=(",", ":")).encode()
        return PostbackRequest("POST", _callback_url(callback), body, to_callback=True)
    url = _add_query(_callback_url(callback), {"event": code, "ts": str(event_time_ms)})
    return PostbackRequest("GET", url, to_callback=True)


def host_matches(host: str, patterns: list[str]) -> str | None:
    """The allow-list entry that admits `host` ("ad.example.com" exactly, "*.example.com"
    any subdomain of example.com, an IP address exactly), or None."""
    host = host.lower().rstrip(".")
    for raw in patterns:
        pattern = raw.strip().lower().rstrip(".")
        if not pattern:
            continue
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return raw
        elif host == pattern.strip("[]"):
            return raw
    return None


def postback_succeeded(platform: str, status: int, body: bytes) -> bool:
    if platform == GENERIC:
        return 200 <= status < 300
    if status != 200:
        return False
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    if not isinstance(data, dict):
        return False
    if platform == KUAISHOU:
        return data.get("result") == 1
    return data.get("code") == 0
