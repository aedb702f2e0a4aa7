"""Demo data: one tracking link per platform, and one click and activation on each, so
that `make run` shows postbacks landing in the sandbox ad platform (idempotent)."""

from __future__ import annotations

import time
from urllib.parse import quote, urlencode

from django.conf import settings
from django.utils import timezone

from attribution import platforms, services
from attribution.clicks import click_handle
from attribution.models import MatchTrace, TrackingLink

DEMO_APP_ID = "com.kuaipao.app"
_DEMO_LINKS = (
    (platforms.OCEANENGINE, "ios", "Demo · 巨量引擎 iOS 拉新"),
    (platforms.TENCENT, "android", "Demo · 广点通 Android 拉新"),
    (platforms.KUAISHOU, "android", "Demo · 磁力引擎 Android 拉新"),
    (platforms.GENERIC, "ios", "Demo · generic iOS"),
)
_DEMO_DEVICES = {
    platforms.OCEANENGINE: {"idfa": "D3M0A1B2-0000-4000-8000-000000000001"},
    platforms.TENCENT: {"oaid": "demo-oaid-tencent-0001"},
    platforms.KUAISHOU: {"oaid": "demo-oaid-kuaishou-0001"},
    platforms.GENERIC: {"idfa": "D3M0A1B2-0000-4000-8000-000000000004"},
}


def _demo_callback(platform: str) -> str:
    """The callback a platform puts in its click: a URL for tencent and generic (in the
    demo, the sandbox ad platform's), an opaque token for the others."""
    if platform in (platforms.TENCENT, platforms.GENERIC):
        url = f"{settings.SITE_URL}/sandbox/ads/{platform}/conv?cb=demo-{platform}"
        return quote(url, safe="") if platform == platforms.TENCENT else url
    return f"DEMO-CALLBACK-{platform.upper()}"


def _demo_conversion(link: TrackingLink, stdout) -> None:
    """One click then one activation on the link: the activation postback goes to the
    sandbox ad platform (Attribution › Sandbox postbacks) once the worker runs."""
    event_id = f"demo-activation-{link.platform}"
    if MatchTrace.objects.filter(event_id=event_id).exists():
        return
    device = _DEMO_DEVICES[link.platform]
    now_ms = int(time.time() * 1000)
    ts = now_ms // 1000 if link.platform == platforms.TENCENT else now_ms  # tencent sends Unix seconds
    params = {**device, "callback": _demo_callback(link.platform), "ts": str(ts)}
    params["click_id"] = f"demo-click-{link.platform}"
    click_handle(platform=link.platform, token=link.token, query=urlencode(params), source_ip="203.0.113.7")
    outcome = services.activation_record(
        event_id=event_id,
        app_id=DEMO_APP_ID,
        os=link.os,
        user_id=None,
        device=device,
        ip=None,
        ua=None,
        occurred_at=timezone.now(),
    )
    stdout.write(f"  demo activation on {link.platform}: {outcome.outcome}, postback to the sandbox ad platform")


def seed(stdout) -> None:
    for platform, os, name in _DEMO_LINKS:
        link = TrackingLink.objects.filter(platform=platform, app_id=DEMO_APP_ID, campaign_name=name).first()
        if link is None:
            link = services.tracking_link_create(
                platform=platform, app_id=DEMO_APP_ID, os=os, campaign_name=name, postback_register=True
            )
        services.tracking_link_sync(link=link)  # now: the demo click below reads the replica
        url = platforms.click_url_template(site_url=settings.SITE_URL, platform=platform, token=link.token, os=os)
        stdout.write(f"  tracking link {platform}: {url[:110]}…")
        if settings.AD_SANDBOX_ENABLED:
            _demo_conversion(link, stdout)
