import itertools
import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from attribution import platforms, services
from attribution.models import Conversion, Postback, PostbackAttempt
from tests.attribution.conftest import md5


def test_backoff_doubles_from_one_minute_caps_at_four_hours_and_covers_more_than_a_day():
    schedule = services.BACKOFF_SCHEDULE
    assert schedule[:4] == (60, 120, 240, 480)
    assert max(schedule) == 4 * 3600
    assert all(b >= a for a, b in itertools.pairwise(schedule))
    assert sum(schedule) >= 24 * 3600
    assert sum(schedule[:-1]) < 24 * 3600  # no longer than needed
    assert services.postback_backoff(attempt=1) == 60
    assert services.postback_backoff(attempt=len(schedule)) == 4 * 3600
    assert services.postback_backoff(attempt=services.MAX_ATTEMPTS) is None
    with pytest.raises(ValueError):
        services.postback_backoff(attempt=0)


def _request(platform, event_type, **kw):
    defaults = {
        "platform": platform,
        "base_url": "https://ad.example/track/activate/",
        "callback": "CB123",
        "event_type": event_type,
        "event_time_ms": 1764210902123,
        "conversion_id": 77,
        "amount_fen": 990,
        "device_keys": {"idfa": ["abc"], "oaid": ["x"]},
        "oaid": "raw-oaid",
    }
    return platforms.postback_request(**{**defaults, **kw})


def test_postback_requests_follow_each_platforms_contract():
    ocean = _request("oceanengine", "pay")
    assert ocean.method == "GET"
    assert ocean.url == (
        "https://ad.example/track/activate/?callback=CB123&event_type=2&conv_time=1764210902"
        "&props=%7B%22pay_amount%22%3A990%7D"
    )
    kuaishou = _request("kuaishou", "pay")
    assert "event_type=3" in kuaishou.url and "event_time=1764210902123" in kuaishou.url
    assert "purchase_amount=9.9" in kuaishou.url
    tencent = _request("tencent", "register", callback="https%3A%2F%2Ft.gdt.qq.com%2Fconv%3Fcb%3D1")
    assert (tencent.method, tencent.url) == ("POST", "https://t.gdt.qq.com/conv?cb=1")
    assert json.loads(tencent.body) == {
        "actions": [
            {
                "outer_action_id": "77",
                "action_time": 1764210902,
                "user_id": {"hash_idfa": "abc"},
                "action_type": "REGISTER",
            }
        ]
    }
    oaid_only = _request("tencent", "activate", callback="https://t.gdt.qq.com/c", device_keys={"oaid": ["m"]})
    assert json.loads(oaid_only.body)["actions"][0]["user_id"] == {"oaid": "raw-oaid"}
    generic = _request("generic", "activate", callback="https://partner.example/cb?click=9")
    assert generic.url == "https://partner.example/cb?click=9&event=activate&ts=1764210902123"
    with pytest.raises(platforms.PostbackNotPossible):
        _request("generic", "activate", callback="not-a-url")
    with pytest.raises(platforms.PostbackNotPossible):
        _request("oceanengine", "activate", callback="")


@pytest.mark.parametrize(
    ("platform", "status", "body", "ok"),
    [
        ("oceanengine", 200, b'{"code": 0}', True),
        ("oceanengine", 200, b'{"code": 40001, "msg": "bad callback"}', False),
        ("oceanengine", 200, b"<html>", False),
        ("kuaishou", 200, b'{"result": 1}', True),
        ("kuaishou", 200, b'{"result": 0}', False),
        ("tencent", 200, b'{"code": 0}', True),
        ("tencent", 502, b'{"code": 0}', False),
        ("generic", 204, b"", True),
        ("generic", 302, b"", False),
    ],
)
def test_success_is_what_each_platform_says_it_is(platform, status, body, ok):
    assert platforms.postback_succeeded(platform, status, body) is ok


def _conversion(link, *, callback: str, event_id: str = "act-1", click_id: str = "c1") -> Conversion:
    now = timezone.now()
    return Conversion.objects.create(
        link=link,
        platform=link.platform,
        app_id=link.app_id,
        os=link.os,
        activation_event_id=event_id,
        click_id=click_id,
        click_at=now - timedelta(minutes=5),
        activated_at=now,
        seconds_to_install=300,
        match_method="idfa",
        match_key="idfa:" + md5("x"),
        callback=callback,
        device_keys={"idfa": [md5("x")]},
    )


@pytest.mark.django_db
def test_platform_that_never_succeeds_is_retried_through_the_schedule_then_given_up_and_retry_action_resends(
    make_link, ad_platform, django_capture_on_commit_callbacks
):
    link = make_link("generic")
    conversion = _conversion(link, callback=ad_platform.url + "/generic/cb?c=1")
    ad_platform.script["generic"] = [(503, b"down")] * services.MAX_ATTEMPTS
    with django_capture_on_commit_callbacks(execute=True):
        postback = services.postback_plan(
            conversion=conversion,
            event_type="activate",
            source_event_id="e1",
            event_time=timezone.now(),
            amount_fen=None,
        )
    postback.refresh_from_db()
    assert postback.status == "failed" and postback.attempt_count == services.MAX_ATTEMPTS
    assert PostbackAttempt.objects.filter(postback=postback, succeeded=False).count() == services.MAX_ATTEMPTS
    attempt = PostbackAttempt.objects.filter(postback=postback).first()
    assert attempt.status_code == 503 and attempt.response_body == "down" and attempt.latency_ms > 0
    with django_capture_on_commit_callbacks(execute=True):
        assert services.postback_retry(postback=postback) is True
    postback.refresh_from_db()
    assert postback.status == "succeeded" and postback.attempt_count == services.MAX_ATTEMPTS + 1
    assert services.postback_retry(postback=postback) is False


