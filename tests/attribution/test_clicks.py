import hashlib
import json
import threading
import time
from urllib.parse import urlencode
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import requests

from attribution import services
from attribution.clicks import hour_bucket, index_key, stat_key
from core.redis import get_redis
from tests.attribution.conftest import click_params, md5

pytestmark = pytest.mark.django_db


def _get(client, link, params, **extra):
    return client.get(f"/t/{link.platform}/{link.token}?{urlencode(params)}", **extra)


def _clicks(link, kind, value) -> list[dict]:
    return [json.loads(m) for m in get_redis().zrange(index_key(link.id, kind, value), 0, -1)]


@pytest.mark.parametrize(
    ("platform", "os", "device", "expected_kinds"),
    [
        (
            "oceanengine",
            "ios",
            {"idfa": "6D92078A-8246-4BA4-AE5B-76104861E7DC", "caid": "caid-raw-1"},
            {"idfa", "caid", "ipua"},
        ),
        ("oceanengine", "android", {"imei": "867512034567891", "oaid": "0fe1b0ab-oaid"}, {"imei", "oaid", "ipua"}),
        (
            "tencent",
            "ios",
            {"idfa": "6D92078A-8246-4BA4-AE5B-76104861E7DC", "caid": "caid-raw-2"},
            {"idfa", "caid", "ipua"},
        ),
        (
            "tencent",
            "android",
            {"imei": "867512034567891", "android_id": "9774D56D682E549C"},
            {"imei", "android_id", "ipua"},
        ),
        ("kuaishou", "android", {"oaid": "0fe1b0ab-oaid", "imei": "867512034567891"}, {"oaid", "imei", "ipua"}),
        ("generic", "ios", {"idfa": "6D92078A-8246-4BA4-AE5B-76104861E7DC"}, {"idfa", "ipua"}),
    ],
)
def test_every_platform_click_is_answered_in_its_format_and_stored_under_its_keys(
    client, make_link, django_assert_num_queries, platform, os, device, expected_kinds
):
    link = make_link(platform, os=os)
    params = click_params(platform, "http://127.0.0.1:9", os=os, **device)
    with django_assert_num_queries(0):
        response = _get(client, link, params)
    assert response.status_code == 200
    assert response.json() == ({"ret": 0, "msg": "ok"} if platform == "tencent" else {"code": 0})
    stored = {key.decode().split(":")[3] for key in get_redis().scan_iter(match=f"att:k:{link.id}:*")}
    assert stored == expected_kinds
    if "idfa" in device:
        (click,) = _clicks(link, "idfa", md5(device["idfa"].upper()))
        assert click["cb"] == params["callback"] or click["cb"].startswith("http")
        assert click["os"] == os


def test_placeholders_unreplaced_macros_zero_ids_and_empty_md5_store_no_device_key(client, make_link):
    link = make_link("oceanengine", os="ios")
    params = {
        "idfa": "00000000-0000-0000-0000-000000000000",
        "idfa_md5": "d41d8cd98f00b204e9800998ecf8427e",
        "imei_md5": "__IMEI__",
        "oaid": "NULL",
        "oaid_md5": md5(""),
        "android_id_md5": "__ANDROIDID__",
        "caid": "__CAID_MD5__",
        "ip": "__IP__",
        "ua": "__UA__",
        "callback": "abc",
    }
    assert _get(client, link, params).status_code == 200
    assert list(get_redis().scan_iter(match=f"att:k:{link.id}:*")) == []
    counters = get_redis().hgetall(stat_key(link.id, hour_bucket(time.time())))
    assert counters[b"clicks"] == b"1" and counters[b"unkeyed"] == b"1"


def test_keys_expire_with_the_links_windows(client, make_link):
    link = make_link("generic", device_window_days=3, ipua_window_hours=6)
    _get(client, link, click_params("generic", "http://x", idfa="6D92078A-8246-4BA4-AE5B-76104861E7DC"))
    r = get_redis()
    idfa_ttl = r.ttl(index_key(link.id, "idfa", md5("6D92078A-8246-4BA4-AE5B-76104861E7DC")))
    (ipua_key,) = r.scan_iter(match=f"att:k:{link.id}:ipua:*")
    assert 3 * 86400 - 5 <= idfa_ttl <= 3 * 86400
    assert 6 * 3600 - 5 <= r.ttl(ipua_key) <= 6 * 3600


