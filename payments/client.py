"""The payment service's HTTP API (contracts §4), as we call it.

Every call is signed, bounded by PAYMENT_TIMEOUT_SECONDS, and raises
`PaymentServiceError` for anything that is not the contract's answer (connection
refused, timeout, 5xx, a body that is not the expected JSON), so callers can fail
cleanly. Never called inside a database transaction that holds stock."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings

from core.outbound import outbound_request
from payments.signing import body_sign


class PaymentServiceError(Exception):
    """The payment service is down, slow or answered outside the contract."""

    def __init__(self, message: str, *, kind: str = "unavailable"):
        super().__init__(message)
        self.kind = kind  # unavailable | timeout | bad_response


class PaycodeAlreadyPaid(Exception):
    """Close answered 409 PAID: the user paid before we closed."""


@dataclass(frozen=True)
class Paycode:
    paycode: str
    cashier_url: str
    expires_at: str


PAYCODE_MAX_LENGTH = 64  # Order.paycode
CASHIER_URL_MAX_LENGTH = 500  # Order.cashier_url


def _url(path: str) -> str:
    return settings.PAYMENT_SERVICE_URL.rstrip("/") + path


def _send(method: str, path: str, body: bytes = b"") -> requests.Response:
    headers = {"X-Signature": body_sign(body), "Accept": "application/json"}
    if body:
        headers["Content-Type"] = "application/json"
    try:
        return outbound_request(
            method, _url(path), data=body or None, headers=headers, timeout=settings.PAYMENT_TIMEOUT_SECONDS
        )
    except requests.Timeout as exc:
        raise PaymentServiceError(f"payment service timed out: {exc}", kind="timeout") from None
    except requests.RequestException as exc:
        raise PaymentServiceError(f"payment service unreachable: {exc}", kind="unavailable") from None


def _status_kind(response: requests.Response) -> str:
    """A 5xx is the service failing (down); any other unexpected status is an answer outside the contract."""
    return "unavailable" if response.status_code >= 500 else "bad_response"


def _json(response: requests.Response, required: tuple[str, ...]) -> dict:
    try:
        data = response.json()
    except ValueError:
        raise PaymentServiceError(
            f"payment service answered {response.status_code} without JSON", kind="bad_response"
        ) from None
    if not isinstance(data, dict) or any(key not in data for key in required):
        raise PaymentServiceError(
            f"payment service answer lacks {', '.join(required)}: {str(data)[:200]}", kind="bad_response"
        )
    return data


def paycode_create(
    *, merchant_order_no: str, amount_fen: int, subject: str, user_id: str, expire_seconds: int
) -> Paycode:
    body = json.dumps(
        {
            "merchant_order_no": merchant_order_no,
            "amount_fen": amount_fen,
            "subject": subject,
            "user_id": user_id,
            "expire_seconds": expire_seconds,
        },
        ensure_ascii=False,
    ).encode()
    response = _send("POST", "/v1/paycodes", body)
    if response.status_code != 200:
        raise PaymentServiceError(
            f"create paycode answered {response.status_code}: {response.text[:200]}", kind=_status_kind(response)
        )
    data = _json(response, ("paycode", "cashier_url", "expires_at"))
    paycode, cashier_url = data["paycode"], data["cashier_url"]
    # what we store (Order.paycode, Order.cashier_url) and send the user to
    if not isinstance(paycode, str) or not 0 < len(paycode) <= PAYCODE_MAX_LENGTH or not paycode.isprintable():
        raise PaymentServiceError(f"create answered an unusable paycode: {str(paycode)[:80]!r}", kind="bad_response")
    if (
        not isinstance(cashier_url, str)
        or len(cashier_url) > CASHIER_URL_MAX_LENGTH
        or urlsplit(cashier_url).scheme not in ("http", "https")
    ):
        raise PaymentServiceError(
            f"create answered an unusable cashier_url: {str(cashier_url)[:80]!r}", kind="bad_response"
        )
    return Paycode(paycode=paycode, cashier_url=cashier_url, expires_at=str(data["expires_at"]))


def paycode_close(*, paycode: str) -> None:
    """Returns when the paycode is closed; raises PaycodeAlreadyPaid on 409 PAID."""
    response = _send("POST", f"/v1/paycodes/{quote(paycode, safe='')}/close")
    if response.status_code == 409:
        data = _json(response, ("status",))
        if data["status"] == "PAID":
            raise PaycodeAlreadyPaid(paycode)
        raise PaymentServiceError(f"close answered 409 {data['status']}", kind="bad_response")
    if response.status_code != 200:
        raise PaymentServiceError(
            f"close paycode answered {response.status_code}: {response.text[:200]}", kind=_status_kind(response)
        )
    data = _json(response, ("status",))
    if data["status"] != "CLOSED":
        raise PaymentServiceError(f"close answered status {data['status']}", kind="bad_response")


def paycode_query(*, paycode: str) -> dict:
    response = _send("GET", f"/v1/paycodes/{quote(paycode, safe='')}")
    if response.status_code != 200:
        raise PaymentServiceError(
            f"query paycode answered {response.status_code}: {response.text[:200]}", kind=_status_kind(response)
        )
    data = _json(response, ("paycode", "merchant_order_no", "status", "amount_fen"))
    if data["status"] not in ("PENDING", "PAID", "FAILED", "CLOSED", "REFUNDED"):
        raise PaymentServiceError(f"query answered unknown status {data['status']!r}", kind="bad_response")
    return data
