"""Test devices (matched and traced, never posted back) and forgetting a device."""

from __future__ import annotations

import logging

from django.db import transaction

from attribution import devices
from attribution.clicks import index_key
from attribution.models import (
    Conversion,
    DeviceKey,
    DeviceLock,
    MatchTrace,
    PendingEvent,
    PendingEventKey,
    PendingEventStatus,
    TestDevice,
    TrackingLink,
)
from core.redis import get_redis

logger = logging.getLogger("huodong.attribution")


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
def test_device_delete(*, device: TestDevice) -> None:
    """Remove a device from the team's list (its conversions and traces stay: "forget" removes those)."""
    TestDevice.objects.filter(pk=device.pk).delete()


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
        status=PendingEventStatus.PENDING, pk__in=PendingEventKey.objects.filter(key__in=keys).values("event_id")
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