def test_ipua_off_stores_no_ipua_key(client, make_link):
    link = make_link("generic", ipua_window_hours=0)
    _get(client, link, click_params("generic", "http://x", idfa="6D92078A-8246-4BA4-AE5B-76104861E7DC"))
    assert list(get_redis().scan_iter(match=f"att:k:{link.id}:ipua:*")) == []


def test_repeated_clicks_of_one_device_are_counted_on_its_key(client, make_link):
    link = make_link("kuaishou", os="android")
    for _ in range(3):
        assert _get(client, link, click_params("kuaishou", "", os="android", oaid="oaid-1")).status_code == 200
    _get(client, link, click_params("kuaishou", "", os="android", oaid="oaid-2"))
    assert len(_clicks(link, "oaid", md5("oaid-1"))) == 3
    counters = get_redis().hgetall(stat_key(link.id, hour_bucket(time.time())))
    assert counters[b"clicks"] == b"4"
    assert counters[b"repeated"] == b"2"
    assert counters[b"os:android"] == b"4"


def test_hourly_counters_split_by_os(client, make_link):
    link = make_link("oceanengine", os="ios")
    _get(client, link, click_params("oceanengine", "", os="ios", idfa="A-1"))
    _get(client, link, click_params("oceanengine", "", os="android", imei="867512034567891"))
    counters = get_redis().hgetall(stat_key(link.id, hour_bucket(time.time())))
    assert counters[b"os:ios"] == b"1" and counters[b"os:android"] == b"1"


def test_unknown_token_wrong_platform_and_disabled_link_are_rejected_counted_and_not_stored(client, make_link):
    link = make_link("tencent", os="android")
    params = click_params("tencent", "http://x", os="android", imei="867512034567891")
    unknown = client.get(f"/t/tencent/nope-token?{urlencode(params)}")
    wrong_platform = client.get(f"/t/kuaishou/{link.token}?{urlencode(params)}")
    bad_platform = client.get(f"/t/baidu/{link.token}")
    too_many = client.get(f"/t/tencent/{link.token}?" + "&".join(f"p{i}=1" for i in range(100)))
    assert too_many.status_code == 400 and too_many.json()["error"]["code"] == "bad_query"
    assert get_redis().hget(stat_key(link.id, hour_bucket(time.time())), "rejected:bad_query") == b"1"
    assert unknown.status_code == wrong_platform.status_code == bad_platform.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_link"
    services.tracking_link_update(link=link, enabled=False)
    services.tracking_link_sync(link=link)
    disabled = _get(client, link, params)
    assert disabled.status_code == 403 and disabled.json()["error"]["code"] == "link_disabled"
    assert list(get_redis().scan_iter(match=f"att:k:{link.id}:*")) == []
    rejects = get_redis().hgetall(f"att:rej:{hour_bucket(time.time())}")
    assert rejects[b"-:unknown_link"] == b"3"  # the unknown platform is counted too
    assert rejects[f"{link.id}:link_disabled".encode()] == b"1"


def test_rate_limit_per_link_gives_429_with_reason_and_is_counted(client, make_link):
    link = make_link("generic", rate_limit_per_second=3)
    statuses = [_get(client, link, click_params("generic", "", idfa=f"IDFA-{i}")).status_code for i in range(8)]
    # a second boundary may fall inside the loop: at least 2 of 8 are over a 3/s limit
    assert statuses.count(429) >= 2 and statuses.count(200) >= 3
    rejected = _get(client, link, click_params("generic", "", idfa="X")) if statuses[-1] == 429 else None
    if rejected is not None and rejected.status_code == 429:
        assert rejected.json()["error"]["code"] == "rate_limited_link"
    total = sum(
        int(v)
        for key in get_redis().scan_iter(match=f"att:stat:{link.id}:*")
        for f, v in get_redis().hgetall(key).items()
        if f == b"rejected:rate_limited_link"
    )
    assert total == statuses.count(429) + (1 if rejected is not None and rejected.status_code == 429 else 0)


