"""Activation matching, deep events and postbacks through the real broker and consumer."""

from urllib.parse import urlencode

import pytest

from attribution.models import Conversion, MatchTrace, PendingEvent, Postback, PostbackAttempt
from core.models import DeadLetter, ProcessedEvent
from tests.attribution.conftest import click_params, event_payload, later, md5

IDFA = "6D92078A-8246-4BA4-AE5B-76104861E7DC"
IMEI = "867512034567891"
OAID = "1fe3b0ab-9c1d-4f62-a0e1-c57c0b1d22aa"
ANDROID_ID = "9774D56D682E549C"
CAID = "a5e1f4d7c2b84e0f9e7d6c5b4a3f2e1d"


def _click(client, link, base_url, os=None, **device):
    params = click_params(link.platform, base_url, os=os or link.os, **device)
    response = client.get(f"/t/{link.platform}/{link.token}?{urlencode(params)}")
    assert response.status_code == 200, response.content
    return params


def _activate(events, *, device, os="ios", wait=True, **extra):
    payload = event_payload("app.activated", device=device, os=os, **extra)
    events.publish("user_center", "app.activated", payload)
    if wait:
        events.wait_for(lambda: MatchTrace.objects.filter(event_id=payload["event_id"]).exists())
    return payload


@pytest.mark.parametrize(
    ("platform", "os", "device", "method"),
    [
        ("oceanengine", "ios", {"idfa": IDFA}, "idfa"),
        ("oceanengine", "ios", {"caid": CAID}, "caid"),
        ("tencent", "android", {"imei": IMEI}, "imei"),
        ("kuaishou", "android", {"oaid": OAID}, "oaid"),
        ("tencent", "android", {"android_id": ANDROID_ID}, "android_id"),
    ],
)
def test_each_device_id_matches_and_activation_is_posted_back(
    events, client, make_link, ad_platform, platform, os, device, method
):
    link = make_link(platform, os=os)
    _click(client, link, ad_platform.url, **device)
    activation = _activate(events, device=device, os=os, user_id="10086")
    conversion = Conversion.objects.get()
    assert (conversion.link_id, conversion.match_method, conversion.user_id) == (link.id, method, "10086")
    assert conversion.activation_event_id == activation["event_id"]
    assert conversion.clicks_before_conversion == 1
    assert 0 <= conversion.seconds_to_install < 60
    events.wait_for(lambda: Postback.objects.filter(status="succeeded").count() == 1)
    (request,) = ad_platform.received(platform)
    if platform == "oceanengine":
        assert request["query"]["event_type"] == "0" and request["query"]["callback"].startswith("EJiw")
    elif platform == "kuaishou":
        assert request["query"]["event_type"] == "1" and len(request["query"]["event_time"]) == 13
    else:
        action = request["body"]["actions"][0]
        assert request["method"] == "POST" and action["action_type"] == "ACTIVATE_APP"
        assert action["outer_action_id"] == str(conversion.id)
        expected = {"imei": {"hash_imei": md5(IMEI)}, "android_id": {"hash_android_id": md5(ANDROID_ID.lower())}}
        assert action["user_id"] == expected[method]


def test_ip_ua_match_only_when_no_device_id_matches_and_within_its_window(events, client, make_link, ad_platform):
    link = make_link("generic", ipua_window_hours=2)
    ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)"
    _click(client, link, ad_platform.url, ip="203.0.113.9", ua=ua)
    late = _activate(events, device={}, ip="203.0.113.9", ua=ua, occurred_at=later(hours=3).isoformat())
    assert MatchTrace.objects.get(event_id=late["event_id"]).outcome == "organic"
    trace = MatchTrace.objects.get(event_id=late["event_id"])
    assert "outside the 2 h window" in trace.candidates[0]["reason"]
    _activate(events, device={}, ip="203.0.113.9", ua=ua)
    conversion = Conversion.objects.get()
    assert conversion.match_method == "ipua"
    events.wait_for(lambda: len(ad_platform.received("generic")) == 1)
    assert ad_platform.received("generic")[0]["query"]["event"] == "activate"


def test_device_window_and_last_click_wins_across_links(events, client, make_link, ad_platform):
    first = make_link("oceanengine", os="ios", campaign_name="first", device_window_days=7)
    second = make_link("kuaishou", os="ios", campaign_name="second", device_window_days=1)
    _click(client, first, ad_platform.url, idfa=IDFA)
    _click(client, first, ad_platform.url, idfa=IDFA)
    _click(client, second, ad_platform.url, idfa=IDFA)
    # two days later: the kuaishou click is outside its 1-day window, the oceanengine ones are in
    payload = _activate(events, device={"idfa": IDFA.lower()}, occurred_at=later(days=2).isoformat())
    conversion = Conversion.objects.get()
    assert conversion.link_id == first.id and conversion.clicks_before_conversion == 2
    trace = MatchTrace.objects.get(event_id=payload["event_id"])
    verdicts = sorted((c["link_id"], c["verdict"]) for c in trace.candidates if c["kind"] == "idfa")
    assert verdicts == sorted([(first.id, "matched"), (first.id, "rejected"), (second.id, "rejected")])
    assert any("outside the 1 d window" in c["reason"] for c in trace.candidates if c["link_id"] == second.id)


