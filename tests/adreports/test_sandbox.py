"""The built-in sandbox reporting APIs, pulled end to end over HTTP by the real clients."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from adreports import crypto, selectors, services
from adreports.models import AdAccount, AdReportRow, PullStatus
from adreports.sandbox import services as sandbox
from tests.payments.fakes import closed_port_url


@pytest.fixture
def sandbox_urls(settings, live_server):
    settings.AD_API_BACKOFF_SECONDS = 0.001
    settings.AD_API_PAGE_SIZE = 2
    for platform, name in (("oceanengine", "OCEANENGINE"), ("tencent", "TENCENT"), ("kuaishou", "KUAISHOU")):
        setattr(settings, f"AD_API_{name}_URL", f"{live_server.url}/sandbox/adapi/{platform}")
    return settings


def test_seeded_accounts_pull_from_the_sandbox_with_refresh(sandbox_urls, transactional_db):
    from adreports import demo

    call_command("seed_demo", stdout=StringIO())
    # the demo traffic make run adds (its postbacks go to a closed loopback port here)
    sandbox_urls.POSTBACK_OCEANENGINE_URL = sandbox_urls.POSTBACK_KUAISHOU_URL = closed_port_url()
    demo._demo_traffic(StringIO())
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
    # the demo traffic (real click path and matcher) sits beside their spend: installs, revenue, ROAS
    per_account = {f.key: f for f in selectors.ad_performance(start=today, end=today, level="account")}
    for account in accounts:
        figures = per_account[(account.platform, account.account_id)]
        assert figures.cost_fen > 0 and figures.our_clicks == 18 and figures.installs == 12
        assert figures.revenue_fen > 0 and figures.roas is not None and figures.cost_per_install_fen > 0


def test_sandbox_is_off_in_production(client, settings):
    settings.AD_SANDBOX_ENABLED = False
    response = client.get("/sandbox/adapi/tencent/v3.0/daily_reports/get")
    assert response.status_code == 404
