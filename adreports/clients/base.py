"""What the three reporting clients share: one request function that turns every
answer outside the contract into an `ApiError` of a known kind, and the exact
conversions of their numbers (JSON decimals are parsed as Decimal, never float)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from urllib.parse import urlsplit

import requests
from django.conf import settings

from core.outbound import outbound_request


class ApiError(Exception):
    """An answer that is not the contract's success.

    kind: `unavailable` (network error, timeout, 5xx: retry), `bad_response` (not
    JSON, not the contract's shape: retry, then record), `rate_limited` (back off and
    retry), `token_expired` (refresh, then retry once), `refresh_token_invalid`
    (operator must authorise again), `error` (any other code: recorded, not retried).
    The message never carries a token: URLs are reduced to their host."""

    RETRYABLE = ("unavailable", "bad_response")

    def __init__(self, message: str, *, kind: str, code: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.code = code


@dataclass(frozen=True)
class Tokens:
    access_token: str
    access_expires_in: int
    refresh_token: str
    refresh_expires_in: int | None = None


@dataclass(frozen=True)
class ReportRow:
    day: date
    campaign_id: str
    ad_id: str
    cost_fen: int
    impressions: int
    clicks: int
    conversions: int


@dataclass(frozen=True)
class ReportPage:
    rows: list[ReportRow]
    total_pages: int


def yuan_to_fen(value) -> int:
    """Yuan (a decimal string or a JSON number parsed as Decimal) to fen, exactly;
    a sub-fen remainder (some platforms report 厘) rounds half up."""
    if isinstance(value, bool) or not isinstance(value, (str, Decimal, int)):
        raise ApiError(f"money {value!r} is not a decimal number", kind="bad_response")
    try:
        amount = Decimal(value) if not isinstance(value, str) else Decimal(value.strip())
    except InvalidOperation:
        raise ApiError(f"money {str(value)[:40]!r} is not a decimal number", kind="bad_response") from None
    if not amount.is_finite() or amount < 0:
        raise ApiError(f"money {str(value)[:40]!r} is not a non-negative amount", kind="bad_response")
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fen(value) -> int:
    """An amount the platform already gives in fen: a non-negative JSON integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(f"fen amount {str(value)[:40]!r} is not a non-negative integer", kind="bad_response")
    return value


