"""seed_demo's analytics history: made through the real paths, rolled up, made once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from analytics.models import CampaignRollup, LinkCampaign, LinkCost, LinkOutcomeRollup, LinkRollup
from attribution.models import Conversion

pytestmark = pytest.mark.django_db


def test_seed_demo_makes_one_day_of_history_rolled_up_and_only_once(settings):
    settings.ANALYTICS_DEMO_DAYS = 1
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "analytics: 1 days of history" in out.getvalue()
    history_links = list(LinkCampaign.objects.values_list("link_id", flat=True))
    hourly = LinkRollup.objects.filter(bucket_minutes=60, link_id__in=history_links)
    # The history is rolled up to the start of the current hour; the alerts demo then
    # simulates a few installs now (click injection), which the next tick rolls up.
    rolled_until = timezone.now().replace(minute=0, second=0, microsecond=0)
    made = Conversion.objects.filter(is_test=False, link_id__in=history_links, activated_at__lt=rolled_until).count()
    assert hourly.aggregate(s=Sum("attributed"))["s"] == made > 0
    assert hourly.aggregate(s=Sum("clicks"))["s"] > 0
    assert (
        LinkRollup.objects.filter(bucket_minutes=5).aggregate(s=Sum("clicks"))["s"]
        == hourly.aggregate(s=Sum("clicks"))["s"]
    )
    assert CampaignRollup.objects.aggregate(s=Sum("page_views"))["s"] > 0
    assert LinkCost.objects.count() == 2
    claims = CampaignRollup.objects.aggregate(s=Sum("claims"))["s"]
    assert LinkOutcomeRollup.objects.aggregate(s=Sum("claims"))["s"] == claims  # every demo claim is attributed
    rows = LinkRollup.objects.count()
    call_command("seed_demo", stdout=StringIO())
    assert LinkRollup.objects.count() == rows
