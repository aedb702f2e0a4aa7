"""Registrations and payments (deep events): attached to their conversion, or kept
until the activation arrives."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from attribution import devices, selectors
from attribution.models import Conversion, ConversionEvent, PendingEvent, PendingEventKey, PendingEventStatus
from attribution.services.postbacks import postback_plan
from core.db import sql_columns, sql_in

logger = logging.getLogger("huodong.attribution")


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
    activation arrives. Returns "applied" or "pending" (the PendingEventStatus it took)."""
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
        return PendingEventStatus.PENDING
    _deep_event_apply(
        conversion=conversion,
        event_type=event_type,
        event_id=event_id,
        user_id=user_id or "",
        occurred_at=occurred_at,
        amount_fen=amount_fen,
    )
    return PendingEventStatus.APPLIED


def _deep_event_apply(
    *,
    conversion: Conversion,
    event_type: str,
    event_id: str,
    user_id: str,
    occurred_at: datetime,
    amount_fen: int | None,
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
    event.status, event.conversion = PendingEventStatus.APPLIED, conversion
    event.resolution = f"applied to conversion {conversion.pk} {when}"
    event.save(update_fields=["status", "resolution", "conversion"])


def _pending_resolve(*, app_id: str, keys: dict[str, list[str]], user_id: str, conversion: Conversion | None) -> int:
    """Apply (or discard, for an organic device) the events that waited for this activation."""
    return _pending_resolve_many(waiting_for=[(app_id, devices.flat_keys(keys), user_id, conversion)])


def _pending_resolve_many(*, waiting_for: list[tuple[str, list[str], str, Conversion | None]]) -> int:
    """`_pending_resolve` for several activations, in their order: (app id, device keys
    `kind:value`, user id, the conversion or None when organic) each. One statement reads
    both indexes (by key, by user: a UNION ALL) for all of them; rows are locked only when
    there is something to resolve. An event that waited for two of them goes to the first
    (as one by one)."""
    apps = {app_id for app_id, _, _, _ in waiting_for}
    all_keys = {key for _, flat, _, _ in waiting_for for key in flat}
    users = {user_id for _, _, user_id, _ in waiting_for if user_id}
    by_key: dict[tuple[str, str], set[int]] = {}
    by_user: dict[tuple[str, str], set[int]] = {}
    for event_id, app_id, value, is_user in _waiting_event_ids(apps=apps, keys=all_keys, users=users):
        (by_user if is_user else by_key).setdefault((app_id, value), set()).add(event_id)
    wanted = [
        set().union(*(by_key.get((app_id, key), set()) for key in flat), by_user.get((app_id, user_id), set()))
        for app_id, flat, user_id, _ in waiting_for
    ]
    ids = set().union(*wanted)
    if not ids:
        return 0
    pending = list(
        PendingEvent.objects.select_for_update()
        .filter(pk__in=ids, status=PendingEventStatus.PENDING)
        .order_by("occurred_at", "pk")
    )
    resolved: set[int] = set()
    for (_, _, _, conversion), event_ids in zip(waiting_for, wanted, strict=True):
        for event in pending:
            if event.pk not in event_ids or event.pk in resolved:
                continue
            if conversion is None:
                event.status, event.resolution = PendingEventStatus.DISCARDED, "the activation was organic"
                event.save(update_fields=["status", "resolution"])
            else:
                _pending_event_apply(event, conversion, when="when the activation arrived")
            resolved.add(event.pk)
    return len(resolved)


def _waiting_event_ids(*, apps: set[str], keys: set[str], users: set[str]) -> list[tuple[int, str, str, int]]:
    """(event id, app id, key or user id, 1 when found by user) of the events of `apps`
    that wait under one of `keys` (any status: the lock below reads the pending ones) or
    for one of `users` (pending): one statement for both indexes. Plain SQL with bound
    values (`core.db.sql_in`), no ORM compilation: a batch of activations asks this with
    a hundred keys and fifty users, and building that query through the ORM cost several
    times what the database takes to answer it (docs/events.md)."""
    key_table, key_col = sql_columns(PendingEventKey, "event", "app_id", "key")
    event_table, event_col = sql_columns(PendingEvent, "id", "app_id", "user_id", "status")
    parts: list[str] = []
    params: list[str] = []
    if keys:
        parts.append(
            f"SELECT {key_col['event']}, {key_col['app_id']}, {key_col['key']}, 0 FROM {key_table}"
            f" WHERE {key_col['app_id']} IN {sql_in(len(apps))} AND {key_col['key']} IN {sql_in(len(keys))}"
        )
        params += [*apps, *keys]
    if users:
        parts.append(
            f"SELECT {event_col['id']}, {event_col['app_id']}, {event_col['user_id']}, 1 FROM {event_table}"
            f" WHERE {event_col['app_id']} IN {sql_in(len(apps))} AND {event_col['user_id']} IN {sql_in(len(users))}"
            f" AND {event_col['status']} = %s"
        )
        params += [*apps, *users, PendingEventStatus.PENDING.value]
    if not parts:
        return []
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        return [(int(event_id), app_id, value, int(is_user)) for event_id, app_id, value, is_user in cursor.fetchall()]


def pending_events_retry(*, max_age_days: int = 7) -> dict[str, int]:
    """Periodic repair: apply waiting events whose conversion now exists (an activation
    committed concurrently), discard those older than `max_age_days`. Only the events that
    have a conversion are read, so the cost does not grow with the organic devices' waiting events."""
    applied = 0
    for pk in selectors.pending_event_ids_with_conversion():
        with transaction.atomic():
            event = PendingEvent.objects.select_for_update().filter(pk=pk, status=PendingEventStatus.PENDING).first()
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
    discarded = PendingEvent.objects.filter(status=PendingEventStatus.PENDING, created_at__lt=cutoff).update(
        status=PendingEventStatus.DISCARDED, resolution=f"no activation within {max_age_days} days"
    )
    return {"applied": applied, "discarded": discarded}
