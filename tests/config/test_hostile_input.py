"""Nothing a client sends produces a 5xx (contracts §6): pathological bodies, headers,
numbers and paths answer a 4xx in the JSON error shape on the JSON paths (the APIs and
the sandbox payment service), with DEBUG on or off."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from core.auth import user_token_mint
from payments.signing import body_sign

pytestmark = pytest.mark.django_db

SERVICE = {"HTTP_AUTHORIZATION": "Service dev-service-token"}
DEEP = ("[" * 100_000 + "]" * 100_000).encode()


def _error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) >= {"code", "message"}
    return body["error"]


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def client(request, settings):
    settings.DEBUG = request.param
    settings.SERVICE_TOKEN = "dev-service-token"
    return Client(raise_request_exception=False)


def _bearer() -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {user_token_mint(user_id='10086')}"}


@pytest.mark.parametrize(
    "path, headers",
    [
        ("/api/v1/service/coupons/redeem", "service"),
        ("/api/v1/me/coupons/redeem-code", "user"),
        ("/sandbox/pay/v1/paycodes", "signed"),
    ],
)
@pytest.mark.parametrize(
    "body, code",
    [
        (DEEP, "invalid_json"),
        (b'{"a":' * 50 + b"1" + b"}" * 50, "invalid_json"),
        (b'{"code": "x", "order_id": "o", "user_id": "u", "order_amount_fen": 1' + b"0" * 40 + b"}", "invalid_json"),
        (b'{"code": "x", "order_id": "o", "user_id": "u", "order_amount_fen": 1e999}', "invalid_json"),
        (b'{"code": NaN}', "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
    ],
    ids=["deep-arrays", "deep-objects", "huge-int", "huge-float", "nan", "invalid-utf8"],
)
def test_pathological_json_bodies_are_a_json_400(client, path, headers, body, code):
    extra = {"service": SERVICE, "user": _bearer(), "signed": {"HTTP_X_SIGNATURE": body_sign(body)}}[headers]
    response = client.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1", **extra)
    # The sandbox plays the payment team, whose contract calls every refused body `invalid`.
    assert _error(response, 400)["code"] == ("invalid" if path.startswith("/sandbox/") else code)


@pytest.mark.parametrize(
    "path", ["/api/v1/service/coupons/redeem", "/sandbox/pay/v1/paycodes", "/api/v1/components/1/claim"]
)
def test_an_oversized_body_is_a_json_413(client, settings, path):
    settings.API_MAX_BODY_BYTES = 64 * 1024
    body = json.dumps({"code": "x" * (settings.API_MAX_BODY_BYTES + 10)}).encode()
    response = client.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1", **_bearer())
    assert _error(response, 413)["code"] == "payload_too_large"


@pytest.mark.parametrize(
    "header, value, path, status",
    [
        ("HTTP_X_SIGNATURE", "é" * 64, "/sandbox/pay/v1/paycodes", 400),
        ("HTTP_X_SIGNATURE", "中文签名", "/sandbox/pay/v1/paycodes", 400),
        ("HTTP_IDEMPOTENCY_KEY", "中文", "/api/v1/components/1/claim", 400),
        ("HTTP_IDEMPOTENCY_KEY", "a\x01b", "/api/v1/components/1/claim", 400),
        ("HTTP_AUTHORIZATION", "Bearer 中文", "/api/v1/me/coupons", 401),
        ("HTTP_AUTHORIZATION", "Service 中文", "/api/v1/service/coupons/redeem", 401),
    ],
)
def test_non_ascii_or_control_characters_in_headers_are_a_json_4xx(client, header, value, path, status):
    extra = {} if header == "HTTP_AUTHORIZATION" else _bearer()
    response = client.post(path, b"{}", content_type="application/json", **{**extra, header: value})
    assert _error(response, status)["code"] in ("bad_header", "token_invalid")


def test_the_sandbox_refuses_a_latin1_signature_that_reaches_it(settings):
    """Defence in depth: the signature check itself never raises on non-ASCII."""
    from payments.signing import body_signature_valid

    assert body_signature_valid(b"{}", "é" * 64) is False


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/components/99999999999999999999999/listings",
        "/api/v1/components/99999999999999999999999/cities",
        "/api/v1/components/9223372036854775808/claim",
    ],
)
def test_ids_beyond_64_bit_are_a_json_404(client, path):
    method = client.post if path.endswith("claim") else client.get
    response = method(path, HTTP_IDEMPOTENCY_KEY="k", **_bearer())
    assert _error(response, 404)["code"] == "component_not_found"


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-1",
        "page=abc",
        "page=1&page=2",
        "page_size=0",
        "page_size=abc",
        "page_size=1&page_size=2",
        "page=" + "9" * 5000,
        "page_size=" + "9" * 30,
    ],
)
def test_bad_page_and_page_size_are_a_json_400(client, query):
    response = client.get(f"/api/v1/me/coupons?{query}", **_bearer())
    assert _error(response, 400)["code"] == "bad_query"


def test_a_page_beyond_the_last_is_a_json_404(client):
    response = client.get("/api/v1/me/coupons?page=999", **_bearer())
    assert _error(response, 404)["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/", "/api/v1/me/coupons/x/y", "/sandbox/pay/v1/nope"])
def test_unknown_json_paths_are_a_json_404_even_with_debug_on(client, path):
    assert _error(client.get(path), 404)["code"] == "not_found"


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("delete", "/api/v1/me/coupons", {"GET"}),
        ("put", "/api/v1/components/1/claim", {"POST"}),
        ("get", "/sandbox/pay/v1/paycodes", {"POST"}),
        ("post", "/api/schema/", {"GET"}),
    ],
)
def test_wrong_methods_are_a_json_405_with_allow_even_with_debug_on(client, method, path, allowed):
    response = getattr(client, method)(path, **_bearer())
    assert _error(response, 405)["code"] == "method_not_allowed"
    assert allowed <= {m.strip() for m in response["Allow"].split(",")}


def test_the_admin_answers_out_of_range_ids_without_a_5xx(admin_client):
    for path in (
        "/admin/coupons/couponpack/99999999999999999999999/change/",
        "/admin/coupons/couponpack/?id__exact=99999999999999999999999",
        "/admin/coupons/couponpack/?id=" + "9" * 30,
    ):
        response = admin_client.get(path)
        assert response.status_code < 500, (path, response.status_code)


def test_too_many_query_fields_or_deeply_bracketed_values_are_not_a_5xx(client):
    many = "&".join(f"f{i}=1" for i in range(1500))
    assert _error(client.get(f"/api/v1/me/coupons?{many}", **_bearer()), 400)["code"] == "bad_request"
    nested = "[" * 5000 + "]" * 5000
    response = client.get("/api/v1/me/coupons", {"status": nested, "page": nested}, **_bearer())
    assert _error(response, 400)["code"] in ("invalid_status", "bad_query")


def test_an_oversized_admin_form_is_a_400_page_not_a_5xx(admin_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    response = admin_client.post(
        "/admin/coupons/couponpack/add/", "name=" + "x" * 10_000, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