def test_rate_limit_per_source_ip_spans_links_and_spares_other_addresses(client, make_link, settings):
    settings.ATTRIBUTION_CLICK_RATE_PER_IP = 2
    link = make_link("generic")
    other = make_link("generic", campaign_name="second")
    responses = [
        _get(client, lk, click_params("generic", "", idfa=f"I-{i}"), REMOTE_ADDR="192.0.2.55")
        for i, lk in enumerate([link, other] * 5)
    ]
    rejected = [r for r in responses if r.status_code == 429]
    # 10 clicks over at most a few one-second windows of 2: most are over the limit
    assert len(rejected) >= 4
    assert {r.json()["error"]["code"] for r in rejected} == {"rate_limited_ip"}
    fresh = _get(client, link, click_params("generic", "", idfa="Z"), REMOTE_ADDR="192.0.2.56")
    assert fresh.status_code == 200  # another address has its own budget


def test_redis_down_gives_503_json_not_500(client, make_link, settings):
    from core.redis import get_redis as cached

    link = make_link("oceanengine")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    cached.cache_clear()
    try:
        response = _get(client, link, click_params("oceanengine", "", idfa="A"))
    finally:
        cached.cache_clear()  # the next get_redis() sees the restored REDIS_URL
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response["Retry-After"] == "5"


def test_link_settings_are_replicated_and_resync_repairs_lost_replicas(make_link):
    link = make_link("tencent", os="ios", device_window_days=14)
    r = get_redis()
    assert r.hget(f"att:link:{link.token}", "dw") == str(14 * 86400).encode()
    r.delete(f"att:link:{link.token}")
    r.hset("att:link:stale-token", mapping={"id": "999"})
    assert services.tracking_links_resync() == {"synced": 1, "removed": 1}
    assert r.hget(f"att:link:{link.token}", "platform") == b"tencent"
    assert not r.exists("att:link:stale-token")


def test_lean_wsgi_door_serves_clicks_and_django_serves_the_rest(make_link):
    from config.wsgi import application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    link = make_link("tencent", os="android")
    server = make_server("127.0.0.1", 0, application, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        ok = requests.get(
            f"{base}/t/tencent/{link.token}", params=click_params("tencent", base, os="android", imei="8675")
        )
        missing = requests.get(f"{base}/t/tencent/unknown")
        post = requests.post(f"{base}/t/tencent/{link.token}")
        health = requests.get(f"{base}/healthz")
    finally:
        server.shutdown()
        server.server_close()
    assert ok.status_code == 200 and ok.json() == {"ret": 0, "msg": "ok"}
    assert missing.status_code == 404 and missing.headers["Content-Type"] == "application/json"
    assert post.status_code == 405
    assert health.status_code in (200, 503)
    assert get_redis().zcard(index_key(link.id, "imei", hashlib.md5(b"8675").hexdigest())) == 1


def test_stored_and_rejected_clicks_are_appended_to_the_click_log_streams(client, make_link):
    link = make_link("oceanengine", os="ios")
    params = click_params("oceanengine", "http://127.0.0.1:9", os="ios", idfa="6D92078A-8246-4BA4-AE5B-76104861E7DC")
    assert _get(client, link, params).status_code == 200
    assert client.get(f"/t/oceanengine/no-such-token?{urlencode(params)}").status_code == 404
    redis = get_redis()
    ((_, fields),) = redis.xrange("att:log:clicks")
    assert fields[b"l"] == str(link.id).encode() and fields[b"p"] == b"oceanengine" and fields[b"o"] == b"ios"
    assert json.loads(fields[b"c"])["campaign"] == params["campaign"]
    kinds = {pair.split(":")[0] for pair in fields[b"k"].decode().split(" ")}
    assert kinds == {"idfa", "ipua"}
    ((_, rejected),) = redis.xrange("att:log:rejects")
    assert rejected[b"x"] == b"unknown_link" and rejected[b"l"] == b""
