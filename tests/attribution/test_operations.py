"""Services used by operators and periodic jobs: demo data, resync, sweeps, waiting events."""

import io
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.utils import timezone

from attribution import demo, devices, services
from attribution.models import (
    Conversion,
    ConversionEvent,
    MatchTrace,
    PendingEvent,
    PendingEventKey,
    Postback,
    TrackingLink,
)
from attribution.models import TestDevice as QaDevice
from core.redis import get_redis
from tests.attribution.conftest import click_params

pytestmark = pytest.mark.django_db


def _click(client, link, base_url="", **device):
    params = click_params(link.platform, base_url, os=link.os, **device)
    assert client.get(f"/t/{link.platform}/{link.token}?{urlencode(params)}").status_code == 200


def _activate(link, event_id, *, at=None, **device):
    return services.activation_record(
        event_id=event_id,
        app_id=link.app_id,
        os=link.os,
        user_id=None,
        device=device,
        ip=None,
        ua=None,
        occurred_at=at or timezone.now(),
    )


def test_demo_seed_makes_one_link_per_platform_idempotently_and_replicates_them():
    out = io.StringIO()
    demo.seed(out)
    demo.seed(out)
    links = TrackingLink.objects.all()
    assert sorted(links.values_list("platform", flat=True)) == ["generic", "kuaishou", "oceanengine", "tencent"]
    for link in links:
        assert get_redis().hget(f"att:link:{link.token}", "id") == str(link.id).encode()
    assert "/t/tencent/" in out.getvalue()


def test_resync_command_restores_replicas(make_link):
    link = make_link("kuaishou", os="android")
    get_redis().delete(f"att:link:{link.token}")
    out = io.StringIO()
    call_command("attribution_resync_links", stdout=out)
    assert "synced 1 tracking link(s)" in out.getvalue()
    assert get_redis().hget(f"att:link:{link.token}", "platform") == b"kuaishou"


def test_reinstall_rule_lapses_after_90_days(client, make_link):
    link = make_link("oceanengine", os="ios", device_window_days=30)
    _click(client, link, idfa="AA-90")
    first = _activate(link, "a1", idfa="AA-90")
    assert first.outcome == "attributed"
    _click(client, link, idfa="AA-90")
    # 91 days later the old conversion no longer blocks; the click is still in Redis here
    # (its TTL is real time), and the window is measured from that click: outside 30 days
    late = _activate(link, "a2", at=timezone.now() + timedelta(days=91), idfa="AA-90")
    assert late.outcome == "organic" and "outside the 30 d window" in late.trace.candidates[0]["reason"]
    soon = _activate(link, "a3", at=timezone.now() + timedelta(days=89), idfa="AA-90")
    assert soon.outcome == "reinstall"


def test_clicks_before_conversion_counts_repeated_clicks_only_up_to_the_activation(client, make_link):
    link = make_link("generic")
    for _ in range(4):
        _click(client, link, idfa="REP-1")
    outcome = _activate(link, "r1", idfa="REP-1")
    assert outcome.conversion.clicks_before_conversion == 4
    assert outcome.conversion.match_method == "idfa"


def test_ipua_off_means_an_ip_ua_only_device_is_organic(client, make_link):
    link = make_link("generic", ipua_window_hours=0)
    _click(client, link, ip="203.0.113.44", ua="UA-x")
    outcome = services.activation_record(
        event_id="o1",
        app_id=link.app_id,
        os="ios",
        user_id=None,
        device={},
        ip="203.0.113.44",
        ua="UA-x",
        occurred_at=timezone.now(),
    )
    assert outcome.outcome == "organic"
    assert outcome.trace.candidates == [
        {**outcome.trace.candidates[0], "kind": "ipua", "reason": "IP+UA matching is off for this link"}
    ]


