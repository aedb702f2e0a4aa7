"""Demo data: one ad account per platform against the sandbox reporting APIs
(idempotent), and a pull of their last days queued for the worker, so `make run`
shows spend beside our figures."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from adreports import services
from adreports.models import AdAccount, Platform
from adreports.sandbox import services as sandbox
from attribution import clicks as click_store
from attribution import services as attribution_services
from attribution.demo import DEMO_APP_ID
from attribution.models import MatchTrace, TrackingLink

NAMES = {
    Platform.OCEANENGINE: "Demo · 巨量引擎 拉新",
    Platform.TENCENT: "Demo · 广点通 拉新",
    Platform.KUAISHOU: "Demo · 磁力引擎 拉新",
}


def seed(stdout) -> None:
    if not settings.AD_SANDBOX_ENABLED:
        stdout.write("adreports: sandbox off, no demo ad accounts")
        return
    now = timezone.now()
    for platform, name in NAMES.items():
        account_id = sandbox.DEMO_ACCOUNTS[platform][0]
        if AdAccount.objects.filter(platform=platform, account_id=account_id).exists():
            continue
        tokens = sandbox.tokens_mint(platform=platform)
        services.ad_account_create(
            platform=platform,
            account_id=account_id,
            name=name,
            app_id=sandbox.APP_ID,
            app_secret=sandbox.APP_SECRET,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            access_token_expires_at=now + timedelta(seconds=tokens["access_expires_in"]),
            refresh_token_expires_at=now + timedelta(seconds=tokens["refresh_expires_in"]),
        )
    from adreports.tasks import pull
    from config.celery import app

    if not app.conf.task_always_eager:
        # not inline (tests): the matcher's postbacks would be sent at once, off loopback
        _demo_traffic(stdout)
        # the sandbox is served by the web process: let it start first
        transaction.on_commit(lambda: pull.apply_async(countdown=20))
    stdout.write(
        f"adreports: {len(NAMES)} demo ad accounts on the sandbox; their last {settings.AD_REPORTS_DAYS} days "
        "are pulled by the worker shortly (or: manage.py ad_reports_pull while the web runs)"
    )


def _demo_traffic(stdout) -> None:
    """Today's clicks on the demo tracking links carrying the sandbox accounts' ids,
    installs of some of the clicking devices and payments of some installs, through
    the real click path and matcher (once a day), so spend sits beside installs and
    revenue (ROAS) on the performance page."""
    today = timezone.localdate().isoformat()
    made = 0
    for platform, (account_id, campaigns) in sandbox.DEMO_ACCOUNTS.items():
        link = TrackingLink.objects.filter(platform=platform, app_id=DEMO_APP_ID, enabled=True).first()
        if link is None or MatchTrace.objects.filter(event_id=f"demo-adr-{platform}-{today}-0").exists():
            continue
        attribution_services.tracking_link_sync(link=link)
        ads = [(campaign, ad) for campaign, ad_ids in campaigns for ad in ad_ids]
        for n in range(18):
            campaign, ad = ads[n % len(ads)]
            device_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-adr:{platform}:{today}:{n}")).upper()
            kind = "idfa" if link.os == "ios" else "oaid"
            query = {"account": account_id, "campaign": campaign, "ad": ad, kind: device_id, "ip": f"198.51.100.{n}"}
            if platform == "oceanengine":
                query["os"] = "1" if link.os == "ios" else "0"
            click_store.click_handle(platform=platform, token=link.token, query=urlencode(query), source_ip="127.0.0.1")
            if n % 3 == 2:
                continue  # a third of the clicks do not install
            at = timezone.now()
            attribution_services.activation_record(
                event_id=f"demo-adr-{platform}-{today}-{n}",
                app_id=DEMO_APP_ID,
                os=link.os,
                user_id=f"demo-{platform}-{n}",
                device={kind: device_id},
                ip=None,
                ua=None,
                occurred_at=at,
            )
            if n % 3 == 0:
                attribution_services.deep_event_record(
                    event_id=f"demo-adr-pay-{platform}-{today}-{n}",
                    event_type="pay",
                    app_id=DEMO_APP_ID,
                    user_id=f"demo-{platform}-{n}",
                    device={kind: device_id},
                    occurred_at=at,
                    amount_fen=990 * (1 + n % 4),
                )
            made += 1
    if made:
        stdout.write(f"adreports: {made} demo installs on today's sandbox-account clicks")
