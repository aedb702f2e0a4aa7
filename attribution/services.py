"""Writes: tracking links (and their Redis replica), activation matching, deep events,
postbacks, test devices."""

from __future__ import annotations

import ipaddress
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from alerts import fraud
from attribution import devices, platforms, selectors
from attribution.clicks import index_key, link_redis_key
from attribution.models import (
    Conversion,
    ConversionEvent,
    DeviceKey,
    DeviceLock,
    FraudStatus,
    MatchTrace,
    PendingEvent,
    PendingEventKey,
    Postback,
    PostbackAttempt,
    TestDevice,
    TrackingLink,
)
from core import metrics
from core.errors import Conflict
from core.outbound import OutboundRefused, guarded_request, outbound_request
from core.redis import get_redis

logger = logging.getLogger("huodong.attribution")

LINK_FIELDS = (
    "platform",
    "app_id",
    "os",
    "campaign_name",
    "device_window_days",
    "ipua_window_hours",
    "postback_activate",
    "postback_register",
    "postback_pay",
    "rate_limit_per_second",
    "enabled",
    "callback_hosts",
)


# --- tracking links -----------------------------------------------------------
def _link_mapping(link: TrackingLink) -> dict[str, str]:
    return {
        "id": str(link.id),
        "platform": link.platform,
        "app_id": link.app_id,
        "os": link.os,
        "enabled": "1" if link.enabled else "0",
        "dw": str(link.device_window_days * 86400),
        "iw": str(link.ipua_window_hours * 3600),
        "rl": str(link.rate_limit_per_second),
    }


def _links_replicate(links: list[TrackingLink]) -> None:
    """Rewrite the replicas in one MULTI/EXEC: a click never sees a replica between its
    DEL and its HSET (it would be rejected as an unknown link)."""
    pipe = get_redis().pipeline(transaction=True)
    for link in links:
        key = link_redis_key(link.token)
        pipe.delete(key)
        pipe.hset(key, mapping=_link_mapping(link))
    pipe.execute()


def tracking_link_sync(*, link: TrackingLink) -> None:
    """Replicate one link's settings into Redis (the click endpoint reads only this)."""
    _links_replicate([link])


def _sync_after_commit(link: TrackingLink) -> None:
    def sync() -> None:
        try:
            tracking_link_sync(link=link)
        except Exception:  # the periodic resync repairs it
            logger.exception("tracking link not replicated to redis", extra={"link_id": link.id})

    transaction.on_commit(sync)


@transaction.atomic
def tracking_link_create(
    *,
    platform: str,
    app_id: str,
    os: str,
    campaign_name: str,
    device_window_days: int = 7,
    ipua_window_hours: int = 24,
    postback_activate: bool = True,
    postback_register: bool = False,
    postback_pay: bool = False,
    rate_limit_per_second: int = 1000,
    enabled: bool = True,
    callback_hosts: str = "",
) -> TrackingLink:
    link = TrackingLink(
        callback_hosts=callback_hosts,
        platform=platform,
        app_id=app_id,
        os=os,
        campaign_name=campaign_name,
        device_window_days=device_window_days,
        ipua_window_hours=ipua_window_hours,
        postback_activate=postback_activate,
        postback_register=postback_register,
        postback_pay=postback_pay,
        rate_limit_per_second=rate_limit_per_second,
        enabled=enabled,
    )
    link.full_clean()
    link.save()
    _sync_after_commit(link)
    logger.info("tracking link created", extra={"link_id": link.id, "platform": platform, "app_id": app_id})
    return link


