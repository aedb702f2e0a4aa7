"""The one door through which the ad-report jobs raise an alert.

Until the alerts app exists (issue 14), an alert is an `AdWarning` row (listed in
the admin and shown as a banner on the ad-report pages) plus one structured log line
(logger `huodong.adreports.alert`, level WARNING, fields `alert_key`, `alert_kind`,
`account`). The alerts work routes `ad_alert_raise` / `ad_alert_resolve` to its
channels here, and nowhere else. No secret ever goes into a title or text."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from adreports.models import AdAccount, AdWarning
from alerts.models import Severity
from alerts.services import Detection, alert_fire, alert_resolve

logger = logging.getLogger("huodong.adreports.alert")


def ad_alert_raise(*, key: str, kind: str, title: str, text: str = "", account: AdAccount | None = None) -> AdWarning:
    """Open (or bump) the warning `key`. Idempotent: raising an open warning again
    counts it and refreshes its text. Also fired into the alert pipeline (rule
    `adreports.<kind>`, deduplicated by key, routed to the chat channels)."""
    now = timezone.now()
    labels = {"account": str(account)} if account else {}
    if account is not None and getattr(account, "platform", None):
        labels["platform"] = account.platform
    if account is not None and getattr(account, "app_id", None):
        labels["app"] = account.app_id
    alert_fire(
        detection=Detection(
            rule=f"adreports.{kind}"[:48],
            fingerprint=f"adreports:{key}"[:200],
            severity=Severity.WARNING,
            title=title,
            text=text,
            labels=labels,
        ),
        now=now,
    )
    logger.warning(
        title,
        extra={"alert_key": key, "alert_kind": kind, "account": str(account) if account else None, "text": text},
    )
    for _ in range(2):
        try:
            with transaction.atomic():
                warning = AdWarning.objects.select_for_update().filter(key=key).first()
                if warning is None:
                    return AdWarning.objects.create(
                        key=key, kind=kind, account=account, title=title[:200], text=text, first_at=now, last_at=now
                    )
                if warning.resolved_at is not None:
                    warning.first_at, warning.times, warning.resolved_at = now, 0, None
                warning.title, warning.text, warning.last_at = title[:200], text, now
                warning.times += 1
                warning.save(update_fields=["title", "text", "last_at", "times", "first_at", "resolved_at"])
                return warning
        except IntegrityError:  # raised concurrently: the other one created it, bump it
            continue
    return AdWarning.objects.get(key=key)


def ad_alert_resolve(*, key: str) -> bool:
    """Close the warning `key` if open; True when it was."""
    alert_resolve(fingerprint=f"adreports:{key}"[:200])
    resolved = AdWarning.objects.filter(key=key, resolved_at__isnull=True).update(resolved_at=timezone.now())
    if resolved:
        logger.info("alert resolved", extra={"alert_key": key})
    return bool(resolved)