@pytest.mark.django_db
def test_missing_callback_fails_cleanly_without_a_request(make_link, ad_platform, django_capture_on_commit_callbacks):
    link = make_link("tencent", os="ios")
    conversion = _conversion(link, callback="")
    with django_capture_on_commit_callbacks(execute=True):
        postback = services.postback_plan(
            conversion=conversion,
            event_type="activate",
            source_event_id="e",
            event_time=timezone.now(),
            amount_fen=None,
        )
    postback.refresh_from_db()
    assert postback.status == "failed" and "no callback" in postback.last_error
    assert ad_platform.received() == []


@pytest.mark.django_db
def test_a_conversion_gets_one_postback_per_event_type(make_link, ad_platform):
    link = make_link("oceanengine", postback_pay=True)
    conversion = _conversion(link, callback="cb")
    first = services.postback_plan(
        conversion=conversion, event_type="pay", source_event_id="p1", event_time=timezone.now(), amount_fen=100
    )
    second = services.postback_plan(
        conversion=conversion, event_type="pay", source_event_id="p2", event_time=timezone.now(), amount_fen=200
    )
    assert first is not None and second is None
    assert Postback.objects.filter(conversion=conversion).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_postback_send_it_once(make_link, ad_platform):
    link = make_link("oceanengine")
    conversion = _conversion(link, callback="cb")
    postback = Postback.objects.create(
        conversion=conversion, event_type="activate", source_event_id="e", event_time=timezone.now()
    )
    barrier = threading.Barrier(6)
    outcomes = []

    def deliver():
        try:
            barrier.wait()
            outcomes.append(services.postback_deliver(postback_id=postback.pk).outcome)
        except Exception as exc:  # reported by the assertion below
            outcomes.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["skipped"] * 5 + ["succeeded"], outcomes
    assert len(ad_platform.received("oceanengine")) == 1


def _activate_at_once(idfa: str, moments: list) -> list[str]:
    """Record one activation of the device per moment, all released together from
    their own threads (each with its own connection); returns their outcomes, or
    "conflict" where the database refused one (the consumer would retry it)."""
    from django.db import IntegrityError

    from tests.attribution.conftest import event_payload

    barrier = threading.Barrier(len(moments))
    results = []

    def activate(occurred_at):
        payload = event_payload("app.activated", device={"idfa": idfa})
        try:
            barrier.wait()
            outcome = services.activation_record(
                event_id=payload["event_id"],
                app_id=payload["app_id"],
                os="ios",
                user_id=None,
                device=payload["device"],
                ip=None,
                ua=None,
                occurred_at=occurred_at,
            )
            results.append(outcome.outcome)
        except IntegrityError:
            results.append("conflict")
        finally:
            connection.close()

    threads = [threading.Thread(target=activate, args=(moment,)) for moment in moments]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_activations_of_one_device_make_one_conversion(make_link, client):
    """Two activation events (different ids) of one device processed at once: the
    unique click and the reinstall rule leave exactly one conversion."""
    from urllib.parse import urlencode

    from tests.attribution.conftest import click_params

    link = make_link("oceanengine", os="ios")
    client.get(f"/t/oceanengine/{link.token}?{urlencode(click_params('oceanengine', '', idfa='AAAA-1'))}")
    results = _activate_at_once("AAAA-1", [timezone.now()] * 4)
    assert Conversion.objects.count() == 1
    assert results.count("attributed") == 1
    assert set(results) <= {"attributed", "conflict", "reinstall"}


@pytest.mark.django_db(transaction=True)
def test_concurrent_activations_of_one_device_that_would_pick_different_clicks_make_one_conversion(make_link, client):
    """Two activations of one device, each with a different last click before it
    (link A's before the first, link B's before the second), processed at once:
    the device lock matches them one after the other, so the second is a reinstall."""
    import time
    from urllib.parse import urlencode

    from tests.attribution.conftest import click_params

    first_link = make_link("oceanengine", os="ios")
    second_link = make_link("oceanengine", os="ios")
    client.get(f"/t/oceanengine/{first_link.token}?{urlencode(click_params('oceanengine', '', idfa='BBBB-2'))}")
    time.sleep(0.05)
    between = timezone.now()
    time.sleep(0.05)
    client.get(f"/t/oceanengine/{second_link.token}?{urlencode(click_params('oceanengine', '', idfa='BBBB-2'))}")
    time.sleep(0.05)
    results = _activate_at_once("BBBB-2", [between, timezone.now()])
    assert Conversion.objects.count() == 1, results
    assert sorted(results) == ["attributed", "reinstall"]
