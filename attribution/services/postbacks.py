"""Postbacks: planned once per conversion and event type, delivered by the worker that
claims the row, retried on a backoff schedule, released by an operator after a fraud
rule rejected the install. Sending and reading the platform's answer: attribution.client."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from attribution import client, platforms
from attribution.models import Conversion, FraudStatus, Postback, PostbackAttempt, PostbackStatus
from core import metrics
from core.db import rows_insert
from core.errors import Conflict
from core.outbound import OutboundRefused

logger = logging.getLogger("huodong.attribution")


def _backoff_schedule() -> tuple[int, ...]:
    """Seconds to wait after each failed attempt: 1 min doubling up to 4 h, until the
    waits cover more than 24 hours."""
    delays: list[int] = []
    while sum(delays) < 24 * 3600:
        delays.append(min(60 * 2 ** len(delays), 4 * 3600))
    return tuple(delays)


BACKOFF_SCHEDULE = _backoff_schedule()
MAX_ATTEMPTS = len(BACKOFF_SCHEDULE) + 1
CLAIM_SECONDS = 120
# A postback a worker may claim (a `sending` one only once its claim has lapsed).
CLAIMABLE = (PostbackStatus.PENDING, PostbackStatus.RETRYING, PostbackStatus.SENDING)
# A postback an operator may send again.
RETRYABLE = (PostbackStatus.FAILED, PostbackStatus.RETRYING, PostbackStatus.REFUSED)


def postback_backoff(*, attempt: int) -> int | None:
    """The wait after failed attempt number `attempt` (1-based), None when it was the last."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    return BACKOFF_SCHEDULE[attempt - 1] if attempt <= len(BACKOFF_SCHEDULE) else None


