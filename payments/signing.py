"""HMAC-SHA256 signatures of contracts §4, shared by our client, our result
handler and the sandbox (which plays the payment team)."""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings


def body_sign(body: bytes, *, secret: str | None = None) -> str:
    """`X-Signature` of a request: hex HMAC-SHA256(PAYMENT_SECRET, raw body)."""
    return hmac.new((secret or settings.PAYMENT_SECRET).encode(), body, hashlib.sha256).hexdigest()


def body_signature_valid(body: bytes, signature: str | None) -> bool:
    if not signature or not signature.isascii():
        return False  # a hex digest is ASCII; compare_digest raises on non-ASCII str
    return hmac.compare_digest(body_sign(body), signature.strip().lower())


def result_message(payload: dict) -> str:
    """`{paycode}|{merchant_order_no}|{status}|{amount_fen}|{transaction_id}|{occurred_at}`;
    a null transaction_id (no charge happened, e.g. CLOSED) signs as the empty string."""
    fields = ("paycode", "merchant_order_no", "status", "amount_fen", "transaction_id", "occurred_at")
    return "|".join("" if payload.get(f) is None else str(payload.get(f)) for f in fields)


def result_sign(payload: dict, *, secret: str | None = None) -> str:
    return hmac.new(
        (secret or settings.PAYMENT_SECRET).encode(), result_message(payload).encode(), hashlib.sha256
    ).hexdigest()


def result_signature_valid(payload: dict) -> bool:
    signature = payload.get("signature")
    return isinstance(signature, str) and hmac.compare_digest(result_sign(payload), signature.lower())
