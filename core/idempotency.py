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
import threading
from collections.abc import Callable

from django.db import IntegrityError, connection, transaction
from django.utils.translation import gettext_lazy as _
from rest_framework import status

from core.errors import ApiError, DomainError, domain_status, error_body
from core.models import IdempotencyRecord

MAX_KEY_LENGTH = 128


def idempotency_key_parse(raw: str | None) -> str:
    if raw is None or not raw.strip():
        raise ApiError("idempotency_key_required", _("Send an Idempotency-Key header (a unique id per attempt)."))
    key = raw.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            "idempotency_key_invalid",
            _("The Idempotency-Key must be printable, at most %(max)s characters.") % {"max": MAX_KEY_LENGTH},
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
            try:
                record = IdempotencyRecord.objects.create(
                    scope=scope, user_id=user_id, key=key, fingerprint=digest, response_status=0, response_body={}
                )
            except IntegrityError as exc:  # only the key's own row means "asked before"
                raise _KeyTaken from exc
            try:
                with transaction.atomic():
                    status_code, body = compute()
            except (ApiError, DomainError) as exc:
                status_code, body = _refusal(exc)
            record.response_status, record.response_body = status_code, body
            record.save(update_fields=["response_status", "response_body"])
            return status_code, body, False
    except _KeyTaken:
        pass
    return _replay(scope=scope, user_id=user_id, key=key, digest=digest)


def _refusal(exc: ApiError | DomainError) -> tuple[int, dict]:
    if isinstance(exc, DomainError):
        return domain_status(exc), error_body(exc.code, exc.message, exc.details)
    return exc.status_code, error_body(exc.error_code, str(exc.detail), exc.details)


def _replay(*, scope: str, user_id: str, key: str, digest: str) -> tuple[int, dict, bool]:
    record = IdempotencyRecord.objects.get(scope=scope, user_id=user_id, key=key)
    if record.fingerprint != digest:
        raise ApiError(
            "idempotency_key_reused",
            _("This Idempotency-Key was already used for a different request."),
            status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    return record.response_status, record.response_body, True


class _KeyTaken(Exception):
    pass


def idempotent_call_once(
    *,
    scope: str,
    user_id: str,
    key: str | None,
    fingerprint: str,
    compute: Callable[[], tuple[int, dict]],
    check: Callable[[], None] | None = None,
) -> tuple[int, dict, bool]:
    """`idempotent_call` for hot paths, with the record written once: `compute`
    runs first and its answer is inserted with the key as the transaction's last
    write (no savepoint, no second write to the record). Only for a `compute`
    whose effects are all rows of this database transaction (nothing sent
    elsewhere), since a repeat runs it again: a repeat of a key already
    answered finds the key taken when it stores its answer, throws its own work
    away (rolled back) and replays the stored answer; a concurrent repeat waits
    on the key's unique index for the first to commit, then does the same. A
    refusal (ApiError, DomainError) rolls the work back and stores the refusal
    alone (or replays the answer stored meanwhile). Same answers as
    `idempotent_call`: one per (scope, user, key), whoever asks.

    `check`, if given, runs first, outside the transaction: reads only, for
    refusals that need no lock (a sold-out pack). A refusal it raises is the
    answer, stored in one statement, as a refusal of `compute` is: no transaction
    is begun, rolled back and ended for it (three round trips on MySQL, most of
    what a refusal costs when a sold-out pack is pressed by thousands)."""
    key = idempotency_key_parse(key)
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()
    # SQLite: a savepoint costs no round trip, and a second transaction would
    # queue again for the database's single write lock; so there a refusal is
    # stored in the same transaction, as `idempotent_call` does.
    savepoint = connection.vendor == "sqlite"
    outer, _last.writes = getattr(_last, "writes", None), []
    try:
        if check is not None:
            check()
        with transaction.atomic():
            if savepoint:
                try:
                    with transaction.atomic():
                        status_code, body = compute()
                except (ApiError, DomainError) as exc:
                    status_code, body = _refusal(exc)
            else:
                status_code, body = compute()
            _record_insert(scope, user_id, key, digest, status_code, body)
            writes, _last.writes = _last.writes, outer
            for write in writes:  # a refusal here rolls everything back and is stored below
                write()
        return status_code, body, False
    except _KeyTaken:
        pass
    except (ApiError, DomainError) as exc:
        status_code, body = _refusal(exc)
        try:
            if connection.in_atomic_block:  # e.g. a test's transaction: a savepoint keeps it usable
                with transaction.atomic():
                    _record_insert(scope, user_id, key, digest, status_code, body)
            else:  # one statement, atomic alone: no transaction round trips
                _record_insert(scope, user_id, key, digest, status_code, body)
            return status_code, body, False
        except _KeyTaken:
            pass
    finally:
        _last.writes = outer
    return _replay(scope=scope, user_id=user_id, key=key, digest=digest)


_last = threading.local()


def write_last(write: Callable[[], None]) -> None:
    """Run `write` as the last statement of this transaction when inside
    `idempotent_call_once` (after the answer's record, right before the commit:
    a row lock it takes is then held for the commit alone), else at once. It may
    raise a refusal: the whole transaction is then rolled back, as if `compute`
    had raised it."""
    writes = getattr(_last, "writes", None)
    if writes is None or not transaction.get_connection().in_atomic_block:
        write()
    else:
        writes.append(write)


def _record_insert(scope: str, user_id: str, key: str, digest: str, status_code: int, body: dict) -> None:
    try:
        IdempotencyRecord.objects.create(
            scope=scope, user_id=user_id, key=key, fingerprint=digest, response_status=status_code, response_body=body
        )
    except IntegrityError as exc:
        raise _KeyTaken from exc
