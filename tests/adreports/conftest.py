from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from adreports import services
from tests.adreports.fakes import FakeAdPlatform

SETTING = {
    "oceanengine": "AD_API_OCEANENGINE_URL",
    "tencent": "AD_API_TENCENT_URL",
    "kuaishou": "AD_API_KUAISHOU_URL",
}
ACCOUNT_IDS = {"oceanengine": "1700000000001", "tencent": "25610", "kuaishou": "90001"}


@pytest.fixture
def ad_settings(settings):
    settings.AD_API_BACKOFF_SECONDS = 0.001
    settings.AD_API_PAGE_SIZE = 2
    settings.AD_API_TIMEOUT_SECONDS = 5
    settings.AD_REPORTS_CONCURRENCY = 2
    return settings


@pytest.fixture
def ad_platform(ad_settings):
    """`ad_platform("tencent")`: a loopback stand-in of that platform, with the API URL pointed at it."""
    started = []

    def start(platform: str) -> FakeAdPlatform:
        fake = FakeAdPlatform(platform)
        setattr(ad_settings, SETTING[platform], fake.url)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.stop()


def account_for(fake: FakeAdPlatform, *, account_id: str | None = None, expires_in=timedelta(hours=12), **extra):
    now = timezone.now()
    return services.ad_account_create(
        platform=fake.platform,
        account_id=account_id or ACCOUNT_IDS[fake.platform],
        name=f"demo {fake.platform}",
        app_id=fake.app_id,
        app_secret=fake.secret,
        access_token=fake.access_token,
        refresh_token=fake.refresh_token,
        access_token_expires_at=now + expires_in,
        refresh_token_expires_at=extra.pop("refresh_expires_at", now + timedelta(days=25)),
        **extra,
    )
