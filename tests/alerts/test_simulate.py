"""simulate_traffic through the click door and the matching service; seed_demo shows
one firing alert."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from alerts.models import Alert
from attribution.models import Conversion

pytestmark = pytest.mark.django_db


def test_simulated_click_injection_is_flagged_and_an_ios_drop_skips_ios_activations(make_link):
    ios, android = make_link("oceanengine", os="ios"), make_link("tencent", os="android")
    out = StringIO()
    call_command("simulate_traffic", "--link", str(ios.pk), "--clicks", "0", "--injection", "3", "--direct", stdout=out)
    assert out.getvalue().startswith("3 clicks, 3 activations")
    assert Conversion.objects.filter(link=ios, fraud_rule="injection", fraud_status="flagged").count() == 3
    out = StringIO()
    options = ["--clicks", "10", "--install-rate", "1", "--drop-os", "ios", "--direct"]
    call_command("simulate_traffic", *options, stdout=out)
    assert out.getvalue().startswith("20 clicks, 10 activations, 10 dropped")
    assert Conversion.objects.filter(link=android).count() == 10


def test_seed_demo_shows_one_firing_alert(settings):
    settings.AD_SANDBOX_ENABLED = True
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())
    (alert,) = Alert.objects.filter(state="firing")
    assert alert.rule == "fraud.injection" and "6 flagged" in alert.title
