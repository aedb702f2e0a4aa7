"""The local demo never calls the real ad platforms: outside production the postbacks
go to the built-in sandbox ad platform, which records them and shows them in the admin."""

from __future__ import annotations

from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

from attribution.models import Postback
from attribution.sandbox.models import SandboxPostback
from tests.factories import StaffUserFactory


def test_outside_production_the_postback_urls_point_at_the_sandbox(settings):
    assert settings.AD_SANDBOX_ENABLED
    for url in (settings.POSTBACK_OCEANENGINE_URL, settings.POSTBACK_KUAISHOU_URL):
        assert url.startswith(settings.SITE_URL + "/sandbox/ads/"), url
    sandbox_host = urlsplit(settings.SITE_URL).hostname
    assert all(hosts == [sandbox_host] for hosts in settings.POSTBACK_CALLBACK_HOSTS.values())


@pytest.fixture
def sandbox_site(settings, live_server):
    """The settings the development defaults give, with SITE_URL at the live server."""
    site = live_server.url
    settings.SITE_URL = site
    settings.POSTBACK_OCEANENGINE_URL = site + "/sandbox/ads/oceanengine/track/activate/"
    settings.POSTBACK_KUAISHOU_URL = site + "/sandbox/ads/kuaishou/track/activate"
    settings.POSTBACK_CALLBACK_HOSTS = {p: [urlsplit(site).hostname] for p in settings.POSTBACK_CALLBACK_HOSTS}
    return site


def test_seed_demo_postbacks_land_in_the_sandbox_and_show_in_the_admin(sandbox_site, client):
    call_command("seed_demo", stdout=StringIO())
    assert Postback.objects.count() == 4
    assert set(Postback.objects.values_list("status", flat=True)) == {"succeeded"}, list(
        Postback.objects.values_list("conversion__platform", "last_error")
    )
    received = {row.platform: row for row in SandboxPostback.objects.all()}
    assert set(received) == {"oceanengine", "tencent", "kuaishou", "generic"}
    assert received["oceanengine"].query["callback"] == "DEMO-CALLBACK-OCEANENGINE"
    assert received["oceanengine"].event_type == "0" and received["kuaishou"].event_type == "1"
    assert received["tencent"].method == "POST" and received["tencent"].event_type == "ACTIVATE_APP"
    assert received["generic"].query["event"] == "activate"
    call_command("seed_demo", stdout=StringIO())  # idempotent: no second conversion, no second postback
    assert (Postback.objects.count(), SandboxPostback.objects.count()) == (4, 4)
    client.force_login(StaffUserFactory(is_superuser=True))
    page = client.get("/admin/attribution/sandboxpostback/").content.decode()
    assert "ACTIVATE_APP" in page and "/sandbox/ads/kuaishou/track/activate" in page


@pytest.mark.django_db
def test_the_sandbox_answers_404_when_disabled(settings, client):
    settings.AD_SANDBOX_ENABLED = False
    response = client.get("/sandbox/ads/oceanengine/track/activate/?callback=x&event_type=0")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert not SandboxPostback.objects.exists()
