"""Demo data: one ad account per platform against the sandbox reporting APIs
(idempotent), and a pull of their last days queued for the worker, so `make run`
shows spend beside our figures."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from adreports import services
from adreports.models import AdAccount, Platform
from adreports.sandbox import services as sandbox

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

    if not app.conf.task_always_eager:  # the sandbox is served by the web process: let it start first
        transaction.on_commit(lambda: pull.apply_async(countdown=20))
    stdout.write(
        f"adreports: {len(NAMES)} demo ad accounts on the sandbox; their last {settings.AD_REPORTS_DAYS} days "
        "are pulled by the worker shortly (or: manage.py ad_reports_pull while the web runs)"
    )
