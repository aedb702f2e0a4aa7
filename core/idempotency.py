"""`Idempotency-Key` for retried POSTs (claims, orders).

    status, body = idempotent_call(
        scope="coupons.claim", user_id=user.id, key=request.headers.get("Idempotency-Key"),
        fingerprint=f"component:{component_id}",
        compute=lambda: (201, claim_to_dict(coupon_pack_claim(...))),
    )

The record row, unique on (scope, user, key), is inserted in the same transaction
as the work, so a concurrent repeat blocks on the unique key until the first
commits and then replays its answer. An `ApiError` from `compute` is an answer
too: its business writes are rolled back, the error is stored and replayed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.db import IntegrityError, transaction
from rest_framework import status

from core.errors import ApiError, error_body
from core.models import IdempotencyRecord

MAX_KEY_LENGTH = 128


def idempotency_key_parse(raw: str | None) -> str:
    if raw is None or not raw.strip():
        raise ApiError("idempotency_key_required", "Send an Idempotency-Key header (a unique id per attempt).")
    key = raw.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            "idempotency_key_invalid", f"The Idempotency-Key must be printable, at most {MAX_KEY_LENGTH} characters."
        )
    return key


def idempotent_call(
    *,
    scope: str,
    user_id: str,
    key: str | None,
    fingerprint: str,
    compute: Callable[[], tuple[int, dict]],
) -> tuple[int, dict, bool]:
    """Run `compute` once per (scope, user, key); returns (status, body, replayed)."""
    key = idempotency_key_parse(key)
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                scope=scope, user_id=user_id, key=key, fingerprint=digest, response_status=0, response_body={}
            )
            try:
                with transaction.atomic():
                    status_code, body = compute()
            except ApiError as exc:
                status_code, body = exc.status_code, error_body(exc.error_code, str(exc.detail), exc.details)
            record.response_status, record.response_body = status_code, body
            record.save(update_fields=["response_status", "response_body"])
            return status_code, body, False
    except IntegrityError:
        pass
    record = IdempotencyRecord.objects.get(scope=scope, user_id=user_id, key=key)
    if record.fingerprint != digest:
        raise ApiError(
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request.",
            status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    return record.response_status, record.response_body, True
