"""Demo data: ANALYTICS_DEMO_DAYS (14) days of ad and campaign history, made through the real code paths
(the click script at past times, activation matching, deep events, coupon claims,
page-view counters), then rolled up, so the rollups, reports and dashboard look
alive on `make run`. Idempotent: history is made once.

The history runs on two links of their own that post nothing back (the demo
platforms' postback URLs are not reachable from a laptop)."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta

from django.conf import settings

from analytics import campaigns, counters, services
from analytics.models import LinkCampaign, LinkRollup
from attribution import clicks
from attribution import services as attribution_services
from attribution.models import TrackingLink

APP_ID = "com.kuaipao.app"
_LINKS = (
    ("oceanengine", "ios", "Demo · 巨量引擎 iOS 双十二 (history)", 220_00),
    ("tencent", "android", "Demo · 广点通 Android 双十二 (history)", 150_00),
)


def _link(platform: str, os: str, name: str) -> TrackingLink:
    link = TrackingLink.objects.filter(platform=platform, app_id=APP_ID, campaign_name=name).first()
    if link is None:
        link = attribution_services.tracking_link_create(
            platform=platform, app_id=APP_ID, os=os, campaign_name=name, postback_activate=False
        )
    attribution_services.tracking_link_sync(link=link)
    return link


def _hourly_volume(hour: datetime) -> int:
    """A day shape: quiet at night (China time), peaks at lunch and in the evening."""
    local = (hour.hour + 8) % 24
    shape = 0.25 + 0.75 * max(math.sin((local - 6) / 18 * math.pi), 0) + (0.5 if local in (12, 20, 21) else 0)
    return max(0, round(6 * shape))


def seed(stdout) -> None:
    """Nothing before the demo activity is published: the history is made in finalize."""


def finalize(stdout) -> None:
    from activities.demo import demo_activity
    from coupons.models import CouponPack

    links = [(_link(p, os, name), cost) for p, os, name, cost in _LINKS]
    activity = demo_activity()
    for link, _ in links:
        if not LinkCampaign.objects.filter(link=link).exists():
            campaigns.link_campaign_set(link=link, activity=activity, window_days=7)
    days = settings.ANALYTICS_DEMO_DAYS
    if days == 0 or LinkRollup.objects.filter(link_id=links[0][0].id).exists():
        stdout.write("analytics: demo history already there (or ANALYTICS_DEMO_DAYS=0)")
        return
    pack = CouponPack.objects.filter(component__activity=activity).first()
    rng = random.Random(2026)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=days)
    made = {"clicks": 0, "activations": 0, "claims": 0}
    hour = start
    while hour < now:
        for link, _ in links:
            for _ in range(_hourly_volume(hour)):
                at = hour + timedelta(seconds=rng.randrange(3600))
                device = str(uuid.UUID(int=rng.getrandbits(128))).upper()
                key = "idfa" if link.os == "ios" else "oaid"
                os_param = "1" if link.os == "ios" else "android"
                query = f"{key}={device}&os={os_param}&ip=198.51.100.{rng.randrange(1, 250)}"
                clicks.click_handle(
                    platform=link.platform,
                    token=link.token,
                    query=query,
                    source_ip="127.0.0.1",
                    received_at_us=int(at.timestamp()) * 1_000_000,
                )
                made["clicks"] += 1
                counters.activity_view_count(
                    slug=activity.slug, visitor=f"a:{device[:8]}", at=at.timestamp() + rng.randrange(60, 600)
                )
                if rng.random() < 0.15:  # installs: 15 % of clicks, minutes to hours later
                    installed = at + timedelta(seconds=rng.choice([5, 40, 300, 1500, 5400, 30000]))
                    if installed >= now:
                        continue
                    user = f"demo-{device[:12].lower()}"
                    attribution_services.activation_record(
                        event_id=str(uuid.uuid4()),
                        app_id=APP_ID,
                        os=link.os,
                        user_id=user,
                        device={key: device},
                        ip=None,
                        ua=None,
                        occurred_at=installed,
                    )
                    made["activations"] += 1
                    if rng.random() < 0.5:
                        attribution_services.deep_event_record(
                            event_id=str(uuid.uuid4()),
                            event_type="register",
                            app_id=APP_ID,
                            user_id=user,
                            device={key: device},
                            occurred_at=installed + timedelta(minutes=2),
                            amount_fen=None,
                        )
                        if rng.random() < 0.3:
                            attribution_services.deep_event_record(
                                event_id=str(uuid.uuid4()),
                                event_type="pay",
                                app_id=APP_ID,
                                user_id=user,
                                device={key: device},
                                occurred_at=installed + timedelta(minutes=9),
                                amount_fen=rng.choice([990, 1990, 4990]),
                            )
                    if (
                        pack is not None
                        and pack.component_id is not None
                        and rng.random() < 0.4
                        and installed + timedelta(minutes=5) < now
                    ):
                        from coupons.services import coupon_pack_claim

                        try:
                            coupon_pack_claim(
                                component_id=pack.component_id, user_id=user, now=installed + timedelta(minutes=5)
                            )
                            made["claims"] += 1
                        except Exception:  # sold out, outside the claim window: the demo goes on
                            pass
        # organic installs of the app
        for _ in range(rng.randrange(0, 3)):
            attribution_services.activation_record(
                event_id=str(uuid.uuid4()),
                app_id=APP_ID,
                os=rng.choice(["ios", "android"]),
                user_id=None,
                device={"idfa": str(uuid.UUID(int=rng.getrandbits(128))).upper()},
                ip=None,
                ua=None,
                occurred_at=hour + timedelta(seconds=rng.randrange(3600)),
            )
        hour += timedelta(hours=1)
    for day in range(days):
        for link, cost in links:
            campaigns.link_cost_set(
                link=link, day=(start + timedelta(days=day)).date(), cost_fen=cost + rng.randrange(-3000, 3000)
            )
    services.rollup_range(start=start, end=now, minutes=60)
    campaigns.campaign_rollup_range(start=start, end=now)
    services.rollup_range(start=now - timedelta(hours=24), end=now, minutes=5)
    stdout.write(
        f"analytics: {days} days of history: {made['clicks']} clicks, {made['activations']} installs, "
        f"{made['claims']} claims, rolled up (hourly; 5-minute for the last 24 h)"
    )
