"""Hourly rollup rows for dashboard tests (the dashboard reads rollups only; how rollups
are made from raw rows is proven in test_rollups.py)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.utils import timezone

from analytics.models import CampaignRollup, LinkCampaign, LinkRollup
from analytics.services import rollup_day
from attribution import services as attribution_services


def local_hour(day, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=timezone.get_current_timezone())


def seed_dashboard(*, activity=None):
    """Two links (iOS on oceanengine, Android on kuaishou) over today and yesterday."""
    today = timezone.localdate()
    ios = attribution_services.tracking_link_create(
        platform="oceanengine", app_id="com.dash.app", os="ios", campaign_name="Dash iOS"
    )
    android = attribution_services.tracking_link_create(
        platform="kuaishou", app_id="com.dash.app", os="android", campaign_name="=Dash Android"
    )
    now = timezone.now()
    rows = []
    for day, factor in ((today - timedelta(days=1), 1), (today, 2)):
        for hour in (0, 9):
            for link, clicks, attributed in ((ios, 100, 10), (android, 50, 2)):
                rows.append(
                    LinkRollup(
                        bucket_start=local_hour(day, hour),
                        bucket_minutes=60,
                        app_id=link.app_id,
                        platform=link.platform,
                        link_id=link.id,
                        os=link.os,
                        clicks=clicks * factor,
                        activations=(attributed + 1) * factor,
                        attributed=attributed * factor,
                        fraud_flagged=(attributed // 5) * factor,  # ios 2, android 0 (x factor)
                        fraud_rejected=factor if link is ios else 0,
                        reinstalls=factor,
                        ctit_lt_10s=factor,
                        ctit_1_10m=attributed * factor - factor,
                        registers=attributed,
                        pays=1,
                        pay_amount_fen=990,
                        rolled_at=now,
                    )
                )
    LinkRollup.objects.bulk_create(rows)
    for day in (today - timedelta(days=1), today):
        rollup_day(day=day)  # the day rows the dashboard reads, summed from these hours
    if activity is not None:
        LinkCampaign.objects.create(link=ios, activity=activity, window_days=7)
        CampaignRollup.objects.create(
            bucket_start=local_hour(today, 9),
            activity_id=activity.id,
            page_views=40,
            unique_visitors=30,
            claims=7,
            orders_placed=3,
            orders_paid=2,
            revenue_fen=3980,
            rolled_at=now,
        )
    return ios, android
