"""Activations: the device's rows locked, the match explained (selectors.activation_explain),
the conversion recorded, its postback planned and the events that waited for it applied."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from alerts import fraud
from attribution import devices, platforms, selectors
from attribution.models import Conversion, DeviceKey, DeviceLock, FraudStatus, MatchOutcome, MatchTrace, TrackingLink
from attribution.services.deep_events import _pending_resolve
from attribution.services.postbacks import postback_plan

logger = logging.getLogger("huodong.attribution")

TRACE_MAX_CANDIDATES = 200  # newest first; a trace row stays small


@dataclass(frozen=True)
class ActivationOutcome:
    outcome: MatchOutcome
    conversion: Conversion | None
    trace: MatchTrace


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
    explained = selectors.activation_explain(app_id=app_id, os=os, keys=keys, activated_at=occurred_at)
    outcome, reason, test_device, previous = (
        explained.outcome,
        explained.reason,
        explained.test_device,
        explained.previous,
    )
    conversion = None
    if explained.winner is not None:
        conversion = _conversion_create(
            event_id=event_id,
            app_id=app_id,
            os=os or "",
            user_id=user_id or "",
            keys=keys,
            oaid=devices.clean((device or {}).get("oaid")) or "",
            winner=explained.winner,
            links=explained.links,
            occurred_at=occurred_at,
            is_test=test_device is not None,
            activation_ip=ip or "",
        )
        if conversion.fraud_status:
            reason += f" · fraud rule {conversion.fraud_rule} ({conversion.fraud_status}): {conversion.fraud_reason}"
    if test_device is not None:
        reason += selectors.test_device_note(test_device)
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
        candidates=[c.as_dict() for c in explained.candidates[:TRACE_MAX_CANDIDATES]],
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
            "candidates": len(explained.candidates),
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
    assert winner.click_at_ms is not None  # a winner is a stored click: it has its time
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
        link_id=link.id,  # the flooding rule's long tail judges the link's install rate
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