def test_latest_click_wins_and_device_id_beats_ip_ua(events, client, make_link, ad_platform):
    ocean = make_link("oceanengine", os="ios", campaign_name="ocean")
    generic = make_link("generic", os="ios", campaign_name="generic")
    _click(client, ocean, ad_platform.url, idfa=IDFA, ip="203.0.113.1", ua="UA-1")
    _click(client, generic, ad_platform.url, ip="203.0.113.1", ua="UA-1")  # later, but IP+UA only
    _activate(events, device={"idfa": IDFA}, ip="203.0.113.1", ua="UA-1")
    assert Conversion.objects.get().link_id == ocean.id
    kuaishou = make_link("kuaishou", os="ios", campaign_name="ks")
    _click(client, kuaishou, ad_platform.url, idfa="11111111-2222-3333-4444-555555555555")
    _click(client, ocean, ad_platform.url, idfa="11111111-2222-3333-4444-555555555555")
    _activate(events, device={"idfa": "11111111-2222-3333-4444-555555555555"})
    assert Conversion.objects.order_by("-id").first().link_id == ocean.id


def test_reinstall_within_90_days_is_not_attributed_again_and_organic_is_recorded(
    events, client, make_link, ad_platform
):
    link = make_link("oceanengine", os="ios")
    _click(client, link, ad_platform.url, idfa=IDFA)
    _activate(events, device={"idfa": IDFA})
    _click(client, link, ad_platform.url, idfa=IDFA)
    again = _activate(events, device={"idfa": IDFA, "caid": CAID})
    organic = _activate(events, device={"idfa": "99999999-2222-3333-4444-555555555555"})
    assert Conversion.objects.count() == 1
    assert MatchTrace.objects.get(event_id=again["event_id"]).outcome == "reinstall"
    assert MatchTrace.objects.get(event_id=organic["event_id"]).outcome == "organic"
    events.wait_for(lambda: Postback.objects.filter(status="succeeded").count() == 1)
    assert len(ad_platform.received("oceanengine")) == 1


def test_early_registration_and_payment_wait_for_the_activation_then_post_back(events, client, make_link, ad_platform):
    link = make_link("oceanengine", os="android", postback_register=True, postback_pay=True)
    _click(client, link, ad_platform.url, os="android", oaid=OAID)
    registered = event_payload("user.registered", device={"oaid": OAID}, os="android", user_id="777")
    paid = event_payload("user.paid", device={}, os="android", user_id="777", amount_fen=990)
    events.publish("user_center", "user.registered", registered)
    events.publish("user_center", "user.paid", paid)
    events.wait_for(lambda: PendingEvent.objects.count() == 2)
    _activate(events, device={"oaid": OAID}, os="android", user_id="777")
    events.wait_for(lambda: Postback.objects.filter(status="succeeded").count() == 3)
    codes = sorted(r["query"]["event_type"] for r in ad_platform.received("oceanengine"))
    assert codes == ["0", "1", "2"]
    pay = next(r for r in ad_platform.received("oceanengine") if r["query"]["event_type"] == "2")
    assert pay["query"]["props"] == '{"pay_amount":990}'
    assert set(PendingEvent.objects.values_list("status", flat=True)) == {"applied"}


def test_late_registration_and_payments_attach_by_user_and_pay_is_posted_once(events, client, make_link, ad_platform):
    link = make_link("kuaishou", os="android", postback_register=False, postback_pay=True)
    _click(client, link, ad_platform.url, os="android", imei=IMEI)
    _activate(events, device={"imei": IMEI}, os="android", user_id="555")
    for amount in (1999, 500):
        payload = event_payload("user.paid", device={}, os="android", user_id="555", amount_fen=amount)
        events.publish("user_center", "user.paid", payload)
    registered = event_payload("user.registered", device={"imei": IMEI}, os="android", user_id="555")
    events.publish("user_center", "user.registered", registered)
    events.wait_for(
        lambda: PendingEvent.objects.count() == 0 and Postback.objects.filter(status="succeeded").count() == 2
    )
    requests = ad_platform.received("kuaishou")
    assert sorted(r["query"]["event_type"] for r in requests) == ["1", "3"]
    pay = next(r for r in requests if r["query"]["event_type"] == "3")
    assert pay["query"]["purchase_amount"] == "19.99"
    assert not Postback.objects.filter(event_type="register").exists()  # the link does not post registrations


