"""Alert lifecycle and delivery (writes).

`alert_fire` is the one door for every detection (detectors, fraud watches, ad
reports): the same `fingerprint` while open updates one alert, never opens a second.
A firing alert's message goes once to every routed channel, then again at most once
per channel cooldown while it stays firing (never once acknowledged); resolving sends
one "resolved" message to every channel that was told it fired. Each message is an
`AlertDelivery` sent by its own Celery task, retried with backoff (more than an hour
in all) and recorded."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from alerts import channels
from alerts.models import (
    SEVERITY_RANK,
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertRule,
    AlertState,
    BeatJobRun,
    ClickOutage,
    DeliveryStatus,
)
from core.errors import Conflict

logger = logging.getLogger("huodong.alerts")

# waits after failed attempt 1, 2, …: 1+5+15+30+60+60 minutes = 2 h 51 min before giving up
DELIVERY_BACKOFF = (60, 300, 900, 1800, 3600, 3600)


def delivery_backoff(*, attempt: int) -> int | None:
    return DELIVERY_BACKOFF[attempt - 1] if 1 <= attempt <= len(DELIVERY_BACKOFF) else None


def _routed(alert: Alert) -> list[AlertChannel]:
    rank = SEVERITY_RANK[alert.severity]
    routed = []
    for channel in AlertChannel.objects.filter(active=True):
        if SEVERITY_RANK[channel.min_severity] > rank:
            continue
        if channel.app_id and alert.labels.get("app") != channel.app_id:
            continue
        if channel.platform and alert.labels.get("platform") != channel.platform:
            continue
        routed.append(channel)
    return routed


def _deliveries_plan(*, alert: Alert, channel_list: list[AlertChannel], state: str, now: datetime) -> list[int]:
    created = AlertDelivery.objects.bulk_create(
        [AlertDelivery(alert=alert, channel=c, state=state, next_attempt_at=now, created_at=now) for c in channel_list]
    )
    ids = [d.pk for d in created if d.pk] or list(
        AlertDelivery.objects.filter(alert=alert, state=state, created_at=now).values_list("pk", flat=True)
    )

    def enqueue() -> None:
        from alerts.tasks import alert_delivery_task

        for pk in ids:
            try:
                alert_delivery_task.delay(pk)
            except Exception:  # broker down: the sweep sends it
                logger.exception("alert delivery not enqueued; the sweep will send it", extra={"delivery_id": pk})

    transaction.on_commit(enqueue)
    return ids


@dataclass(frozen=True)
class Detection:
    rule: str
    fingerprint: str
    severity: str
    title: str
    text: str
    labels: dict
    value: float | None = None
    baseline: float | None = None
    url: str = ""


def alert_fire(*, detection: Detection, now: datetime | None = None) -> Alert:
    """Open the alert of this condition, or update the open one (dedup by fingerprint)."""
    now = now or timezone.now()
    d = detection
    for _attempt in range(3):
        try:
            with transaction.atomic():
                alert = Alert.objects.select_for_update().filter(open_key=d.fingerprint).first()
                if alert is None:
                    alert = Alert.objects.create(
                        rule=d.rule,
                        fingerprint=d.fingerprint,
                        open_key=d.fingerprint,
                        severity=d.severity,
                        title=d.title[:200],
                        text=d.text,
                        labels=d.labels,
                        url=d.url[:500],
                        value=d.value,
                        baseline=d.baseline,
                        starts_at=now,
                        last_seen_at=now,
                    )
                    _deliveries_plan(alert=alert, channel_list=_routed(alert), state=AlertState.FIRING, now=now)
                    logger.warning(alert.title, extra={"alert_id": alert.pk, "rule": d.rule, "labels": d.labels})
                    return alert
                alert.text, alert.value, alert.baseline = d.text, d.value, d.baseline
                alert.title, alert.severity, alert.last_seen_at = d.title[:200], d.severity, now
                alert.detections += 1
                alert.save(
                    update_fields=["text", "value", "baseline", "title", "severity", "last_seen_at", "detections"]
                )
                if alert.state == AlertState.FIRING:
                    due = []
                    for channel in _routed(alert):
                        last = (
                            AlertDelivery.objects.filter(alert=alert, channel=channel, state=AlertState.FIRING)
                            .order_by("-created_at")
                            .values_list("created_at", flat=True)
                            .first()
                        )
                        if last is None or now - last >= timedelta(minutes=channel.cooldown_minutes):
                            due.append(channel)
                    if due:
                        _deliveries_plan(alert=alert, channel_list=due, state=AlertState.FIRING, now=now)
                return alert
        except IntegrityError:  # opened concurrently: update that one
            continue
    return Alert.objects.get(open_key=d.fingerprint)


@transaction.atomic
def alert_resolve(*, fingerprint: str, now: datetime | None = None) -> Alert | None:
    """Close the open alert of this condition; one "resolved" message to each
    channel that was told it fired. None when nothing was open."""
    now = now or timezone.now()
    alert = Alert.objects.select_for_update().filter(open_key=fingerprint).first()
    if alert is None:
        return None
    alert.state, alert.ends_at, alert.open_key = AlertState.RESOLVED, now, None
    alert.save(update_fields=["state", "ends_at", "open_key"])
    told = AlertChannel.objects.filter(
        pk__in=AlertDelivery.objects.filter(alert=alert, state=AlertState.FIRING).values("channel_id"), active=True
    )
    _deliveries_plan(alert=alert, channel_list=list(told), state=AlertState.RESOLVED, now=now)
    logger.info("alert resolved", extra={"alert_id": alert.pk, "rule": alert.rule})
    return alert


def alerts_reconcile(*, rule: str, firing: set[str], now: datetime | None = None) -> list[Alert]:
    """Resolve the open alerts of `rule` whose condition is no longer detected."""
    stale = Alert.objects.filter(rule=rule, open_key__isnull=False).exclude(fingerprint__in=firing)
    fingerprints = list(stale.values_list("fingerprint", flat=True))
    return [a for a in (alert_resolve(fingerprint=f, now=now) for f in fingerprints) if a]


@transaction.atomic
def alert_acknowledge(*, alert: Alert, user: User, now: datetime | None = None) -> Alert:
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.state != AlertState.FIRING:
        raise Conflict(_("the alert is %(state)s, not firing") % {"state": alert.state}, code="alert_not_firing")
    alert.state, alert.acknowledged_by, alert.acknowledged_at = AlertState.ACKNOWLEDGED, user, now or timezone.now()
    alert.save(update_fields=["state", "acknowledged_by", "acknowledged_at"])
    return alert


class DeliveryOutcome(StrEnum):
    """What one attempt of a delivery did (the row keeps its DeliveryStatus)."""

    SENT = "sent"
    RETRY = "retry"  # failed, another attempt after `retry_in` seconds
    FAILED = "failed"  # failed, no attempt left
    SKIPPED = "skipped"  # sent or given up already, or not due yet


@dataclass(frozen=True)
class DeliveryResult:
    outcome: DeliveryOutcome
    retry_in: int | None = None


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> DeliveryResult:
    """One attempt of one message. The row is claimed under lock (two workers never
    send the same attempt); the send happens outside the transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = AlertDelivery.objects.select_for_update().select_related("alert", "channel").get(pk=delivery_id)
        if delivery.status in (DeliveryStatus.SENT, DeliveryStatus.FAILED):
            return DeliveryResult(DeliveryOutcome.SKIPPED)
        if delivery.next_attempt_at and delivery.next_attempt_at > now:
            return DeliveryResult(DeliveryOutcome.SKIPPED)
        delivery.attempts += 1
        delivery.next_attempt_at = now + timedelta(seconds=channels.TIMEOUT * 3)  # claim
        delivery.save(update_fields=["attempts", "next_attempt_at"])
    message = channels.message_build(alert=delivery.alert, state=delivery.state)
    try:
        channels.channel_send(channel=delivery.channel, alert=delivery.alert, message=message, now_s=now.timestamp())
    except channels.SendFailed as exc:
        wait = delivery_backoff(attempt=delivery.attempts)
        delivery.last_error = f"attempt {delivery.attempts} at {now.isoformat()}: {exc}"[:1000]
        if wait is None:
            delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
        else:
            delivery.status, delivery.next_attempt_at = DeliveryStatus.RETRYING, now + timedelta(seconds=wait)
        delivery.save(update_fields=["last_error", "status", "next_attempt_at"])
        logger.warning(
            "alert delivery failed",
            extra={"delivery_id": delivery.pk, "channel": delivery.channel.name, "error": str(exc)[:300]},
        )
        return DeliveryResult(DeliveryOutcome.FAILED if wait is None else DeliveryOutcome.RETRY, wait)
    delivery.status, delivery.sent_at, delivery.next_attempt_at = DeliveryStatus.SENT, now, None
    delivery.save(update_fields=["status", "sent_at", "next_attempt_at"])
    return DeliveryResult(DeliveryOutcome.SENT)


