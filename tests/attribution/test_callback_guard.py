"""Outbound calls go only where they should: a postback to a click's callback URL
reaches only allowed hosts at public addresses; everything else is refused, recorded
with its reason and never fetched (POSTBACK_ALLOW_PRIVATE_HOSTS off, as in production)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from attribution import services
from attribution.models import Conversion, Postback
from core import outbound
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db


class StandIn:
    """A loopback HTTP server that records every request; `redirect_to` makes it answer 302."""

    def __init__(self, redirect_to: str | None = None):
        self.requests: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                stand_in.requests.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b'{"code": 0}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in():
    server = StandIn()
    yield server
    server.close()


@pytest.fixture
def production_guard(settings):
    """The production posture: no private addresses, the platforms' public allow-lists."""
    settings.POSTBACK_ALLOW_PRIVATE_HOSTS = False
    settings.POSTBACK_CALLBACK_HOSTS = {
        "oceanengine": ["*.oceanengine.com"],
        "tencent": ["*.e.qq.com", "*.gdt.qq.com"],
        "kuaishou": ["*.gifshow.com"],
        "generic": [],
    }
    settings.POSTBACK_TIMEOUT_SECONDS = 3.0
    return settings


def _postback(make_link, platform: str, callback: str, **link_fields) -> Postback:
    link = make_link(platform, **link_fields)
    now = timezone.now()
    conversion = Conversion.objects.create(
        link=link,
        platform=platform,
        app_id=link.app_id,
        activation_event_id=f"ev-{Conversion.objects.count()}",
        click_id=f"click-{Conversion.objects.count()}",
        click_at=now,
        activated_at=now,
        seconds_to_install=0,
        match_method="oaid",
        match_key="oaid:x",
        callback=callback,
        device_keys={"oaid": ["x"]},
    )
    return Postback.objects.create(
        conversion=conversion, event_type="activate", source_event_id="ev", event_time=now, next_attempt_at=now
    )


def _deliver(postback: Postback) -> Postback:
    services.postback_deliver(postback_id=postback.pk)
    postback.refresh_from_db()
    return postback