def test_duplicates_of_every_message_change_nothing(events, client, make_link, ad_platform):
    link = make_link("tencent", os="ios", postback_register=True, postback_pay=True)
    _click(client, link, ad_platform.url, idfa=IDFA)
    activation = event_payload("app.activated", device={"idfa": IDFA}, user_id="42")
    registered = event_payload("user.registered", device={"idfa": IDFA}, user_id="42")
    paid = event_payload("user.paid", device={"idfa": IDFA}, user_id="42", amount_fen=600)
    for payload in (registered, activation, registered, paid, activation, paid):
        events.publish("user_center", payload["type"], payload)
    events.wait_for(lambda: Postback.objects.filter(status="succeeded").count() == 3)
    events.publish("user_center", "app.activated", activation)
    follow_up = _activate(events, device={"idfa": "99999999-2222-3333-4444-555555555555"})
    assert ProcessedEvent.objects.filter(event_id=follow_up["event_id"]).exists()  # queue drained past the repeat
    assert Conversion.objects.count() == 1 and MatchTrace.objects.count() == 2
    assert len(ad_platform.received("tencent")) == 3
    actions = sorted(r["body"]["actions"][0]["action_type"] for r in ad_platform.received("tencent"))
    assert actions == ["ACTIVATE_APP", "PURCHASE", "REGISTER"]
    pay = next(r for r in ad_platform.received("tencent") if r["body"]["actions"][0]["action_type"] == "PURCHASE")
    assert pay["body"]["actions"][0]["action_param"] == {"value": 600}
    assert DeadLetter.objects.count() == 0


def test_platform_answering_500_twice_then_success_records_one_success_and_no_duplicate(
    events, client, make_link, ad_platform
):
    link = make_link("oceanengine", os="ios")
    ad_platform.script["oceanengine"] = [(500, b"busy"), (500, b'{"code": 500}')]
    _click(client, link, ad_platform.url, idfa=IDFA)
    _activate(events, device={"idfa": IDFA})
    events.wait_for(lambda: Postback.objects.filter(status="succeeded").exists())
    postback = Postback.objects.get()
    attempts = list(PostbackAttempt.objects.filter(postback=postback).values_list("number", "status_code", "succeeded"))
    assert attempts == [(1, 500, False), (2, 500, False), (3, 200, True)]
    assert postback.attempt_count == 3
    assert len(ad_platform.received("oceanengine")) == 3
    from attribution.services import postback_deliver

    assert postback_deliver(postback_id=postback.pk).outcome == "skipped"  # never again once succeeded
    assert len(ad_platform.received("oceanengine")) == 3


def test_test_device_is_traced_but_never_posted_back(events, client, make_link, ad_platform):
    from attribution import services
    from attribution.models import TestDevice

    services.test_device_save(device=TestDevice(label="QA iPhone", idfa=IDFA))
    link = make_link("oceanengine", os="ios")
    _click(client, link, ad_platform.url, idfa=IDFA)
    payload = _activate(events, device={"idfa": IDFA})
    trace = MatchTrace.objects.get(event_id=payload["event_id"])
    assert trace.is_test and trace.outcome == "attributed" and "test device" in trace.reason
    assert Conversion.objects.get().is_test
    assert Postback.objects.count() == 0 and ad_platform.received() == []


def test_broken_user_center_message_is_dead_lettered(events):
    bad = event_payload("user.paid", device={}, user_id="1")  # no amount_fen
    events.publish("user_center", "user.paid", bad)
    events.wait_for(lambda: DeadLetter.objects.filter(event_id=bad["event_id"]).exists())
    assert "amount_fen" in DeadLetter.objects.get().reason


def test_activation_from_an_os_other_than_ios_or_android_is_matched_across_the_apps_links(
    events, client, make_link, ad_platform
):
    link = make_link("kuaishou", os="android")
    _click(client, link, ad_platform.url, oaid=OAID)
    activation = _activate(events, device={"oaid": OAID}, os="HarmonyOS")
    trace = MatchTrace.objects.get(event_id=activation["event_id"])
    assert (trace.outcome, trace.os) == ("attributed", "")
    assert Conversion.objects.get().os == "android"
    assert not DeadLetter.objects.exists()


def test_a_candidate_in_a_trace_has_every_field_in_dataclass_order_and_its_click_time():
    from dataclasses import asdict, fields

    from attribution.selectors import Candidate

    cand = Candidate(1, "oceanengine", "idfa", "ABC", click_id="c1", click_at_ms=1764210902123, click={"id": "c1"})
    data = cand.as_dict()
    assert list(data) == [f.name for f in fields(Candidate)] + ["click_at"]
    assert {k: v for k, v in data.items() if k != "click_at"} == asdict(cand)
    assert data["click_at"] == "2025-11-27T10:35:02.123000+08:00"
