"""Demo data: one tracking link per platform (idempotent)."""

from __future__ import annotations

from django.conf import settings

from attribution import platforms, services
from attribution.models import TrackingLink

DEMO_APP_ID = "com.kuaipao.app"
_DEMO_LINKS = (
    (platforms.OCEANENGINE, "ios", "Demo · 巨量引擎 iOS 拉新"),
    (platforms.TENCENT, "android", "Demo · 广点通 Android 拉新"),
    (platforms.KUAISHOU, "android", "Demo · 磁力引擎 Android 拉新"),
    (platforms.GENERIC, "ios", "Demo · generic iOS"),
)


def seed(stdout) -> None:
    for platform, os, name in _DEMO_LINKS:
        link = TrackingLink.objects.filter(platform=platform, app_id=DEMO_APP_ID, campaign_name=name).first()
        if link is None:
            link = services.tracking_link_create(
                platform=platform, app_id=DEMO_APP_ID, os=os, campaign_name=name, postback_register=True
            )
        else:
            services.tracking_link_sync(link=link)
        url = platforms.click_url_template(site_url=settings.SITE_URL, platform=platform, token=link.token, os=os)
        stdout.write(f"  tracking link {platform}: {url[:110]}…")
