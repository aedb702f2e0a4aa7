"""Bounded work per click: anything an ad platform (or anyone) sends to `/t/...` is
answered 200 or a 4xx JSON reason, never a 5xx, and one click writes a bounded number
of Redis keys. Requests go through the production door (config.wsgi.application)."""

import io
import json
import time
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from attribution import clicks, devices
from attribution.clicks import hour_bucket, stat_key
from core.redis import get_redis
from tests.attribution.conftest import click_params, md5

pytestmark = pytest.mark.django_db


def _call(link, query: str | bytes, *, platform: str | None = None, headers: dict | None = None):
    """One GET through the WSGI entry point; `query` bytes travel raw (as latin-1, like WSGI)."""
    from config.wsgi import application

    raw = query if isinstance(query, str) else query.decode("latin-1")
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": f"/t/{platform or link.platform}/{link.token}",
        "QUERY_STRING": raw,
        "REMOTE_ADDR": "198.51.100.9",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.url_scheme": "http",
        **(headers or {}),
    }
    answer = {}

    def start_response(status, response_headers):
        answer["status"] = int(status.split()[0])
        answer["headers"] = dict(response_headers)

    body = b"".join(application(environ, start_response))
    return answer["status"], json.loads(body)


def _bad_query_count(link) -> int:
    return int(get_redis().hget(stat_key(link.id, hour_bucket(time.time())), "rejected:bad_query") or 0)


@pytest.fixture
def ocean(make_link, settings):
    settings.ATTRIBUTION_CLICK_RATE_PER_IP = 10**6
    return make_link("oceanengine", os="ios", rate_limit_per_second=10**6)


DEEP_CAID = "[" * 100_000 + "]" * 100_000
CAID_LIST = [{"caid_md5": md5(f"caid-{i}"), "version": "2023033{i}"} for i in range(devices.MAX_CAIDS + 1)]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("x=" + "a" * (clicks.MAX_QUERY_CHARS + 1), "longer than"),
        ("&".join(f"p{i}=1" for i in range(clicks.MAX_QUERY_FIELDS + 1)), "query parameters"),
        ("idfa=%ZZ%&ip=::1", "percent-encoding"),
        ("ua=%E4%B8", "not UTF-8"),  # a truncated UTF-8 sequence once percent-decoded
        (b"ua=\xff\xfe", "not UTF-8"),  # raw bytes that are not UTF-8
        ("caid=" + "[" * 1000 + "]" * 1000, "caid"),  # deep nesting, past the value's length bound
        ("caid=" + quote("[" * 500 + "]" * 500), "caid"),  # nesting within the length bound
        ("caid=" + quote(json.dumps(CAID_LIST)), "caid"),  # one CAID too many
        ("caid=" + quote('[{"caid": [1, [2]]}]'), "caid"),  # nested values
        ("ua=" + "A" * 5000, "ua"),
        ("ua=" + "A" * 20000, "longer than"),
        ("idfa_md5=" + "f" * 5000, "idfa_md5"),
        ("callback=" + "c" * 3000, "callback"),
        ("ts=-1", "ts"),
        ("ts=" + "9" * 5000, "ts"),  # past int()'s digit limit
        ("ts=%C2%B2", "ts"),  # a digit to str.isdigit(), not to int()
        ("ts=99999999999999", "ts"),  # the year 5138
        ("os=99999999999999999999", "os"),
        ("os=%00", "os"),
    ],
)
def test_pathological_click_queries_are_400_bad_query_counted_and_store_no_click(ocean, query, reason):
    status, body = _call(ocean, query)
    assert status == 400, body
    assert body["error"]["code"] == "bad_query" and reason in body["error"]["message"]
    assert _bad_query_count(ocean) == 1
    assert list(get_redis().scan_iter(match=f"att:k:{ocean.id}:*")) == []
    assert get_redis().hget(stat_key(ocean.id, hour_bucket(time.time())), "clicks") is None
    ((_, rejected),) = get_redis().xrange("att:log:rejects")  # logged with a record free of the bad values
    assert rejected[b"x"] == b"bad_query" and json.loads(rejected[b"c"])["ua"] == ""


def test_deeply_nested_caid_json_is_malformed_not_a_recursion_error():
    assert devices.caid_keys(DEEP_CAID) == []  # an event's device (consumer side): no key
    with pytest.raises(devices.MalformedDeviceValue):
        devices.caid_keys(DEEP_CAID, strict=True)


