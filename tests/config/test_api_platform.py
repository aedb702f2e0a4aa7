import time

import jwt
import pytest
from django.test import Client

from core.auth import user_token_mint

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.config.urls")]


def _error(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str) and body["error"]["message"]
    return body["error"]


def test_valid_user_token_authenticates_the_end_user(user_client):
    response = user_client("10086").get("/api/v1/test/whoami")
    assert response.status_code == 200
    assert response.json() == {"user_id": "10086"}


def _token(secret: str, **claims) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "header, code",
    [
        (None, "not_authenticated"),
        ("Bearer", "token_invalid"),
        ("Bearer not.a.jwt", "token_invalid"),
        ("Basic dXNlcjpwYXNz", "token_invalid"),
        (
            "Bearer " + _token("a-wrong-secret-that-is-long-enough-for-hs256", sub="1", exp=int(time.time()) + 60),
            "token_invalid",
        ),
        (
            "Bearer " + _token("dev-user-token-secret-0123456789abcdef", sub="1", exp=int(time.time()) - 5),
            "token_expired",
        ),
        ("Bearer " + _token("dev-user-token-secret-0123456789abcdef", sub="1"), "token_invalid"),
        ("Bearer " + _token("dev-user-token-secret-0123456789abcdef", exp=int(time.time()) + 60), "token_invalid"),
    ],
    ids=["missing", "no-token", "malformed", "wrong-scheme", "wrong-signature", "expired", "no-exp", "no-sub"],
)
def test_bad_user_tokens_get_401_json(api_client, settings, header, code):
    settings.USER_TOKEN_SECRET = "dev-user-token-secret-0123456789abcdef"
    if header:
        api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get("/api/v1/test/whoami")
    assert response.status_code == 401
    assert _error(response)["code"] == code


def test_token_signed_with_alg_none_is_refused(api_client):
    unsigned = jwt.encode({"sub": "1", "exp": int(time.time()) + 60}, None, algorithm="none")
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {unsigned}")
    assert api_client.get("/api/v1/test/whoami").status_code == 401


def test_unknown_api_path_is_a_json_404():
    response = Client().get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_http404_raised_by_a_plain_view_is_a_json_404_not_a_500(settings):
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get("/api/v1/test/missing")
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_unknown_page_is_an_html_404():
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_server_error_is_json_without_traceback(settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    response = client.get("/api/v1/test/boom")
    assert response.status_code == 500
    assert _error(response)["code"] == "server_error"
    assert b"hunter2" not in response.content and b"Traceback" not in response.content


def test_minted_token_carries_sub_and_exp(settings):
    claims = jwt.decode(user_token_mint(user_id="42", ttl_seconds=60), settings.USER_TOKEN_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "42" and claims["exp"] > time.time()


def test_openapi_schema_and_docs_are_served():
    client = Client()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    assert client.get("/api/docs/").status_code == 200


def test_domain_errors_map_to_statuses_in_the_json_error_shape(api_client):
    response = api_client.get("/api/v1/test/sold-out")
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "sold_out", "message": "all gone"}}
    response = api_client.get("/api/v1/test/not-found")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no such pack"}}


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "1" * 65},
        {"sub": "<script>alert(1)</script>"},
        {"sub": "user 42"},
        {"sub": "用户"},
        {"sub": ""},
        {"sub": 42},
        {"sub": "../etc/passwd"},
        {"sub": "1", "exp": 10**12},
        {"sub": "1", "exp": float(time.time() + 30 * 24 * 3600)},  # not yet expired when the test runs
        {"sub": "1", "exp": "tomorrow"},
        {"sub": "1", "exp": 10**30},
    ],
    ids=["long", "markup", "space", "non-ascii", "empty", "num", "path", "exp-far", "exp-float", "exp-str", "exp-huge"],
)
def test_tokens_with_an_odd_sub_or_exp_are_a_401(api_client, settings, claims):
    settings.USER_TOKEN_SECRET = "dev-user-token-secret-0123456789abcdef"
    claims = {"exp": int(time.time()) + 60, **claims}
    api_client.credentials(HTTP_AUTHORIZATION="Bearer " + _token(settings.USER_TOKEN_SECRET, **claims))
    response = api_client.get("/api/v1/test/whoami")
    assert response.status_code == 401
    assert _error(response)["code"] == "token_invalid"


def test_a_token_with_an_infinite_exp_is_a_401_not_a_500(api_client, settings):
    import base64
    import hashlib
    import hmac

    def b64(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(b'{"sub":"1","exp":1e400}')
    signature = hmac.new(settings.USER_TOKEN_SECRET.encode(), signing_input, hashlib.sha256).digest()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {(signing_input + b'.' + b64(signature)).decode()}")
    response = Client(raise_request_exception=False).get(
        "/api/v1/test/whoami", HTTP_AUTHORIZATION=api_client._credentials["HTTP_AUTHORIZATION"]
    )
    assert response.status_code == 401
    assert _error(response)["code"] == "token_invalid"


@pytest.mark.parametrize("user_id", ["10086", "u_42", "a1b2-c3d4.e5:f6", "9" * 64])
def test_plain_identifier_subs_are_accepted(user_client, user_id):
    response = user_client(user_id).get("/api/v1/test/whoami")
    assert response.status_code == 200 and response.json() == {"user_id": user_id}