def count(value) -> int:
    """A count: a non-negative integer, or its decimal string (some platforms quote numbers)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, Decimal) and value == value.to_integral_value() and value >= 0:
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(f"count {str(value)[:40]!r} is not a non-negative integer", kind="bad_response")
    return value


def ident(value) -> str:
    """A campaign or ad id: digits as a string (JSON number or string)."""
    if isinstance(value, bool) or value is None:
        raise ApiError("missing id", kind="bad_response")
    text = str(value).strip()
    if not text or len(text) > 64:
        raise ApiError(f"id {text[:40]!r} is empty or too long", kind="bad_response")
    return text


def day(value) -> date:
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise ApiError(f"day {str(value)[:40]!r} is not YYYY-MM-DD", kind="bad_response") from None


class ReportClient:
    """One platform's reporting API. Subclasses set the answer codes and implement
    `refresh`, `exchange_code` and `report_page`."""

    platform = ""
    RATE_LIMIT_CODES: frozenset[int] = frozenset()
    TOKEN_EXPIRED_CODES: frozenset[int] = frozenset()
    REFRESH_INVALID_CODES: frozenset[int] = frozenset()
    CODE_PARAM = ""  # the OAuth callback's query parameter carrying the code
    setting = ""

    @property
    def base_url(self) -> str:
        return getattr(settings, self.setting).rstrip("/")

    def request(
        self, method: str, path: str, *, params=None, json_body=None, headers=None, secret_answer: bool = False
    ) -> dict:
        """The `data` of a success answer; ApiError otherwise. `secret_answer`: the
        answer carries tokens, so no part of its body goes into an error message."""
        url = self.base_url + path
        host = urlsplit(url).netloc
        try:
            response = outbound_request(
                method,
                url,
                params=params,
                json=json_body,
                headers={"Accept": "application/json", **(headers or {})},
                timeout=settings.AD_API_TIMEOUT_SECONDS,
            )
        except requests.Timeout:
            raise ApiError(f"{self.platform} {path}: timed out ({host})", kind="unavailable") from None
        except requests.RequestException as exc:
            # the exception's text holds the full URL (a query access_token): name its class only
            raise ApiError(f"{self.platform} {path}: {type(exc).__name__} ({host})", kind="unavailable") from None
        excerpt = "" if secret_answer else ": " + response.text[:160]
        if response.status_code >= 500:
            raise ApiError(f"{self.platform} {path}: HTTP {response.status_code}{excerpt}", kind="unavailable")
        if response.status_code == 429:
            raise ApiError(f"{self.platform} {path}: HTTP 429", kind="rate_limited")
        if response.status_code != 200:
            raise ApiError(f"{self.platform} {path}: HTTP {response.status_code}{excerpt}", kind="bad_response")
        try:
            body = json.loads(response.content, parse_float=Decimal)
        except ValueError:
            raise ApiError(f"{self.platform} {path}: answer is not JSON{excerpt}", kind="bad_response") from None
        if not isinstance(body, dict) or "code" not in body:
            raise ApiError(f"{self.platform} {path}: answer has no code{excerpt}", kind="bad_response")
        code = body["code"]
        if code != 0:
            message = "" if secret_answer else str(body.get("message", ""))[:200]
            kind = "error"
            if code in self.RATE_LIMIT_CODES:
                kind = "rate_limited"
            elif code in self.TOKEN_EXPIRED_CODES:
                kind = "token_expired"
            elif code in self.REFRESH_INVALID_CODES:
                kind = "refresh_token_invalid"
            raise ApiError(f"{self.platform} {path}: code {code} {message}".rstrip(), kind=kind, code=code)
        data = body.get("data")
        if not isinstance(data, dict):
            raise ApiError(f"{self.platform} {path}: answer has no data object", kind="bad_response")
        return data

    def tokens(self, data: dict, *, access_expiry_field: str) -> Tokens:
        try:
            access, refresh = data["access_token"], data["refresh_token"]
            expires_in = count(data[access_expiry_field])
            refresh_in = data.get("refresh_token_expires_in")
            refresh_in = count(refresh_in) if refresh_in is not None else None
        except (KeyError, ApiError):
            raise ApiError(f"{self.platform}: token answer lacks tokens or expiry", kind="bad_response") from None
        if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
            raise ApiError(f"{self.platform}: token answer has empty tokens", kind="bad_response")
        return Tokens(access, expires_in, refresh, refresh_in)

    # --- per platform ---------------------------------------------------------
    def refresh(self, *, app_id: str, secret: str, refresh_token: str) -> Tokens:
        raise NotImplementedError

    def exchange_code(self, *, app_id: str, secret: str, code: str, redirect_uri: str) -> Tokens:
        raise NotImplementedError

    def authorize_url(self, *, app_id: str, redirect_uri: str, state: str) -> str:
        raise NotImplementedError

    def report_page(
        self, *, access_token: str, account_id: str, start: date, end: date, page: int, page_size: int
    ) -> ReportPage:
        raise NotImplementedError


def rows_of(data: dict, field: str, platform: str) -> list:
    rows = data.get(field)
    if rows is None:
        return []
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ApiError(f"{platform}: data.{field} is not a list of objects", kind="bad_response")
    return rows


def total_pages(data: dict, platform: str) -> int:
    info = data.get("page_info")
    if not isinstance(info, dict):
        raise ApiError(f"{platform}: answer has no page_info", kind="bad_response")
    try:
        return count(info.get("total_page", 0))
    except ApiError:
        raise ApiError(f"{platform}: page_info.total_page is not a count", kind="bad_response") from None