def test_odd_but_legal_click_values_are_still_accepted(ocean):
    params = click_params("oceanengine", "", os="ios", idfa="6D92078A-8246-4BA4-AE5B-76104861E7DC")
    for extra in (
        {"ts": "__TS__", "os": "__OS__"},  # unreplaced macros are missing values
        {"ts": "0", "os": "3"},  # placeholder time, "other" OS
        {"ua": "Mozilla/5.0 (iPhone) 微信/8.0.44 " + "x" * 1000, "callback": "https://cb.example/" + "p" * 1500},
        {"caid": json.dumps(CAID_LIST[: devices.MAX_CAIDS])},
    ):
        status, body = _call(ocean, urlencode({**params, **extra}))
        assert status == 200, (extra, body)
    assert _bad_query_count(ocean) == 0


def test_non_ascii_and_malformed_headers_do_not_matter_to_the_click(ocean):
    headers = {"HTTP_USER_AGENT": "\xe4\xb8\xad\xff", "HTTP_X_SIGNATURE": "\x00\xff" * 100, "HTTP_COOKIE": "=;=;"}
    status, body = _call(ocean, urlencode(click_params("oceanengine", "", idfa="A-1")), headers=headers)
    assert status == 200 and body == {"code": 0}


def test_unknown_platform_or_oversized_token_is_a_counted_404(ocean):
    status, body = _call(ocean, "idfa=1", platform="x" * 300)
    assert status == 404 and body["error"]["code"] == "unknown_link"
    assert get_redis().hget(f"att:rej:{hour_bucket(time.time())}", "-:unknown_link") == b"1"


def test_one_maximal_click_writes_a_bounded_number_of_keys(ocean):
    r = get_redis()
    params = {
        **click_params("oceanengine", "", os="ios", idfa="A-1", imei="8675", oaid="O-1", android_id="AID"),
        "idfa_md5": md5("A-2"),
        "oaid_md5": md5("O-2"),
        "caid": json.dumps(CAID_LIST[: devices.MAX_CAIDS]),
    }
    before = r.dbsize()
    status, _ = _call(ocean, urlencode(params))
    assert status == 200
    written = {key.decode() for key in r.scan_iter(match=f"att:k:{ocean.id}:*")}
    assert len(written) == 11  # idfa 2, caid 4, imei 1, oaid 2, android_id 1, ipua 1
    # + two rate-limit windows, the hourly counters (per link, per ad: ad reports), the
    # (capped) click log stream, the hour's unique-device HyperLogLog (analytics) and
    # the 5-minute bucket's clicks per source range (alerts)
    assert r.dbsize() - before == len(written) + 7
    assert len(written) <= clicks.MAX_KEYS_PER_CLICK


_NAMES = st.sampled_from(
    ["idfa", "idfa_md5", "caid", "imei_md5", "oaid", "oaid_md5", "android_id_md5", "ip", "ua", "ts", "os", "callback"]
) | st.text(max_size=8)
_VALUES = (
    st.text(max_size=40)
    | st.sampled_from(["[", "[[[[[[", "%", "%E4", "%ZZ", "0", "-1", "1e999", "__IDFA__", "null", "\x00"])
    | st.integers(min_value=-(10**30), max_value=10**30).map(str)
    | st.recursive(st.just([]), lambda inner: st.lists(inner, max_size=2), max_leaves=50).map(json.dumps)
    | st.integers(min_value=0, max_value=3000).map(lambda n: "v" * n)
)


@hypothesis_settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    pairs=st.lists(st.tuples(_NAMES, _VALUES), max_size=12),
    encode=st.booleans(),
    junk=st.binary(max_size=40),
)
def test_fuzzed_click_queries_never_get_a_5xx_and_write_bounded_state(ocean, pairs, encode, junk):
    query = urlencode(pairs) if encode else "&".join(f"{k}={v}" for k, v in pairs)
    raw = query.encode("utf-8", "surrogatepass") + (b"&" + junk if junk else b"")
    r = get_redis()
    before, rejects = r.dbsize(), _bad_query_count(ocean)
    status, body = _call(ocean, raw)
    assert status in (200, 400), body
    # device keys + two rate-limit windows, the hourly counters, rejects and both log streams
    assert r.dbsize() - before <= clicks.MAX_KEYS_PER_CLICK + 6
    if status == 400:
        assert body["error"]["code"] == "bad_query"
        assert _bad_query_count(ocean) == rejects + 1