def postback_plan(
    *, conversion: Conversion, event_type: str, source_event_id: str, event_time: datetime, amount_fen: int | None
) -> Postback | None:
    """Create the postback of one conversion event (once) and send it after commit."""
    if not postback_wanted(conversion=conversion, event_type=event_type):
        return None
    if Postback.objects.filter(conversion=conversion, event_type=event_type).exists():
        return None  # e.g. a second payment: reported once per event type
    try:
        with transaction.atomic():
            postback = Postback.objects.create(
                conversion=conversion,
                event_type=event_type,
                source_event_id=source_event_id,
                event_time=event_time,
                amount_fen=amount_fen,
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:
        return None
    _enqueue_after_commit(postback.pk)
    return postback


def postback_wanted(*, conversion: Conversion, event_type: str) -> bool:
    """Whether this event of this conversion is reported: never for a test device's, nor
    for an event type its link does not post back, nor while a fraud rule rejects the
    install (posted back only once an operator releases it)."""
    if conversion.is_test or not conversion.link.postback_enabled(event_type):
        return False
    return conversion.fraud_status != FraudStatus.REJECTED


def postbacks_plan_new(*, planned: list[tuple[Conversion, str, str, datetime, int | None]]) -> list[int]:
    """`postback_plan` for conversions created in this transaction (so none has a postback
    yet): (conversion, event_type, source_event_id, event_time, amount_fen) each, the wanted
    ones created in one multi-row insert and each sent after commit. Returns their ids."""
    now = timezone.now()
    rows = [
        (conversion.pk, event_type, source_event_id, event_time, amount_fen, now)
        for conversion, event_type, source_event_id, event_time, amount_fen in planned
        if postback_wanted(conversion=conversion, event_type=event_type)
    ]
    fields = ("conversion_id", "event_type", "source_event_id", "event_time", "amount_fen", "next_attempt_at")
    created = rows_insert(Postback, fields=fields, rows=rows, returning_pk=True)
    for postback_id in created:
        _enqueue_after_commit(postback_id)
    return created


@transaction.atomic
def conversion_release(*, conversion: Conversion, released_by: str) -> list[Postback]:
    """An operator releases an install a fraud rule rejected: it is posted back once
    (its activation and the registrations and payments recorded since)."""
    conversion = Conversion.objects.select_for_update().get(pk=conversion.pk)
    if conversion.fraud_status != FraudStatus.REJECTED:
        raise Conflict(_("conversion %(id)s is not rejected") % {"id": conversion.pk}, code="not_rejected")
    conversion.fraud_status, conversion.released_by = FraudStatus.RELEASED, released_by[:150]
    conversion.released_at = timezone.now()
    conversion.save(update_fields=["fraud_status", "released_by", "released_at"])
    planned = [
        postback_plan(
            conversion=conversion,
            event_type=platforms.EVENT_ACTIVATE,
            source_event_id=conversion.activation_event_id,
            event_time=conversion.activated_at,
            amount_fen=None,
        )
    ]
    for event in conversion.events.all():
        planned.append(
            postback_plan(
                conversion=conversion,
                event_type=event.event_type,
                source_event_id=event.event_id,
                event_time=event.occurred_at,
                amount_fen=event.amount_fen,
            )
        )
    logger.info("conversion released", extra={"conversion_id": conversion.pk, "released_by": released_by})
    return [p for p in planned if p is not None]


def _enqueue_after_commit(postback_id: int) -> None:
    from attribution.tasks import postback_deliver_task

    def enqueue() -> None:
        try:
            postback_deliver_task.delay(postback_id)
        except Exception:  # broker down: postbacks_sweep sends it later
            logger.exception("postback not enqueued; the sweep will send it", extra={"postback_id": postback_id})

    transaction.on_commit(enqueue)


class DeliveryOutcome(models.TextChoices):
    """What one delivery run did (the task retries on RETRY)."""

    SUCCEEDED = "succeeded", "succeeded"
    RETRY = "retry", "will retry"
    FAILED = "failed", "failed (gave up)"
    REFUSED = "refused", "refused (callback not allowed)"
    SKIPPED = "skipped", "skipped (claimed elsewhere, or done)"


@dataclass(frozen=True)
class DeliveryResult:
    outcome: DeliveryOutcome
    retry_in: int | None = None


def postback_deliver(*, postback_id: int) -> DeliveryResult:
    """Send one postback attempt. Only the worker that claims the row sends, so a
    postback is never sent twice at once, and never again after it succeeded."""
    now = timezone.now()
    claimed = (
        Postback.objects.filter(pk=postback_id, status__in=CLAIMABLE)
        .exclude(claimed_until__gt=now)
        .update(status=PostbackStatus.SENDING, claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
    )
    if not claimed:
        return DeliveryResult(DeliveryOutcome.SKIPPED)
    postback = Postback.objects.select_related("conversion__link").get(pk=postback_id)
    conversion = postback.conversion
    number = postback.attempt_count + 1
    try:
        request = platforms.postback_request(
            platform=conversion.platform,
            base_url=client.base_url(conversion.platform),
            callback=conversion.callback,
            event_type=postback.event_type,
            event_time_ms=int(postback.event_time.timestamp() * 1000),
            conversion_id=conversion.pk,
            amount_fen=postback.amount_fen,
            device_keys=conversion.device_keys,
            oaid=conversion.oaid,
        )
    except platforms.PostbackNotPossible as exc:
        _attempt_finish(postback, number, None, None, b"", str(exc), 0.0, final=True)
        return DeliveryResult(DeliveryOutcome.FAILED)
    started = time.perf_counter()
    try:
        answer = client.postback_send(request, conversion)
    except OutboundRefused as exc:
        reason = f"refused, nothing sent: {exc}"[:500]
        _attempt_finish(postback, number, request, None, b"", reason, 0.0, refused=True)
        return DeliveryResult(DeliveryOutcome.REFUSED)
    latency = round((time.perf_counter() - started) * 1000, 2)
    status_code, body = answer.status_code, answer.body
    if answer.succeeded:
        _attempt_finish(postback, number, request, status_code, body, "", latency, succeeded=True)
        return DeliveryResult(DeliveryOutcome.SUCCEEDED)
    wait = postback_backoff(attempt=number)
    _attempt_finish(postback, number, request, status_code, body, answer.error, latency, final=wait is None, wait=wait)
    if wait is None:
        return DeliveryResult(DeliveryOutcome.FAILED)
    return DeliveryResult(DeliveryOutcome.RETRY, wait)


@transaction.atomic
def _attempt_finish(
    postback: Postback,
    number: int,
    request: platforms.PostbackRequest | None,
    status_code: int | None,
    body: bytes,
    error: str,
    latency: float,
    *,
    succeeded: bool = False,
    final: bool = False,
    wait: int | None = None,
    refused: bool = False,
) -> None:
    # The row's UPDATE before the attempt's INSERT: the INSERT's foreign-key check would take a
    # shared lock on the postback row, and upgrading it while a concurrent claim waits deadlocks (MariaDB).
    now = timezone.now()
    fields: dict[str, Any] = {"attempt_count": number, "claimed_until": None, "last_error": error[:500]}
    if succeeded:
        fields.update(status=PostbackStatus.SUCCEEDED, succeeded_at=now, next_attempt_at=None)
    elif refused:
        fields.update(status=PostbackStatus.REFUSED, next_attempt_at=None)
    elif final:
        fields.update(status=PostbackStatus.FAILED, next_attempt_at=None)
    else:
        fields.update(status=PostbackStatus.RETRYING, next_attempt_at=now + timedelta(seconds=wait or 0))
    Postback.objects.filter(pk=postback.pk).update(**fields)
    metrics.POSTBACK_ATTEMPTS.labels(postback.conversion.platform, fields["status"]).inc()
    PostbackAttempt.objects.create(
        postback=postback,
        number=number,
        method=request.method if request else "",
        url=request.url if request else "",
        request_body=(request.body or b"").decode("utf-8", "replace") if request else "",
        status_code=status_code,
        response_body=body.decode("utf-8", "replace"),
        error=error[:500],
        latency_ms=latency,
        succeeded=succeeded,
        refused=refused,
    )
    log = logger.info if succeeded else logger.warning
    log(
        "postback " + ("succeeded" if succeeded else "refused" if refused else "failed" if final else "will retry"),
        extra={
            "postback_id": postback.pk,
            "conversion_id": postback.conversion_id,
            "platform": postback.conversion.platform,
            "event_type": postback.event_type,
            "attempt": number,
            "status_code": status_code,
            "latency_ms": latency,
            "error": error or None,
            "retry_in_s": wait,
        },
    )


@transaction.atomic
def postback_retry(*, postback: Postback) -> bool:
    """Operator's retry of a failed or retrying postback: one attempt now. The backoff schedule
    goes on from the attempts already made, so a postback that had given up gets just this one."""
    updated = Postback.objects.filter(pk=postback.pk, status__in=RETRYABLE).update(
        status=PostbackStatus.PENDING, next_attempt_at=timezone.now(), claimed_until=None
    )
    if updated:
        _enqueue_after_commit(postback.pk)
    return bool(updated)


def postbacks_sweep(*, grace_seconds: int = 600) -> int:
    """Re-enqueue postbacks whose retry message was lost (worker crash, broker loss)."""
    from attribution.tasks import postback_deliver_task

    now = timezone.now()
    due = list(
        Postback.objects.filter(
            status__in=[PostbackStatus.PENDING, PostbackStatus.RETRYING],
            next_attempt_at__lte=now - timedelta(seconds=grace_seconds),
        ).values_list("pk", flat=True)[:500]
    )
    stuck = list(
        Postback.objects.filter(status=PostbackStatus.SENDING, claimed_until__lt=now).values_list("pk", flat=True)[:500]
    )
    for pk in [*due, *stuck]:
        postback_deliver_task.delay(pk)
    return len(due) + len(stuck)


def postbacks_retry(*, postback_ids: list[int]) -> int:
    """An operator's retry of several postbacks; returns how many were queued."""
    return sum(postback_retry(postback=p) for p in Postback.objects.filter(pk__in=postback_ids))


def conversions_release(*, conversion_ids: list[int], released_by: str) -> int:
    """An operator releases the rejected installs among these conversions; returns how many."""
    rejected = Conversion.objects.filter(pk__in=conversion_ids, fraud_status=FraudStatus.REJECTED)
    released = 0
    for conversion in rejected:
        conversion_release(conversion=conversion, released_by=released_by)
        released += 1
    return released