def test_early_event_of_an_organic_device_is_discarded_and_late_ones_are_recorded_on_the_conversion(client, make_link):
    link = make_link("oceanengine", os="ios")
    services.deep_event_record(
        event_id="reg-org",
        event_type="register",
        app_id=link.app_id,
        user_id="u-org",
        device={"idfa": "ORG-1"},
        occurred_at=timezone.now(),
        amount_fen=None,
    )
    _activate(link, "act-org", idfa="ORG-1")
    assert PendingEvent.objects.get(event_id="reg-org").status == "discarded"
    _click(client, link, idfa="ATT-1")
    outcome = _activate(link, "act-att", idfa="ATT-1")
    services.deep_event_record(
        event_id="pay-1",
        event_type="pay",
        app_id=link.app_id,
        user_id="u1",
        device={"idfa": "ATT-1"},
        occurred_at=timezone.now(),
        amount_fen=1200,
    )
    event = ConversionEvent.objects.get(event_id="pay-1")
    assert (event.conversion, event.amount_fen, event.arrived_early) == (outcome.conversion, 1200, False)
    outcome.conversion.refresh_from_db()
    assert outcome.conversion.user_id == "u1"


def test_pending_retry_applies_events_whose_activation_committed_meanwhile_and_expires_old_ones(client, make_link):
    link = make_link("oceanengine", os="ios", postback_register=True)
    _click(client, link, idfa="RACE-1")
    conversion = _activate(link, "act-race", idfa="RACE-1").conversion
    # as if the registration had been stored as waiting while the activation was committing
    race = PendingEvent.objects.create(
        event_id="reg-race",
        event_type="register",
        app_id=link.app_id,
        device_keys=conversion.device_keys,
        occurred_at=timezone.now(),
    )
    PendingEventKey.objects.bulk_create(
        PendingEventKey(event=race, app_id=link.app_id, key=key) for key in devices.flat_keys(conversion.device_keys)
    )
    old = PendingEvent.objects.create(
        event_id="reg-old",
        event_type="register",
        app_id=link.app_id,
        device_keys={"idfa": ["0" * 31 + "1"]},
        occurred_at=timezone.now(),
    )
    PendingEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    assert services.pending_events_retry() == {"applied": 1, "discarded": 1}
    assert Postback.objects.filter(conversion=conversion, event_type="register").exists()
    assert ConversionEvent.objects.get(event_id="reg-race").arrived_early


def test_sweep_resends_postbacks_whose_retry_was_lost_and_stale_claims(
    client, make_link, ad_platform, django_capture_on_commit_callbacks
):
    link = make_link("generic", postback_activate=False, postback_register=True)
    _click(client, link, ad_platform.url, idfa="SW-1")
    conversion = _activate(link, "act-sw", idfa="SW-1").conversion
    lost = Postback.objects.create(
        conversion=conversion,
        event_type="register",
        source_event_id="r",
        event_time=timezone.now(),
        status="retrying",
        attempt_count=2,
        next_attempt_at=timezone.now() - timedelta(hours=1),
    )
    assert services.postbacks_sweep() == 1
    lost.refresh_from_db()
    assert lost.status == "succeeded" and len(ad_platform.received("generic")) == 1
    assert MatchTrace.objects.count() == 1 and Conversion.objects.count() == 1


def _register(link, event_id, *, user_id=None, **device):
    return services.deep_event_record(
        event_id=event_id,
        event_type="register",
        app_id=link.app_id,
        user_id=user_id,
        device=device,
        occurred_at=timezone.now(),
        amount_fen=None,
    )


def test_activation_resolves_only_the_waiting_events_of_its_device_or_user(client, make_link):
    link = make_link("oceanengine", os="ios", postback_activate=False)
    assert _register(link, "reg-mine-key", idfa="MINE-1") == "pending"
    assert _register(link, "reg-mine-user", user_id="u-mine") == "pending"
    assert _register(link, "reg-other", user_id="u-other", idfa="OTHER-1") == "pending"
    _click(client, link, idfa="MINE-1")
    services.activation_record(
        event_id="act-mine",
        app_id=link.app_id,
        os="ios",
        user_id="u-mine",
        device={"idfa": "MINE-1"},
        ip=None,
        ua=None,
        occurred_at=timezone.now(),
    )
    statuses = dict(PendingEvent.objects.values_list("event_id", "status"))
    assert statuses == {"reg-mine-key": "applied", "reg-mine-user": "applied", "reg-other": "pending"}


def test_forgetting_a_device_drops_its_waiting_events_only(make_link):
    link = make_link("oceanengine", os="ios")
    _register(link, "reg-forget", idfa="FORGET-1")
    _register(link, "reg-keep", idfa="KEEP-1")
    device = services.test_device_save(device=QaDevice(label="QA", idfa="FORGET-1", app_id=link.app_id))
    assert services.test_device_forget(device=device)["pending_events"] == 1
    assert list(PendingEvent.objects.values_list("event_id", flat=True)) == ["reg-keep"]


