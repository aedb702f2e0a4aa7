import hashlib
import json
from urllib.parse import quote

import pytest

from attribution import devices


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        None,
        "__IDFA__",
        "__OAID__",
        "__CALLBACK_PARAM__",
        "{idfa}",
        "00000000-0000-0000-0000-000000000000",
        "0000000000000000",
        "NULL",
        "null",
        "unknown",
        "undefined",
        "0",
        "%5F%5FIMEI%5F%5F",
    ],
)
def test_placeholders_and_unreplaced_macros_are_missing(value):
    assert devices.clean(value) is None
    assert devices.idfa_key(value) is None
    assert devices.clean_digest(value) is None


@pytest.mark.parametrize(
    "digest",
    [
        "d41d8cd98f00b204e9800998ecf8427e",  # md5("")
        "D41D8CD98F00B204E9800998ECF8427E",
        md5("00000000-0000-0000-0000-000000000000"),
        md5("NULL"),
        md5("0"),
        "not-a-digest",
        "abc123",
    ],
)
def test_placeholder_digests_and_malformed_digests_are_missing(digest):
    assert devices.clean_digest(digest) is None


def test_canonical_keys_follow_the_contract():
    idfa = "6d92078a-8246-4ba4-ae5b-76104861e7dc"
    keys = devices.activation_keys(
        {"idfa": idfa, "imei": " 86751203456789A ", "oaid": "f6b1c0a8-94b4", "android_id": "9774D56D682E549C"},
        ip="203.0.113.7",
        ua="UA/1.0",
    )
    assert keys["idfa"] == [md5(idfa.upper())]
    assert keys["imei"] == [md5("86751203456789a")]
    assert keys["oaid"] == [md5("f6b1c0a8-94b4")]
    assert keys["android_id"] == [md5("9774d56d682e549c")]
    assert keys["ipua"] == [md5("203.0.113.7|UA/1.0")]


def test_caid_lists_raw_md5_and_url_encoded_meet_the_same_key():
    caid = "a5e1f4d7c2b84e0f9e7d6c5b4a3f2e1d"
    raw = devices.caid_keys(caid)
    from_tencent = devices.caid_keys(quote(json.dumps([{"caid": caid, "version": "20230330"}])))
    from_ocean = devices.caid_keys(json.dumps([{"caid_md5": md5(caid), "version": "20230330"}]), hashed=True)
    assert raw == from_tencent == from_ocean == [md5(caid)]
    assert devices.caid_keys("[not json") == []


def test_no_ip_or_ua_means_no_ipua_key():
    assert devices.ipua_key("203.0.113.7", "__UA__") is None
    assert devices.ipua_key("", "UA") is None