@transaction.atomic
def tracking_link_update(*, link: TrackingLink, **fields) -> TrackingLink:
    unknown = set(fields) - set(LINK_FIELDS)
    if unknown:
        raise TypeError(f"not tracking link settings: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(link, name, value)
    link.full_clean()
    link.save()
    _sync_after_commit(link)
    logger.info("tracking link updated", extra={"link_id": link.id, "fields": sorted(fields)})
    return link


@transaction.atomic
def tracking_link_delete(*, link: TrackingLink) -> None:
    token = link.token
    link.delete()
    transaction.on_commit(lambda: get_redis().delete(link_redis_key(token)))


def tracking_links_resync() -> dict[str, int]:
    """Rewrite every link's replica and drop replicas of links that no longer exist."""
    links = list(TrackingLink.objects.all())
    _links_replicate(links)
    client = get_redis()
    wanted = {link_redis_key(link.token).encode() for link in links}
    unknown = {key for key in client.scan_iter(match=link_redis_key("*"), count=500) if key not in wanted}
    # A link created since `links` was read has committed before its replica was written: keep it.
    token_of = {key: key.decode().rsplit(":", 1)[1] for key in unknown}
    existing = set(TrackingLink.objects.filter(token__in=token_of.values()).values_list("token", flat=True))
    stale = [key for key, token in token_of.items() if token not in existing]
    if stale:
        client.delete(*stale)
    return {"synced": len(links), "removed": len(stale)}


# --- activations --------------------------------------------------------------
TRACE_MAX_CANDIDATES = 200  # newest first; a trace row stays small


@dataclass(frozen=True)
class ActivationOutcome:
    outcome: str  # attributed | organic | reinstall
    conversion: Conversion | None
    trace: MatchTrace


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@transaction.atomic
def activation_record(
    *,
    event_id: str,
    app_id: str,
    os: str | None,
    user_id: str | None,
    device: dict | None,
    ip: str | None,
    ua: str | None,
    occurred_at: datetime,
) -> ActivationOutcome:
    """Match an activation to the last eligible click and record the conversion."""
    keys = devices.activation_keys(device, ip=ip, ua=ua)
    _device_lock(app_id=app_id, keys=devices.flat_keys(keys))
    test_device = selectors.test_device_matching(app_id=app_id, keys=keys)
    links = selectors.links_for(app_id=app_id, os=os)
    match = selectors.click_candidates(links=links, keys=keys, activated_ms=_ms(occurred_at))
    previous = selectors.attributed_conversion(
        app_id=app_id, keys=keys, since=occurred_at - timedelta(days=selectors.REINSTALL_DAYS)
    )
    conversion = None
    if previous is not None:
        outcome = "reinstall"
        reason = f"device already attributed to conversion {previous.pk} within {selectors.REINSTALL_DAYS} days"
        if match.winner is not None:
            match.winner.verdict = "rejected"
            match.winner.reason = "reinstall rule: " + reason
    elif match.winner is None:
        outcome, reason = "organic", match.reason
    else:
        outcome, reason = "attributed", match.reason
        conversion = _conversion_create(
            event_id=event_id,
            app_id=app_id,
            os=os or "",
            user_id=user_id or "",
            keys=keys,
            oaid=devices.clean((device or {}).get("oaid")) or "",
            winner=match.winner,
            links=links,
            occurred_at=occurred_at,
            is_test=test_device is not None,
            activation_ip=ip or "",
        )
        if conversion.fraud_status:
            reason += f" · fraud rule {conversion.fraud_rule} ({conversion.fraud_status}): {conversion.fraud_reason}"
    if test_device is not None:
        reason += f" · test device “{test_device.label}”: never posted back"
    trace = MatchTrace.objects.create(
        event_id=event_id,
        app_id=app_id,
        os=os or "",
        user_id=user_id or "",
        activated_at=occurred_at,
        device_keys=keys,
        outcome=outcome,
        reason=reason[:300],
        is_test=test_device is not None,
        conversion=conversion or previous,
        candidates=[c.as_dict() for c in match.candidates[:TRACE_MAX_CANDIDATES]],
    )
    if conversion is not None:
        postback_plan(
            conversion=conversion,
            event_type=platforms.EVENT_ACTIVATE,
            source_event_id=event_id,
            event_time=occurred_at,
            amount_fen=None,
        )
    _pending_resolve(app_id=app_id, keys=keys, user_id=user_id or "", conversion=conversion or previous)
    logger.info(
        "activation " + outcome,
        extra={
            "event_id": event_id,
            "app_id": app_id,
            "os": os,
            "outcome": outcome,
            "conversion_id": conversion.pk if conversion else None,
            "link_id": conversion.link_id if conversion else None,
            "platform": conversion.platform if conversion else None,
            "match_method": conversion.match_method if conversion else None,
            "seconds_to_install": conversion.seconds_to_install if conversion else None,
            "clicks_before_conversion": conversion.clicks_before_conversion if conversion else None,
            "candidates": len(match.candidates),
            "test_device": bool(test_device),
        },
    )
    return ActivationOutcome(outcome, conversion, trace)


def _device_lock(*, app_id: str, keys: list[str]) -> None:
    """Lock the device's rows, in key order, until commit. One upsert creates a
    row on first sight and write-locks it either way: an insert-then-SELECT FOR
    UPDATE would take a shared lock on a duplicate first, and two transactions
    upgrading it deadlock on InnoDB."""
    ordered = sorted(set(keys))
    if not ordered:
        return
    now = timezone.now()
    # MySQL's ON DUPLICATE KEY takes no conflict target; SQLite's ON CONFLICT needs one.
    target = ["app_id", "key"] if connection.features.supports_update_conflicts_with_target else None
    DeviceLock.objects.bulk_create(
        [DeviceLock(app_id=app_id, key=key, last_activation_at=now) for key in ordered],
        update_conflicts=True,
        unique_fields=target,
        update_fields=["last_activation_at"],
    )


def _conversion_create(
    *,
    event_id: str,
    app_id: str,
    os: str,
    user_id: str,
    keys: dict[str, list[str]],
    oaid: str,
    winner: selectors.Candidate,
    links: list[TrackingLink],
    occurred_at: datetime,
    is_test: bool,
    activation_ip: str = "",
) -> Conversion:
    click_at = datetime.fromtimestamp(
        winner.click_at_ms / 1000, tz=occurred_at.tzinfo or timezone.get_current_timezone()
    )
    link = next(link for link in links if link.id == winner.link_id)
    seconds_to_install = max(0, int((occurred_at - click_at).total_seconds()))
    verdict = fraud.fraud_judge(
        app_id=app_id,
        ctit_seconds=seconds_to_install,
        click_ip=winner.click.get("ip") or "",
        activation_ip=activation_ip,
        clicks_on_key=max(1, winner.clicks_on_key),
    )
    conversion = Conversion.objects.create(
        link=link,
        platform=winner.platform,
        app_id=app_id,
        os=os or winner.click.get("os") or link.os,  # kuaishou clicks carry no OS: the link's
        activation_event_id=event_id,
        click_id=winner.click_id,
        click_at=click_at,
        activated_at=occurred_at,
        seconds_to_install=seconds_to_install,
        match_method=winner.kind,
        match_key=f"{winner.kind}:{winner.key}",
        clicks_before_conversion=max(1, winner.clicks_on_key),
        user_id=user_id,
        callback=winner.click.get("cb", ""),
        click=winner.click,
        device_keys=keys,
        oaid=oaid,
        is_test=is_test,
        fraud_status=(FraudStatus.REJECTED if verdict.mode == "reject" else FraudStatus.FLAGGED) if verdict else "",
        fraud_rule=verdict.rule if verdict else "",
        fraud_reason=verdict.reason[:300] if verdict else "",
    )
    DeviceKey.objects.bulk_create(
        [
            DeviceKey(app_id=app_id, key=key, conversion=conversion, activated_at=occurred_at)
            for key in devices.flat_keys(keys)
        ]
    )
    return conversion


# --- registrations and payments -----------------------------------------------
@transaction.atomic
def deep_event_record(
    *,
    event_id: str,
    event_type: str,
    app_id: str,
    user_id: str | None,
    device: dict | None,
    occurred_at: datetime,
    amount_fen: int | None,
) -> str:
    """Attach a registration or payment to its conversion, or keep it until the
    activation arrives. Returns "applied", "pending" or "ignored"."""
    keys = devices.activation_keys(device)
    conversion = selectors.conversion_for_event(app_id=app_id, keys=keys, user_id=user_id)
    if conversion is None:
        pending = PendingEvent.objects.create(
            event_id=event_id,
            event_type=event_type,
            app_id=app_id,
            user_id=user_id or "",
            device_keys=keys,
            occurred_at=occurred_at,
            amount_fen=amount_fen,
        )
        PendingEventKey.objects.bulk_create(
            [PendingEventKey(event=pending, app_id=app_id, key=key) for key in devices.flat_keys(keys)]
        )
        logger.info("deep event pending", extra={"event_id": event_id, "event_type": event_type, "app_id": app_id})
        return "pending"
    _deep_event_apply(
        conversion=conversion,
        event_type=event_type,
        event_id=event_id,
        user_id=user_id or "",
        occurred_at=occurred_at,
        amount_fen=amount_fen,
    )
    return "applied"


def _deep_event_apply(
    *,
    conversion: Conversion,
    event_type: str,
    event_id: str,
    user_id: str,
    occurred_at: datetime,
    amount_fen,
    arrived_early: bool = False,
) -> None:
    # The conversion's UPDATE before the event's INSERT (whose foreign-key check takes a shared
    # lock on the conversion): two events of one conversion at once then queue instead of deadlocking.
    if user_id and not conversion.user_id:
        Conversion.objects.filter(pk=conversion.pk, user_id="").update(user_id=user_id)
    try:
        with transaction.atomic():
            ConversionEvent.objects.create(
                conversion=conversion,
                event_type=event_type,
                event_id=event_id,
                user_id=user_id,
                occurred_at=occurred_at,
                amount_fen=amount_fen,
                arrived_early=arrived_early,
            )
    except IntegrityError:
        return  # this event was attached before
    planned = postback_plan(
        conversion=conversion,
        event_type=event_type,
        source_event_id=event_id,
        event_time=occurred_at,
        amount_fen=amount_fen,
    )
    logger.info(
        "deep event applied",
        extra={
            "event_id": event_id,
            "event_type": event_type,
            "conversion_id": conversion.pk,
            "postback_id": planned.pk if planned else None,
        },
    )


def _pending_event_apply(event: PendingEvent, conversion: Conversion, *, when: str) -> None:
    """Apply a waiting registration or payment to the conversion it belongs to."""
    _deep_event_apply(
        conversion=conversion,
        event_type=event.event_type,
        event_id=event.event_id,
        user_id=event.user_id,
        occurred_at=event.occurred_at,
        amount_fen=event.amount_fen,
        arrived_early=True,
    )
    event.status, event.conversion = "applied", conversion
    event.resolution = f"applied to conversion {conversion.pk} {when}"
    event.save(update_fields=["status", "resolution", "conversion"])


def _pending_resolve(*, app_id: str, keys: dict[str, list[str]], user_id: str, conversion: Conversion | None) -> int:
    """Apply (or discard, for an organic device) the events that waited for this activation."""
    # two index lookups (by key, by user); rows are locked only when there is something to resolve
    flat = devices.flat_keys(keys)
    ids: set[int] = set()
    if flat:
        ids.update(PendingEventKey.objects.filter(app_id=app_id, key__in=flat).values_list("event_id", flat=True))
    if user_id:
        ids.update(
            PendingEvent.objects.filter(app_id=app_id, user_id=user_id, status="pending").values_list("pk", flat=True)
        )
    if not ids:
        return 0
    resolved = 0
    pending = (
        PendingEvent.objects.select_for_update().filter(pk__in=ids, status="pending").order_by("occurred_at", "pk")
    )
    for event in pending:
        if conversion is None:
            event.status, event.resolution = "discarded", "the activation was organic"
            event.save(update_fields=["status", "resolution"])
        else:
            _pending_event_apply(event, conversion, when="when the activation arrived")
        resolved += 1
    return resolved


# --- postbacks ----------------------------------------------------------------
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


def postback_backoff(*, attempt: int) -> int | None:
    """The wait after failed attempt number `attempt` (1-based), None when it was the last."""
    if attempt < 1:
        raise ValueError("attempts count from 1")
    return BACKOFF_SCHEDULE[attempt - 1] if attempt <= len(BACKOFF_SCHEDULE) else None


def postback_plan(
    *, conversion: Conversion, event_type: str, source_event_id: str, event_time: datetime, amount_fen: int | None
) -> Postback | None:
    """Create the postback of one conversion event (once) and send it after commit."""
    if conversion.is_test or not conversion.link.postback_enabled(event_type):
        return None
    if conversion.fraud_status == FraudStatus.REJECTED:
        return None  # rejected by a fraud rule: posted back only once an operator releases it
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


@transaction.atomic
def conversion_release(*, conversion: Conversion, released_by: str) -> list[Postback]:
    """An operator releases an install a fraud rule rejected: it is posted back once
    (its activation and the registrations and payments recorded since)."""
    conversion = Conversion.objects.select_for_update().get(pk=conversion.pk)
    if conversion.fraud_status != FraudStatus.REJECTED:
        raise Conflict(f"conversion {conversion.pk} is not rejected", code="not_rejected")
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


def _base_url(platform: str) -> str:
    if platform == platforms.OCEANENGINE:
        return settings.POSTBACK_OCEANENGINE_URL
    if platform == platforms.KUAISHOU:
        return settings.POSTBACK_KUAISHOU_URL
    return ""


def _postback_send(request: platforms.PostbackRequest, conversion: Conversion):
    """A configured base URL (POSTBACK_*_URL) is trusted as configured. A URL taken from
    the click's callback must be on its platform's allow-list (generic links: plus the
    link's own hosts), and goes through the SSRF guard (core.outbound)."""
    if not request.to_callback:
        return outbound_request(
            request.method,
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=settings.POSTBACK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    host = urlsplit(request.url).hostname or ""
    configured = settings.POSTBACK_CALLBACK_HOSTS.get(conversion.platform, [])
    own = conversion.link.callback_host_list if conversion.platform == platforms.GENERIC else []
    entry = platforms.host_matches(host, configured)
    if entry is None and platforms.host_matches(host, own) is None:
        where = "the link's callback hosts nor " if conversion.platform == platforms.GENERIC else ""
        raise OutboundRefused(f"host {host!r} is on neither {where}the {conversion.platform} callback allow-list")
    # An IP address the deployment lists itself is trusted as configured (like POSTBACK_*_URL).
    trusted = entry is not None and _is_ip(entry.strip("[]"))
    return guarded_request(
        request.method,
        request.url,
        allow_private=settings.POSTBACK_ALLOW_PRIVATE_HOSTS or trusted,
        timeout=settings.POSTBACK_TIMEOUT_SECONDS,
        data=request.body,
        headers=request.headers,
    )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class DeliveryResult:
    outcome: str  # succeeded | retry | failed | refused | skipped
    retry_in: int | None = None


def postback_deliver(*, postback_id: int) -> DeliveryResult:
    """Send one postback attempt. Only the worker that claims the row sends, so a
    postback is never sent twice at once, and never again after it succeeded."""
    now = timezone.now()
    claimed = (
        Postback.objects.filter(pk=postback_id, status__in=["pending", "retrying", "sending"])
        .exclude(claimed_until__gt=now)
        .update(status="sending", claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
    )
    if not claimed:
        return DeliveryResult("skipped")
    postback = Postback.objects.select_related("conversion__link").get(pk=postback_id)
    conversion = postback.conversion
    number = postback.attempt_count + 1
    try:
        request = platforms.postback_request(
            platform=conversion.platform,
            base_url=_base_url(conversion.platform),
            callback=conversion.callback,
            event_type=postback.event_type,
            event_time_ms=_ms(postback.event_time),
            conversion_id=conversion.pk,
            amount_fen=postback.amount_fen,
            device_keys=conversion.device_keys,
            oaid=conversion.oaid,
        )
    except platforms.PostbackNotPossible as exc:
        _attempt_finish(postback, number, None, None, b"", str(exc), 0.0, final=True)
        return DeliveryResult("failed")
    started = time.perf_counter()
    status_code, body, error = None, b"", ""
    try:
        response = _postback_send(request, conversion)
        status_code, body = response.status_code, response.content[:4000]
        succeeded = platforms.postback_succeeded(conversion.platform, status_code, response.content)
        if not succeeded:
            error = f"HTTP {status_code}: the platform did not confirm success"
    except OutboundRefused as exc:
        reason = f"refused, nothing sent: {exc}"[:500]
        _attempt_finish(postback, number, request, None, b"", reason, 0.0, refused=True)
        return DeliveryResult("refused")
    except requests.RequestException as exc:
        succeeded, error = False, f"{type(exc).__name__}: {exc}"[:500]
    latency = round((time.perf_counter() - started) * 1000, 2)
    if succeeded:
        _attempt_finish(postback, number, request, status_code, body, "", latency, succeeded=True)
        return DeliveryResult("succeeded")
    wait = postback_backoff(attempt=number)
    _attempt_finish(postback, number, request, status_code, body, error, latency, final=wait is None, wait=wait)
    return DeliveryResult("failed") if wait is None else DeliveryResult("retry", wait)


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
    fields = {"attempt_count": number, "claimed_until": None, "last_error": error[:500]}
    if succeeded:
        fields.update(status="succeeded", succeeded_at=now, next_attempt_at=None)
    elif refused:
        fields.update(status="refused", next_attempt_at=None)
    elif final:
        fields.update(status="failed", next_attempt_at=None)
    else:
        fields.update(status="retrying", next_attempt_at=now + timedelta(seconds=wait or 0))
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
    updated = Postback.objects.filter(pk=postback.pk, status__in=["failed", "retrying", "refused"]).update(
        status="pending", next_attempt_at=timezone.now(), claimed_until=None
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
            status__in=["pending", "retrying"], next_attempt_at__lte=now - timedelta(seconds=grace_seconds)
        ).values_list("pk", flat=True)[:500]
    )
    stuck = list(Postback.objects.filter(status="sending", claimed_until__lt=now).values_list("pk", flat=True)[:500])
    for pk in [*due, *stuck]:
        postback_deliver_task.delay(pk)
    return len(due) + len(stuck)


# --- test devices -------------------------------------------------------------
@transaction.atomic
def test_device_save(*, device: TestDevice) -> TestDevice:
    keys = devices.activation_keys(
        {
            "idfa": device.idfa,
            "caid": device.caid,
            "imei": device.imei,
            "oaid": device.oaid,
            "android_id": device.android_id,
        }
    )
    device.keys = devices.flat_keys(keys)
    device.full_clean()
    device.save()
    return device


@transaction.atomic
def device_forget(*, app_id: str | None, keys: list[str]) -> dict[str, int]:
    """Forget a device: its conversions (with postbacks), traces, waiting events and
    stored clicks, so it can be tested again as a new install."""
    rows = DeviceKey.objects.filter(key__in=keys)
    if app_id:
        rows = rows.filter(app_id=app_id)
    conversion_ids = set(rows.values_list("conversion_id", flat=True))
    traces = MatchTrace.objects.filter(conversion_id__in=conversion_ids)
    trace_count = traces.count()
    traces.delete()
    conversions = Conversion.objects.filter(pk__in=conversion_ids)
    conversion_count = conversions.count()
    conversions.delete()
    waiting = PendingEvent.objects.filter(
        status="pending", pk__in=PendingEventKey.objects.filter(key__in=keys).values("event_id")
    )
    if app_id:
        waiting = waiting.filter(app_id=app_id)
    pending = waiting.delete()[1].get("attribution.PendingEvent", 0)
    locks = DeviceLock.objects.filter(key__in=keys)
    (locks.filter(app_id=app_id) if app_id else locks).delete()
    links = TrackingLink.objects.filter(app_id=app_id) if app_id else TrackingLink.objects.all()
    redis_keys = [index_key(link.id, *key.split(":", 1)) for link in links for key in keys]

    def drop_clicks() -> None:
        if redis_keys:
            get_redis().delete(*redis_keys)

    transaction.on_commit(drop_clicks)
    logger.info("device forgotten", extra={"app_id": app_id, "keys": keys, "conversions": conversion_count})
    return {
        "conversions": conversion_count,
        "traces": trace_count,
        "pending_events": pending,
        "click_keys": len(redis_keys),
    }


def test_device_forget(*, device: TestDevice) -> dict[str, int]:
    return device_forget(app_id=device.app_id or None, keys=list(device.keys))


def pending_events_retry(*, max_age_days: int = 7) -> dict[str, int]:
    """Periodic repair: apply waiting events whose conversion now exists (an activation
    committed concurrently), discard those older than `max_age_days`. Only the events that
    have a conversion are read, so the cost does not grow with the organic devices' waiting events."""
    applied = 0
    for pk in selectors.pending_event_ids_with_conversion():
        with transaction.atomic():
            event = PendingEvent.objects.select_for_update().filter(pk=pk, status="pending").first()
            if event is None:
                continue
            conversion = selectors.conversion_for_event(
                app_id=event.app_id, keys=event.device_keys, user_id=event.user_id or None
            )
            if conversion is None:  # forgotten meanwhile
                continue
            _pending_event_apply(event, conversion, when="by the periodic retry")
            applied += 1
    cutoff = timezone.now() - timedelta(days=max_age_days)
    discarded = PendingEvent.objects.filter(status="pending", created_at__lt=cutoff).update(
        status="discarded", resolution=f"no activation within {max_age_days} days"
    )
    return {"applied": applied, "discarded": discarded}