@pytest.mark.parametrize(
    ("callback", "reason"),
    [
        ("http://127.0.0.1:{port}/cb", "127.0.0.1 is loopback"),
        ("http://localhost:{port}/cb", "localhost resolves to"),
        ("http://[::1]:{port}/cb", "::1 is loopback"),
        ("http://10.1.2.3/cb", "10.1.2.3 is private"),
        ("http://192.168.1.20/cb", "192.168.1.20 is private"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is link-local"),
        ("http://100.100.100.200/latest/meta-data/", "100.100.100.200 is not a public address"),
        ("http://[::ffff:127.0.0.1]:{port}/cb", "127.0.0.1 is loopback"),
    ],
)
def test_a_generic_callback_to_a_private_address_is_refused_recorded_and_never_fetched(
    production_guard, make_link, stand_in, callback, reason
):
    # the operator allowed these hosts on the link: the address check still refuses them
    hosts = "127.0.0.1\nlocalhost\n::1\n10.1.2.3\n192.168.1.20\n169.254.169.254\n100.100.100.200\n::ffff:127.0.0.1"
    postback = _deliver(_postback(make_link, "generic", callback.format(port=stand_in.port), callback_hosts=hosts))
    attempt = postback.attempts.get()
    assert (postback.status, attempt.refused, attempt.status_code) == ("refused", True, None)
    assert reason in attempt.error and attempt.error.startswith("refused, nothing sent")
    assert postback.next_attempt_at is None  # not retried on its own
    assert stand_in.requests == []


@pytest.mark.parametrize(
    ("platform", "callback", "reason"),
    [
        (
            "tencent",
            "https://evil.example.com/conv",
            "'evil.example.com' is on neither the tencent callback allow-list",
        ),
        ("tencent", "https://e.qq.com.evil.example/conv", "neither the tencent callback allow-list"),
        ("generic", "https://partner.example/cb", "neither the link's callback hosts nor the generic"),
        ("generic", "http://127.0.0.1:{port}/cb", "'127.0.0.1' is on neither"),
    ],
)
def test_a_callback_host_not_on_the_allow_list_is_refused_and_recorded(
    production_guard, make_link, stand_in, platform, callback, reason
):
    postback = _deliver(_postback(make_link, platform, callback.format(port=stand_in.port)))
    assert postback.status == "refused" and reason in postback.last_error
    assert stand_in.requests == []


def test_an_allowed_callback_host_is_fetched(production_guard, make_link, stand_in):
    # the deployment lists the stand-in's address itself: trusted as configured
    production_guard.POSTBACK_CALLBACK_HOSTS = {**production_guard.POSTBACK_CALLBACK_HOSTS, "tencent": ["127.0.0.1"]}
    postback = _deliver(_postback(make_link, "tencent", f"{stand_in.url}/conv?cb=1"))
    assert postback.status == "succeeded", postback.last_error
    assert stand_in.requests == ["POST /conv?cb=1"]


def test_an_operator_listed_host_is_fetched_when_private_addresses_are_allowed(settings, make_link, stand_in):
    settings.POSTBACK_ALLOW_PRIVATE_HOSTS = True  # development: the stand-in lives on loopback
    settings.POSTBACK_CALLBACK_HOSTS = {**settings.POSTBACK_CALLBACK_HOSTS, "generic": []}
    postback = _deliver(_postback(make_link, "generic", f"{stand_in.url}/cb?c=1", callback_hosts="127.0.0.1"))
    assert postback.status == "succeeded", postback.last_error
    assert [r.split("&")[0] for r in stand_in.requests] == ["GET /cb?c=1"]


def test_a_redirect_is_never_followed(production_guard, make_link, stand_in):
    redirector = StandIn(redirect_to=f"{stand_in.url}/internal-admin")
    try:
        production_guard.POSTBACK_CALLBACK_HOSTS = {
            **production_guard.POSTBACK_CALLBACK_HOSTS,
            "generic": ["127.0.0.1"],
        }
        postback = _deliver(_postback(make_link, "generic", f"{redirector.url}/cb"))
    finally:
        redirector.close()
    assert len(redirector.requests) == 1 and stand_in.requests == []
    assert postback.status == "retrying" and "HTTP 302" in postback.last_error


def test_the_connection_is_checked_at_the_address_it_reached(stand_in):
    """DNS rebinding: whatever a name resolved to when it was checked, the socket's peer is
    checked again before a byte is sent."""
    session = outbound._guarded_session(False)  # the transport alone, without the resolution check
    with pytest.raises(outbound.OutboundRefused, match=r"connected to 127\.0\.0\.1 is loopback"):
        session.get(f"{stand_in.url}/rebound", timeout=3)
    assert stand_in.requests == []
    assert outbound._guarded_session(True).get(f"{stand_in.url}/ok", timeout=3).status_code == 200


def test_a_refused_postback_shows_its_reason_in_the_admin_and_can_be_retried(
    production_guard, make_link, stand_in, client
):
    postback = _deliver(_postback(make_link, "tencent", "https://evil.example.com/conv"))
    client.force_login(StaffUserFactory(is_superuser=True))
    page = client.get(f"/admin/attribution/postback/{postback.pk}/change/").content.decode()
    assert "refused (callback not allowed)" in page and "evil.example.com" in page
    listing = client.get("/admin/attribution/postback/?delivery=refused").content.decode()
    assert f">{postback.conversion_id}<" in listing
    assert services.postback_retry(postback=postback)


@pytest.mark.parametrize("name", ["POSTBACK_ALLOW_PRIVATE_HOSTS", "AD_SANDBOX_ENABLED"])
def test_production_refuses_to_start_with_private_callbacks_or_the_sandbox_ad_platform(name):
    from tests.config.test_settings import PRODUCTION_ENV, _manage

    result = _manage("check", env={**PRODUCTION_ENV, name: "1"})
    assert result.returncode != 0 and name in result.stderr