def deliveries_sweep(*, now: datetime | None = None) -> int:
    """Send every due message whose task was lost (broker down, worker killed)."""
    now = now or timezone.now()
    due = AlertDelivery.objects.filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRYING], next_attempt_at__lte=now
    ).values_list("pk", flat=True)[:200]
    return sum(delivery_attempt(delivery_id=pk, now=now).outcome == DeliveryOutcome.SENT for pk in list(due))


# --- pipeline health (alerts.health's doors) --------------------------------------------
def click_outage_record(*, bucket_start: datetime, count: int) -> None:
    """Add `count` 503s of the click door to their 5-minute bucket (safe under
    concurrent writers: an increment, or a create that loses to another's)."""
    for _attempt in range(2):
        with transaction.atomic():
            if ClickOutage.objects.filter(bucket_start=bucket_start).update(count=F("count") + count):
                return
            try:
                with transaction.atomic():
                    ClickOutage.objects.create(bucket_start=bucket_start, count=count)
                return
            except IntegrityError:  # created concurrently: increment that one
                continue


def beat_run_record(*, job: str, task: str, at: datetime) -> None:
    """A beat job's task started now."""
    if not BeatJobRun.objects.filter(job=job).update(task=task, last_run_at=at):
        try:
            with transaction.atomic():
                BeatJobRun.objects.create(job=job, task=task, last_run_at=at)
        except IntegrityError:
            BeatJobRun.objects.filter(job=job).update(task=task, last_run_at=at)


# --- configuration (admin doors) ------------------------------------------------------
def alert_channel_save(*, channel: AlertChannel) -> AlertChannel:
    channel.full_clean()
    channel.save()
    return channel


def alert_channel_delete(*, channel: AlertChannel) -> None:
    channel.delete()


def alert_rule_save(*, rule: AlertRule) -> AlertRule:
    rule.full_clean()
    rule.save()
    return rule


def alert_rule_delete(*, rule: AlertRule) -> None:
    rule.delete()


def alert_test_send(*, channels: list[AlertChannel], now: datetime | None = None) -> Alert:
    """A one-off info alert to the given channels (checks a channel's URL and secret)."""
    now = now or timezone.now()
    with transaction.atomic():
        alert = Alert.objects.create(
            rule="test",
            fingerprint=f"test:{now.timestamp()}",
            severity="info",
            state=AlertState.RESOLVED,
            title="Test alert from Huodong",
            text="If you read this, the channel works.",
            starts_at=now,
            last_seen_at=now,
            ends_at=now,
        )
        _deliveries_plan(alert=alert, channel_list=channels, state=AlertState.FIRING, now=now)
    return alert
