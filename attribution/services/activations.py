"""Activations: the device's rows locked, the match explained (selectors.activation_explain),
the conversion recorded, its postback planned and the events that waited for it applied.

Two doors, one set of rules: `activation_record` (one event) and `activations_record_many`
(a consumer batch, set-based). Both read through the same selectors' pure halves
(`links_among`, `test_device_among`, `click_lookups` / `click_candidates_judge`,
`latest_conversion_among`, `activation_decide`) and build their rows with the same
functions here (`_conversion_build`, `_device_key_rows_build`, `_trace_build`), the same
`postback_wanted` and the same pending-event resolution; only how often they read and
write differs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.utils import timezone

from alerts import fraud
from attribution import devices, platforms, selectors
from attribution.models import (
    Conversion,
    DeviceKey,
    DeviceLock,
    FraudStatus,
    MatchOutcome,
    MatchTrace,
    TestDevice,
    TrackingLink,
)
from attribution.services.deep_events import _pending_resolve_many
from attribution.services.postbacks import postback_plan, postbacks_plan_new
from core.db import instance_build, instances_where, rows_insert, sql_columns, sql_in, values_where
from core.events.facts import event_line_facts

logger = logging.getLogger("huodong.attribution")

TRACE_MAX_CANDIDATES = 200  # newest first; a trace row stays small
# The builders below hand over the related objects they hold (no query when read later).
_CONVERSION_LINK = Conversion._meta.get_field("link")
_TRACE_CONVERSION = MatchTrace._meta.get_field("conversion")


@dataclass(frozen=True)
class ActivationOutcome:
    outcome: MatchOutcome
    conversion: Conversion | None
    trace: MatchTrace


@dataclass(frozen=True)
class Activation:
    """One `app.activated` event (contracts §2), as `activation_record` takes it."""

    event_id: str
    app_id: str
    os: str | None
    user_id: str | None
    device: dict | None
    ip: str | None
    ua: str | None
    occurred_at: datetime


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
    event = Activation(event_id, app_id, os, user_id, device, ip, ua, occurred_at)
    keys = devices.activation_keys(device, ip=ip, ua=ua)
    _device_lock(keys=[(app_id, key) for key in devices.flat_keys(keys)])
    explained = selectors.activation_explain(app_id=app_id, os=os, keys=keys, activated_at=occurred_at)
    conversion = None
    if explained.winner is not None:
        conversion = _conversion_build(
            event=event, keys=keys, explained=explained, is_test=explained.test_device is not None
        )
        conversion.save(force_insert=True)
        rows_insert(DeviceKey, fields=DEVICE_KEY_FIELDS, rows=_device_key_rows_build(conversion))
    trace = _trace_build(event=event, keys=keys, explained=explained, conversion=conversion)
    trace.save(force_insert=True)
    if conversion is not None:
        postback_plan(
            conversion=conversion,
            event_type=platforms.EVENT_ACTIVATE,
            source_event_id=event_id,
            event_time=occurred_at,
            amount_fen=None,
        )
    _pending_resolve_many(
        waiting_for=[(app_id, devices.flat_keys(keys), user_id or "", conversion or explained.previous)]
    )
    _log(event=event, explained=explained, conversion=conversion)
    return ActivationOutcome(explained.outcome, conversion, trace)


def activations_record_many(*, events: list[Activation], savepoint: bool = True) -> list[ActivationOutcome]:
    """`activation_record` for a batch, in order, with the end state of recording them one
    by one (same winners, windows, reinstall rule, fraud verdicts, postbacks planned once
    and sent after commit, pending events applied or discarded), but set-based: one
    DeviceLock upsert for every device of the batch, one read each of the links, test
    devices and fraud rules, one Redis pipeline for every click set, and per *wave* one
    read of the devices' earlier conversions and one multi-row insert each of conversions,
    device keys, traces and postbacks; the waiting events of the whole batch in two reads.

    Waves: an event that shares a device key with an earlier event of the batch must see
    that event's conversion (the reinstall rule), so it goes into a later wave than it;
    the events of one wave share no device key, so none reads what another writes. An
    event whose winning click another conversion already holds (or an event id recorded
    before) breaks the insert's unique key: the batch raises and the consumer applies its
    events one by one (the one-by-one outcome: that event alone fails).

    Atomic: `savepoint=False` when the caller's own savepoint holds exactly this call
    (the consumer's batch savepoint: the batch handler), so that an error rolls that one
    back instead of a savepoint of ours (one SAVEPOINT and one RELEASE fewer a batch)."""
    with transaction.atomic(savepoint=savepoint):
        return _activations_record_many(events)


def _activations_record_many(events: list[Activation]) -> list[ActivationOutcome]:
    if not events:
        return []
    keys_of = [devices.activation_keys(e.device, ip=e.ip, ua=e.ua) for e in events]
    flat_of = [devices.flat_keys(keys) for keys in keys_of]
    _device_lock(keys=[(e.app_id, key) for e, flat in zip(events, flat_of, strict=True) for key in flat])
    apps = {e.app_id for e in events}
    # plain SQL (`instances_where`): the ORM's compilation of these two small reads cost
    # about 3 ms a batch, three times their running
    _, link_col = sql_columns(TrackingLink, "app_id")
    all_links = instances_where(TrackingLink, where=f"{link_col['app_id']} IN {sql_in(len(apps))}", params=[*apps])
    links_of = [selectors.links_among(all_links, app_id=e.app_id, os=e.os) for e in events]
    _, device_col = sql_columns(TestDevice, "app_id")
    test_devices = (
        instances_where(
            TestDevice,
            where=f"{device_col['app_id']} = %s OR {device_col['app_id']} IN {sql_in(len(apps))}",
            params=["", *apps],
        )
        if any(flat_of)
        else []
    )  # no device key: no test device (test_device_matching reads nothing either)
    test_of = [
        selectors.test_device_among(test_devices, app_id=e.app_id, keys=keys)
        for e, keys in zip(events, keys_of, strict=True)
    ]
    # Every click set of the batch in one pipeline (activations never write clicks).
    lookups_of, notes_of = zip(
        *(selectors.click_lookups(links=links, keys=keys) for links, keys in zip(links_of, keys_of, strict=True)),
        strict=True,
    )
    results = selectors.click_sets_read([lookup for lookups in lookups_of for lookup in lookups])
    matches = []
    start = 0
    for e, lookups, notes in zip(events, lookups_of, notes_of, strict=True):
        matches.append(
            selectors.click_candidates_judge(
                lookups=lookups,
                results=results[start : start + len(lookups)],
                notes=notes,
                activated_ms=int(e.occurred_at.timestamp() * 1000),
            )
        )
        start += len(lookups)
    rules = fraud.fraud_rules()
    outcomes: list[ActivationOutcome | None] = [None] * len(events)
    explained_of: list[selectors.MatchExplanation | None] = [None] * len(events)
    for wave in _waves(events, flat_of):
        wanted = [(events[i].app_id, flat_of[i]) for i in wave if flat_of[i]]
        earlier = _device_key_rows(
            wanted=wanted, since=min(selectors.reinstall_since(events[i].occurred_at) for i in wave)
        )
        conversions: dict[int, Conversion] = {}
        decided_in_wave: dict[int, selectors.MatchExplanation] = {}
        for i in wave:
            e = events[i]
            previous = selectors.latest_conversion_among(
                earlier, app_id=e.app_id, keys=flat_of[i], since=selectors.reinstall_since(e.occurred_at)
            )
            explained = selectors.activation_decide(
                match=matches[i], links=links_of[i], previous=previous, test_device=test_of[i]
            )
            explained_of[i] = decided_in_wave[i] = explained
            if explained.winner is not None:
                conversions[i] = _conversion_build(
                    event=e, keys=keys_of[i], explained=explained, is_test=test_of[i] is not None, rules=rules
                )
        if conversions:
            _instances_insert(Conversion, list(conversions.values()))
            rows_insert(
                DeviceKey,
                fields=DEVICE_KEY_FIELDS,
                rows=[row for c in conversions.values() for row in _device_key_rows_build(c)],
            )
        traces = {
            i: _trace_build(event=events[i], keys=keys_of[i], explained=explained, conversion=conversions.get(i))
            for i, explained in decided_in_wave.items()
        }
        _instances_insert(MatchTrace, list(traces.values()))
        postbacks_plan_new(
            planned=[
                (conversion, platforms.EVENT_ACTIVATE, events[i].event_id, events[i].occurred_at, None)
                for i, conversion in conversions.items()
            ]
        )
        for i in wave:
            outcomes[i] = ActivationOutcome(decided_in_wave[i].outcome, conversions.get(i), traces[i])
    done = [outcome for outcome in outcomes if outcome is not None]
    decided = [explained for explained in explained_of if explained is not None]
    assert len(done) == len(decided) == len(events)  # every event is in exactly one wave
    # The waiting events read nothing the matching writes and the matching reads nothing
    # they write: resolved once for the batch, in event order.
    _pending_resolve_many(
        waiting_for=[
            (e.app_id, flat, e.user_id or "", outcome.conversion or explained.previous)
            for e, flat, outcome, explained in zip(events, flat_of, done, decided, strict=True)
        ]
    )
    for e, outcome, explained in zip(events, done, decided, strict=True):
        _log(event=e, explained=explained, conversion=outcome.conversion)
    return done


def _waves(events: list[Activation], flat_of: list[list[str]]) -> list[list[int]]:
    """Indexes of the events by wave: each event one wave after the last earlier event
    that shares one of its device keys (of its app), else in the first; in order within a wave."""
    last: dict[tuple[str, str], int] = {}
    waves: list[list[int]] = []
    for i, (e, flat) in enumerate(zip(events, flat_of, strict=True)):
        wave = max((last[(e.app_id, key)] + 1 for key in flat if (e.app_id, key) in last), default=0)
        for key in flat:
            last[(e.app_id, key)] = wave
        if wave == len(waves):
            waves.append([])
        waves[wave].append(i)
    return waves


def _device_key_rows(*, wanted: list[tuple[str, list[str]]], since: datetime) -> list[DeviceKey]:
    """The device-key rows (with their conversions) of these devices activated since
    `since`: one read for a wave (`latest_conversion_among` picks each device's). First
    the ids, by plain SQL (`core.db.values_where`: a wave asks with a hundred keys, and the
    ORM's compilation of that cost more than the answer), then, only when some were
    found (a reinstall), those rows and their conversions through the ORM."""
    if not wanted:
        return []
    apps = {app_id for app_id, _ in wanted}
    keys = {key for _, flat in wanted for key in flat}
    if not keys:
        return []
    _, col = sql_columns(DeviceKey, "app_id", "key", "activated_at")
    found = values_where(
        DeviceKey,
        fields=["pk"],
        where=f"{col['app_id']} IN {sql_in(len(apps))} AND {col['key']} IN {sql_in(len(keys))}"
        f" AND {col['activated_at']} >= %s",
        params=[*apps, *keys, connection.ops.adapt_datetimefield_value(since)],
    )
    ids = [pk for (pk,) in found]
    return list(DeviceKey.objects.filter(pk__in=ids).select_related("conversion")) if ids else []


def _device_lock(*, keys: list[tuple[str, str]]) -> None:
    """Lock the devices' rows, (app, key) in order, until commit. One upsert creates a
    row on first sight and write-locks it either way: an insert-then-SELECT FOR
    UPDATE would take a shared lock on a duplicate first, and two transactions
    upgrading it deadlock on InnoDB."""
    ordered = sorted(set(keys))
    if not ordered:
        return
    now = timezone.now()
    rows_insert(
        DeviceLock,
        fields=["app_id", "key", "last_activation_at"],
        rows=[(app_id, key, now) for app_id, key in ordered],
        update_on_conflict=["last_activation_at"],
        unique_fields=["app_id", "key"],  # SQLite's conflict target (MySQL's ON DUPLICATE KEY takes none)
    )


def _instances_insert(model: type[Conversion] | type[MatchTrace], instances: list) -> None:
    """Insert these unsaved instances in one multi-row INSERT (`core.db.rows_insert`: what
    `bulk_create` writes, without its per-value compilation) and give them their primary
    keys and `created_at`, as `bulk_create` does."""
    now = timezone.now()
    fields = _insert_fields(model)
    for instance in instances:
        instance.created_at = now
    row = attrgetter(*fields)  # one C call a row
    pks = rows_insert(model, fields=fields, rows=[row(obj) for obj in instances], returning_pk=True)
    for instance, pk in zip(instances, pks, strict=True):  # the backends' RETURNING (MariaDB >= 10.5, SQLite >= 3.35)
        instance.pk = pk
        instance._state.adding, instance._state.db = False, DEFAULT_DB_ALIAS


def _insert_fields(model: type[Conversion] | type[MatchTrace]) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields if not field.primary_key]


def _conversion_build(
    *,
    event: Activation,
    keys: dict[str, list[str]],
    explained: selectors.MatchExplanation,
    is_test: bool,
    rules: fraud.FraudRules | None = None,
) -> Conversion:
    """The (unsaved) conversion of an attributed activation, judged by the fraud rules."""
    winner = explained.winner
    assert winner is not None and winner.click_at_ms is not None  # a winner is a stored click: it has its time
    occurred_at = event.occurred_at
    click_at = datetime.fromtimestamp(
        winner.click_at_ms / 1000, tz=occurred_at.tzinfo or timezone.get_current_timezone()
    )
    link = next(link for link in explained.links if link.id == winner.link_id)
    seconds_to_install = max(0, int((occurred_at - click_at).total_seconds()))
    verdict = fraud.fraud_judge(
        app_id=event.app_id,
        ctit_seconds=seconds_to_install,
        click_ip=winner.click.get("ip") or "",
        activation_ip=event.ip or "",
        clicks_on_key=max(1, winner.clicks_on_key),
        link_id=link.id,  # the flooding rule's long tail judges the link's install rate
        rules=rules,
    )
    fraud_status = ""
    if verdict:
        fraud_status = FraudStatus.REJECTED if verdict.mode == "reject" else FraudStatus.FLAGGED
    conversion = instance_build(
        Conversion,
        {
            "link_id": link.id,
            "platform": winner.platform,
            "app_id": event.app_id,
            "os": event.os or winner.click.get("os") or link.os,  # kuaishou clicks carry no OS: the link's
            "activation_event_id": event.event_id,
            "click_id": winner.click_id,
            "click_at": click_at,
            "activated_at": occurred_at,
            "seconds_to_install": seconds_to_install,
            "match_method": winner.kind,
            "match_key": f"{winner.kind}:{winner.key}",
            "clicks_before_conversion": max(1, winner.clicks_on_key),
            "user_id": event.user_id or "",
            "callback": winner.click.get("cb", ""),
            "click": winner.click,
            "device_keys": keys,
            "oaid": devices.clean((event.device or {}).get("oaid")) or "",
            "is_test": is_test,
            "fraud_status": fraud_status,
            "fraud_rule": verdict.rule if verdict else "",
            "fraud_reason": verdict.reason[:300] if verdict else "",
        },
    )
    _CONVERSION_LINK.set_cached_value(conversion, link)  # postback_wanted reads it: no query
    return conversion


DEVICE_KEY_FIELDS = ("app_id", "key", "conversion_id", "activated_at")


def _device_key_rows_build(conversion: Conversion) -> list[tuple[str, str, int, datetime]]:
    """The `DeviceKey` rows of a saved conversion (DEVICE_KEY_FIELDS)."""
    assert conversion.pk is not None
    return [
        (conversion.app_id, key, conversion.pk, conversion.activated_at)
        for key in devices.flat_keys(conversion.device_keys)
    ]


def _trace_build(
    *,
    event: Activation,
    keys: dict[str, list[str]],
    explained: selectors.MatchExplanation,
    conversion: Conversion | None,
) -> MatchTrace:
    """The (unsaved) trace of an activation: the outcome, why, and the clicks considered."""
    reason = explained.reason
    if conversion is not None and conversion.fraud_status:
        reason += f" · fraud rule {conversion.fraud_rule} ({conversion.fraud_status}): {conversion.fraud_reason}"
    if explained.test_device is not None:
        reason += selectors.test_device_note(explained.test_device)
    linked = conversion or explained.previous
    assert linked is None or linked.pk is not None  # a trace is built after its conversion is saved
    trace = instance_build(
        MatchTrace,
        {
            "event_id": event.event_id,
            "app_id": event.app_id,
            "os": event.os or "",
            "user_id": event.user_id or "",
            "activated_at": event.occurred_at,
            "device_keys": keys,
            "outcome": explained.outcome,
            "reason": reason[:300],
            "is_test": explained.test_device is not None,
            "conversion_id": linked.pk if linked is not None else None,
            "candidates": [c.as_dict() for c in explained.candidates[:TRACE_MAX_CANDIDATES]],
        },
    )
    _TRACE_CONVERSION.set_cached_value(trace, linked)
    return trace


def _log(*, event: Activation, explained: selectors.MatchExplanation, conversion: Conversion | None) -> None:
    """The activation's facts: on the consumer's own line for its event when a consumer
    applies it (core/events/facts.py: one line per event), else a line of their own."""
    facts = {
        "app_id": event.app_id,
        "os": event.os,
        "activation": explained.outcome,
        "conversion_id": conversion.pk if conversion else None,
        "link_id": conversion.link_id if conversion else None,
        "platform": conversion.platform if conversion else None,
        "match_method": conversion.match_method if conversion else None,
        "seconds_to_install": conversion.seconds_to_install if conversion else None,
        "clicks_before_conversion": conversion.clicks_before_conversion if conversion else None,
        "candidates": len(explained.candidates),
        "test_device": bool(explained.test_device),
    }
    if not event_line_facts(event_id=event.event_id, facts=facts):
        logger.info(
            "activation " + explained.outcome,
            extra={"event_id": event.event_id, "outcome": explained.outcome, **facts},
        )