def test_pending_retry_expires_old_events_behind_more_than_a_thousand_newer_ones(make_link):
    link = make_link("oceanengine", os="ios")
    old = PendingEvent.objects.create(
        event_id="reg-old", event_type="register", app_id=link.app_id, occurred_at=timezone.now()
    )
    PendingEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    PendingEvent.objects.bulk_create(
        PendingEvent(event_id=f"reg-new-{i}", event_type="register", app_id=link.app_id, occurred_at=timezone.now())
        for i in range(1000)
    )
    assert services.pending_events_retry() == {"applied": 0, "discarded": 1}
    assert PendingEvent.objects.get(pk=old.pk).status == "discarded"


def test_clicks_activations_and_rejects_are_logged_as_json_lines_with_their_facts(client, make_link, caplog):
    import json
    import logging

    from pythonjsonlogger.json import JsonFormatter

    (formatter,) = {h.formatter for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)}
    link = make_link("oceanengine", os="ios")
    with caplog.at_level(logging.INFO, logger="huodong.attribution"):
        _click(client, link, idfa="LOG-1")
        client.get("/t/oceanengine/unknown-token?idfa=LOG-1")
        _activate(link, "act-log", idfa="LOG-1")
    lines = {
        r.getMessage(): json.loads(formatter.format(r)) for r in caplog.records if r.name.startswith("huodong.att")
    }
    assert lines["click"]["link_id"] == link.id and lines["click"]["keys"] == ["idfa", "ipua"]
    assert lines["click rejected"]["reason"] == "unknown_link"
    activation = lines["activation attributed"]
    assert (activation["log.logger"], activation["match_method"], activation["clicks_before_conversion"]) == (
        "huodong.attribution",
        "idfa",
        1,
    )


def test_an_activation_the_consumer_applies_makes_one_line_the_consumers_with_the_activations_facts(
    events, client, make_link, caplog
):
    import logging

    from attribution.models import Conversion
    from tests.attribution.conftest import event_payload, later

    link = make_link("oceanengine", os="ios")
    _click(client, link, idfa="LOG-2")
    payload = event_payload("app.activated", device={"idfa": "LOG-2"}, at=later(minutes=1))
    with caplog.at_level(logging.INFO):
        events.publish("user_center", "app.activated", payload)
        events.wait_for(lambda: events.consumer.handled >= 1)
    conversion = Conversion.objects.get(activation_event_id=payload["event_id"])
    lines = [r for r in caplog.records if getattr(r, "event_id", None) == payload["event_id"]]
    assert [(r.name, r.getMessage()) for r in lines] == [("huodong.events", "event applied")]
    line = lines[0]
    assert (line.outcome, line.activation, line.conversion_id, line.link_id, line.match_method) == (
        "applied",
        "attributed",
        conversion.pk,
        link.id,
        "idfa",
    )


def test_pending_retry_applies_a_waiting_event_by_its_user_and_leaves_other_users_waiting(client, make_link):
    link = make_link("oceanengine", os="ios")
    _click(client, link, idfa="USER-1")
    conversion = services.activation_record(
        event_id="act-user",
        app_id=link.app_id,
        os="ios",
        user_id="u-race",
        device={"idfa": "USER-1"},
        ip=None,
        ua=None,
        occurred_at=timezone.now(),
    ).conversion
    _click(client, link, idfa="NOUSER-1")
    assert _activate(link, "act-nouser", idfa="NOUSER-1").conversion.user_id == ""  # must not adopt "pay-nobody"
    for event_id, user_id in (("pay-race", "u-race"), ("pay-other", "u-other"), ("pay-nobody", "")):
        PendingEvent.objects.create(
            event_id=event_id,
            event_type="pay",
            app_id=link.app_id,
            user_id=user_id,
            occurred_at=timezone.now(),
            amount_fen=100,
        )
    assert services.pending_events_retry() == {"applied": 1, "discarded": 0}
    assert ConversionEvent.objects.get(event_id="pay-race").conversion == conversion
    assert set(PendingEvent.objects.filter(status="pending").values_list("event_id", flat=True)) == {
        "pay-other",
        "pay-nobody",
    }
