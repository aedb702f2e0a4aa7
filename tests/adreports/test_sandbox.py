"""The built-in sandbox reporting APIs, pulled end to end over HTTP by the real clients."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from adreports import crypto, services
from adreports.models import AdAccount, AdReportRow, PullStatus
from adreports.sandbox import services as sandbox


@pytest.fixture
def sandbox_urls(settings, live_server):
    settings.AD_API_BACKOFF_SECONDS = 0.001
    settings.AD_API_PAGE_SIZE = 2
    for platform, name in (("oceanengine", "OCEANENGINE"), ("tencent", "TENCENT"), ("kuaishou", "KUAISHOU")):
        setattr(settings, f"AD_API_{name}_URL", f"{live_server.url}/sandbox/ads/{platform}")
    return settings


def test_seeded_accounts_pull_from_the_sandbox_with_refresh(sandbox_urls, transactional_db):
    call_command("seed_demo", stdout=StringIO())
    accounts = list(AdAccount.objects.all())
    assert {a.platform for a in accounts} == {"oceanengine", "tencent", "kuaishou"}
    # one account's access token is about to expire: it is refreshed through the sandbox first
    soon = accounts[0]
    AdAccount.objects.filter(pk=soon.pk).update(access_token_expires_at=timezone.now() + timedelta(minutes=1))
    before = crypto.decrypt(soon.access_token_enc)

    today = timezone.localdate()
    pulls = services.ad_reports_pull(start=today - timedelta(days=2), end=today)

    assert len(pulls) == 9 and all(p.status == PullStatus.SUCCEEDED for p in pulls), [p.error for p in pulls]
    soon.refresh_from_db()
    assert crypto.decrypt(soon.access_token_enc) != before
    for account in accounts:
        stored = AdReportRow.objects.filter(account=account, day=today).order_by("ad_id")
        expected = sorted(
            sandbox.day_rows(platform=account.platform, account_id=account.account_id, day=today),
            key=lambda r: r["ad_id"],
        )
        assert [(r.campaign_id, r.ad_id, r.cost_fen, r.clicks, r.conversions) for r in stored] == [
            (e["campaign_id"], e["ad_id"], e["cost_fen"], e["clicks"], e["conversions"]) for e in expected
        ]


def test_sandbox_is_off_in_production(client, settings):
    settings.AD_SANDBOX_ENABLED = False
    response = client.get("/sandbox/ads/tencent/v3.0/daily_reports/get")
    assert response.status_code == 404
