"""Demo: click injection simulated on the demo Ocean Engine link (installs 2 s after
their clicks, flagged by the default fraud rule), then one traffic check: the admin
shows one firing alert (rule fraud.injection) and the flagged installs."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from alerts.checks import traffic_check
from alerts.models import Alert
from alerts.simulate import traffic_simulate
from attribution.models import TrackingLink


def seed(stdout) -> None:
    pass


def finalize(stdout) -> None:
    if not settings.AD_SANDBOX_ENABLED or Alert.objects.filter(rule="fraud.injection", open_key__isnull=False).exists():
        return
    link = TrackingLink.objects.filter(platform="oceanengine", campaign_name__startswith="Demo").first()
    if link is None:
        return
    if not link.conversions.filter(fraud_rule="injection").exists():
        traffic_simulate(links=[link], clicks_per_link=0, injection=6, direct=True, seed=14)
    findings = traffic_check(at=timezone.now() + timedelta(minutes=1), only=["fraud_installs"])
    stdout.write(
        f"  alerts: click injection simulated on link {link.pk}; {len(findings)} alert firing (fraud.injection)"
    )
