"""The batch door of activations (`activations_record_many`, what the consumer calls for
a batch of `app.activated`) ends in the same state as recording each activation one by
one: same winners and windows, reinstall rule (also between two events of one device in
one batch), test devices, fraud verdicts, postbacks planned once and sent after commit,
and the waiting registrations and payments applied or discarded the same way.

Each comparison runs both doors on the same stored clicks and rows, each inside a
savepoint rolled back afterwards, and compares everything they wrote (primary keys
replaced by the activation event id they stand for)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from urllib.parse import urlencode

import pytest
from django.db import IntegrityError, connection, transaction

from alerts import fraud
from attribution import services
from attribution.clicks import click_handle
from attribution.handlers import handle_app_activated_batch
from attribution.models import (
    Conversion,
    ConversionEvent,
    DeviceKey,
    DeviceLock,
    MatchTrace,
    PendingEvent,
    Postback,
)
from attribution.models import TestDevice as TeamDevice  # not a pytest class
from core.models import ProcessedEvent
from tests.attribution.conftest import click_params, event_payload, later

pytestmark = pytest.mark.django_db
APP = "com.kuaipao.app"


def _click(link, *, os: str | None = None, **device) -> dict:
    params = click_params(link.platform, "http://127.0.0.1:9", os=os or link.os, **device)
    status, body = click_handle(platform=link.platform, token=link.token, query=urlencode(params), source_ip="::1")
    assert status == 200, body
    return params


def _activation(
    event_id: str, *, device: dict, at: datetime, os: str | None = "ios", user_id: str | None = None, **extra
) -> services.Activation:
    fields = {"app_id": APP, "ip": "198.51.100.20", "ua": "okhttp/4.9", **extra}
    return services.Activation(event_id=event_id, os=os, user_id=user_id, device=device, occurred_at=at, **fields)


def _state() -> dict:
    """Every row the activations wrote, with ids replaced by activation event ids."""
    event_of = dict(Conversion.objects.values_list("pk", "activation_event_id"))

    def named(text: str) -> str:
        return re.sub(r"conversion (\d+)", lambda m: f"conversion <{event_of.get(int(m.group(1)), '?')}>", text)

    conversion_fields = [f.name for f in Conversion._meta.fields if f.name not in ("id", "created_at", "released_at")]
    return {
        "conversions": sorted(
            tuple(str(getattr(c, name)) for name in conversion_fields) for c in Conversion.objects.all()
        ),
        "device_keys": sorted(
            (k.app_id, k.key, event_of[k.conversion_id], k.activated_at.isoformat()) for k in DeviceKey.objects.all()
        ),
        "locks": sorted(DeviceLock.objects.values_list("app_id", "key")),
        "traces": sorted(
            (
                t.event_id,
                t.app_id,
                t.os,
                t.user_id,
                t.activated_at.isoformat(),
                str(t.device_keys),
                t.outcome,
                named(t.reason),
                t.is_test,
                event_of.get(t.conversion_id) if t.conversion_id else None,
                named(str(t.candidates)),
            )
            for t in MatchTrace.objects.all()
        ),
        "postbacks": sorted(
            (event_of[p.conversion_id], p.event_type, p.source_event_id, p.event_time.isoformat(), p.status)
            for p in Postback.objects.all()
        ),
        "pending": sorted(
            (p.event_id, p.status, named(p.resolution), event_of.get(p.conversion_id) if p.conversion_id else None)
            for p in PendingEvent.objects.all()
        ),
        "conversion_events": sorted(
            (e.event_id, event_of[e.conversion_id], e.event_type, e.user_id, e.arrived_early)
            for e in ConversionEvent.objects.all()
        ),
    }


def _run(door: str, events: list[services.Activation]) -> tuple[dict, list, int]:
    """Apply `events` through one door in a savepoint rolled back afterwards: the state
    it left, its outcomes (kind, conversion's event id) and the callbacks it left for commit."""
    with transaction.atomic():
        callbacks_before = len(connection.run_on_commit)
        if door == "one by one":
            outcomes = []
            for event in events:
                with transaction.atomic():  # its own transaction, as the consumer's savepoint
                    outcomes.append(services.activation_record(**vars(event)))
        else:
            outcomes = services.activations_record_many(events=events)
        state = _state()
        callbacks = len(connection.run_on_commit) - callbacks_before
        transaction.set_rollback(True)
    kinds = [
        (o.outcome, o.conversion.activation_event_id if o.conversion else None, o.trace.event_id) for o in outcomes
    ]
    return state, kinds, callbacks


def _same_end_state(events: list[services.Activation]) -> tuple[dict, list]:
    one_state, one_outcomes, one_callbacks = _run("one by one", events)
    batch_state, batch_outcomes, batch_callbacks = _run("batch", events)
    assert batch_outcomes == one_outcomes
    for table in one_state:
        differing = [
            (n, [(a, b) for a, b in zip(one, batch, strict=True) if a != b])
            for n, (one, batch) in enumerate(zip(one_state[table], batch_state[table], strict=True))
            if one != batch
        ]
        assert not differing, f"{table}: (row, [(one by one, batch)]) {differing}"
        assert len(batch_state[table]) == len(one_state[table]), table
    # each new postback is sent after commit, once
    assert batch_callbacks == one_callbacks == len(one_state["postbacks"]) - Postback.objects.count()
    return one_state, one_outcomes


def test_a_mixed_batch_ends_as_one_by_one(make_link):
    ocean = make_link("oceanengine", postback_activate=True)
    generic = make_link("generic", os="ios")
    tencent = make_link("tencent", os="android")
    make_link("oceanengine", app_id="com.other.app")
    services.test_device_save(device=TeamDevice(label="QA iPhone", idfa="C0000000-0000-4000-8000-00000000000C"))
    fraud.fraud_rule_set(kind="denylist", mode="reject", params={"cidrs": ["192.0.2.0/24"]})
    a, c, d, e, f = (f"{x}0000000-0000-4000-8000-00000000000{x}" for x in "ACDEF")
    i1, i2 = "11000000-0000-4000-8000-000000000011", "12000000-0000-4000-8000-000000000012"
    for idfa in (a, c, d, e, f, i1, i2):
        _click(ocean, idfa=idfa)
    _click(generic, idfa=a)  # the later click on another link wins device A
    _click(tencent, os="android", imei="867512034567891")
    _click(ocean, idfa="B1000000-0000-4000-8000-0000000000B1", ip="203.0.113.99", ua="ipua-device")
    # device F converted before the batch: its activation now is a reinstall
    services.activation_record(**vars(_activation("before-f", device={"idfa": f}, at=later(minutes=1))))
    # waiting deep events: by device key, by user, and one of two devices' keys
    services.deep_event_record(
        event_id="reg-a",
        event_type="register",
        app_id=APP,
        user_id=None,
        device={"idfa": a},
        occurred_at=later(seconds=1),
        amount_fen=None,
    )
    services.deep_event_record(
        event_id="pay-u2",
        event_type="pay",
        app_id=APP,
        user_id="u2",
        device={},
        occurred_at=later(seconds=2),
        amount_fen=600,
    )
    services.deep_event_record(
        event_id="reg-i",
        event_type="register",
        app_id=APP,
        user_id=None,
        device={"idfa": i1, "oaid": "shared-oaid-i"},
        occurred_at=later(seconds=3),
        amount_fen=None,
    )
    soon = later(minutes=5)
    events = [
        _activation("ev-a", device={"idfa": a}, at=soon, user_id="u1"),  # matched, applies reg-a
        _activation("ev-b", device={"idfa": "BB000000-0000-4000-8000-0000000000BB"}, at=soon, user_id="u2"),  # organic
        _activation("ev-a-again", device={"idfa": a}, at=later(minutes=6)),  # same device, same batch: reinstall
        _activation("ev-c", device={"idfa": c}, at=soon),  # a test device: traced, never posted back
        _activation("ev-d", device={"idfa": d}, at=soon, ip="192.0.2.44"),  # deny-listed: rejected
        _activation("ev-e", device={"idfa": e}, at=later(seconds=2)),  # injection: flagged, posted back
        _activation("ev-f", device={"idfa": f}, at=soon),  # converted before: reinstall
        _activation("ev-ipua", device={}, at=soon, ip="203.0.113.99", ua="ipua-device"),  # IP+UA only
        _activation("ev-imei", device={"imei": "867512034567891"}, at=soon, os="android"),
        _activation("ev-i1", device={"idfa": i1}, at=soon),  # takes reg-i
        _activation("ev-i2", device={"idfa": i2, "oaid": "shared-oaid-i"}, at=soon),  # reg-i already taken
        _activation("ev-harmony", device={"idfa": e}, at=soon, os=None),  # device E again: any OS's links
        _activation("ev-other-app", device={"idfa": a}, at=soon, app_id="com.other.app"),  # another app: organic
        _activation("ev-a-third", device={"idfa": a}, at=later(minutes=7), user_id="u1"),
    ]
    state, outcomes = _same_end_state(events)
    by_event = {trace_event: (kind, conversion) for kind, conversion, trace_event in outcomes}
    assert by_event["ev-a"] == ("attributed", "ev-a")
    assert by_event["ev-b"] == ("organic", None)
    assert by_event["ev-a-again"][0] == by_event["ev-a-third"][0] == by_event["ev-f"][0] == "reinstall"
    assert by_event["ev-ipua"] == ("attributed", "ev-ipua")
    assert by_event["ev-imei"] == ("attributed", "ev-imei")
    assert by_event["ev-harmony"][0] == "reinstall" and by_event["ev-other-app"][0] == "organic"
    conversions = {row[4]: row for row in state["conversions"]}  # activation_event_id is the 5th field
    assert set(conversions) == {"before-f", "ev-a", "ev-c", "ev-d", "ev-e", "ev-ipua", "ev-imei", "ev-i1", "ev-i2"}
    # every attributed install is posted back but the test device's (c) and the rejected one (d)
    assert {p[0] for p in state["postbacks"]} == set(conversions) - {"ev-c", "ev-d"}
    assert ("pay-u2", "discarded", "the activation was organic", None) in state["pending"]
    assert ("reg-a", "applied", "applied to conversion <ev-a> when the activation arrived", "ev-a") in state["pending"]
    assert ("reg-i", "applied", "applied to conversion <ev-i1> when the activation arrived", "ev-i1") in state[
        "pending"
    ]


def test_a_batch_of_one_device_chains_its_events_in_order(make_link):
    link = make_link("oceanengine")
    idfa = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
    _click(link, idfa=idfa)
    events = [
        _activation(f"ev-{n}", device={"idfa": idfa, "oaid": f"oaid-{n % 2}"}, at=later(minutes=5 + n))
        for n in range(4)
    ]
    _, outcomes = _same_end_state(events)
    assert [kind for kind, _, _ in outcomes] == ["attributed", "reinstall", "reinstall", "reinstall"]


def test_two_events_winning_one_click_fail_the_batch_and_nothing_is_written(make_link):
    """The one-by-one door records the first and fails the second (the click is taken);
    the batch raises so the consumer applies its events one by one, and writes nothing."""
    link = make_link("oceanengine")
    _click(link, idfa="6D92078A-8246-4BA4-AE5B-76104861E7DC", ip="203.0.113.5", ua="same-ua")
    events = [
        _activation("ev-1", device={"idfa": "6D92078A-8246-4BA4-AE5B-76104861E7DC"}, at=later(minutes=5)),
        _activation("ev-2", device={}, ip="203.0.113.5", ua="same-ua", at=later(minutes=5)),
    ]
    with pytest.raises(IntegrityError):
        services.activations_record_many(events=events)
    assert not Conversion.objects.exists() and not MatchTrace.objects.exists()
    services.activation_record(**vars(events[0]))
    with pytest.raises(IntegrityError):
        services.activation_record(**vars(events[1]))
    assert list(Conversion.objects.values_list("activation_event_id", flat=True)) == ["ev-1"]


def test_a_batch_reads_once_what_one_by_one_reads_per_event(make_link, django_assert_max_num_queries):
    link = make_link("oceanengine")
    events = []
    for n in range(20):
        idfa = f"{n:08X}-0000-4000-8000-000000000000"
        _click(link, idfa=idfa)
        events.append(_activation(f"ev-{n}", device={"idfa": idfa}, at=later(minutes=5), user_id=f"u{n}"))
    fraud.fraud_rules()  # cached, as after the first batch
    # lock, links, test devices, earlier device keys, conversions, device keys, traces,
    # postbacks, waiting events by key and by user: 10 statements for 20 events (+ savepoint)
    with django_assert_max_num_queries(12):
        outcomes = services.activations_record_many(events=events)
    assert [o.outcome for o in outcomes] == ["attributed"] * 20
    assert Postback.objects.count() == 20


# -- through the consumer (core.events.consumer.process_batch, the batch handler) -------


def _deliveries(*payloads: dict, attempts: int = 0) -> list:
    from core.events.consumer import Delivery
    from core.events.contracts import USER_CENTER_EXCHANGE

    return [Delivery(USER_CENTER_EXCHANGE, "app.activated", json.dumps(p).encode(), attempts) for p in payloads]


@pytest.mark.django_db(transaction=True)
def test_the_consumer_applies_a_batch_of_activations_in_one_call_with_multi_row_inserts(make_link):
    from django.test.utils import CaptureQueriesContext

    from core.events.consumer import process_batch
    from core.events.registry import lookup

    assert lookup("app.activated").batch_handler is handle_app_activated_batch
    link = make_link("oceanengine")
    idfas = [f"{n:08X}-0000-4000-8000-00000000000{n}" for n in range(4)]
    for idfa in idfas:
        _click(link, idfa=idfa)
    at = later(minutes=5)
    payloads = [
        event_payload("app.activated", device={"idfa": idfa}, at=at, user_id=f"u{n}") for n, idfa in enumerate(idfas)
    ]
    again = event_payload("app.activated", device={"idfa": idfas[0]}, at=later(minutes=6))  # same device, same batch
    with CaptureQueriesContext(connection) as queries:
        outcomes = process_batch(_deliveries(*payloads, again, payloads[1]), max_attempts=5)
    assert [o.action for o in outcomes] == ["applied"] * 5 + ["duplicate"]
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT INTO")]
    conversion_inserts = [sql for sql in inserts if sql.split()[2].strip('`"') == "attribution_conversion"]
    assert len(conversion_inserts) == 1  # the batch handler's multi-row insert, not one per event
    assert sorted(Conversion.objects.values_list("activation_event_id", flat=True)) == sorted(
        p["event_id"] for p in payloads
    )
    assert MatchTrace.objects.get(event_id=again["event_id"]).outcome == "reinstall"
    assert Postback.objects.count() == 4
    assert ProcessedEvent.objects.filter(event_id__in=[p["event_id"] for p in [*payloads, again]]).count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_batch_whose_click_two_events_win_falls_back_and_only_the_second_event_retries(make_link):
    from core.events.consumer import process_batch

    link = make_link("oceanengine")
    _click(link, idfa="6D92078A-8246-4BA4-AE5B-76104861E7DC", ip="203.0.113.5", ua="same-ua")
    _click(link, idfa="7D92078A-8246-4BA4-AE5B-76104861E7DC")
    at = later(minutes=5)
    first = event_payload("app.activated", device={"idfa": "6D92078A-8246-4BA4-AE5B-76104861E7DC"}, at=at)
    same_click = event_payload("app.activated", device={}, ip="203.0.113.5", ua="same-ua", at=at)
    other = event_payload("app.activated", device={"idfa": "7D92078A-8246-4BA4-AE5B-76104861E7DC"}, at=at)
    outcomes = process_batch(_deliveries(first, same_click, other), max_attempts=5)
    assert [o.action for o in outcomes] == ["applied", "retry", "applied"]
    assert sorted(Conversion.objects.values_list("activation_event_id", flat=True)) == sorted(
        [first["event_id"], other["event_id"]]
    )
    assert not ProcessedEvent.objects.filter(event_id=same_click["event_id"]).exists()
