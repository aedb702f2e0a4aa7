"""Demo data: the demo activity (slug "demo") that every app adds its component to,
published in `finalize` once they all have; and a demo template cloned from it."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from activities import services
from activities.models import Activity, ActivityStatus
from components.models import Component

DEMO_SLUG = "demo"
DEMO_TEMPLATE_SLUG = "demo-template"


def _operator():
    return get_user_model().objects.filter(username="operator").first()


def demo_activity() -> Activity:
    """The demo activity, created on first use (a draft running from now for 30 days).
    Other apps' `seed` add their component to it with `components.models.Component`
    rows (or activities.services.component_create)."""
    activity = Activity.objects.filter(slug=DEMO_SLUG).first()
    now = timezone.now()
    if activity is None:
        activity = services.activity_create(
            actor=_operator(),
            name="双十二狂欢节 Demo",
            slug=DEMO_SLUG,
            description="The demo activity: one of every component type.",
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=30),
            theme_background_color="#FFF1E6",
            theme_share_title="双十二狂欢节：领券、抢购、找房",
        )
    elif activity.ends_at and activity.ends_at < now + timedelta(days=1) and activity.status != ActivityStatus.ENDED:
        activity = services.activity_update(activity=activity, actor=_operator(), ends_at=now + timedelta(days=30))
    return activity


DEMO_COMPONENTS = (
    (
        "banner",
        "Banner",
        lambda: {
            "image": f"{settings.SITE_URL}/static/activities/demo-banner.svg",
            "link": "",
            "alt": "双十二狂欢节",
        },
    ),
    ("countdown", "", lambda: {"label": "距活动结束还有", "ended_text": "活动已结束"}),
    (
        "rich_text",
        "活动规则",
        lambda: {
            "html": "<p><strong>活动时间</strong>：即日起至活动结束。</p>"
            "<ol><li>每位用户每种券限领一张。</li><li>支付成功后权益即时到账。</li></ol>"
            "<p>如有疑问请联系客服。</p>"
        },
    ),
)


def seed(stdout) -> None:
    activity = demo_activity()
    operator = _operator()
    for type_key, title, config in DEMO_COMPONENTS:
        if not Component.objects.filter(activity=activity, type=type_key).exists():
            services.component_create(activity=activity, actor=operator, type=type_key, title=title, config=config())
    stdout.write(f"activities: demo activity /a/{DEMO_SLUG}/ has {activity.components.count()} components")


def finalize(stdout) -> None:
    """Publish the demo activity (a new revision only if its content changed) and
    make the demo template from it once."""
    activity = demo_activity()
    operator = _operator()
    if activity.status in (ActivityStatus.ENDED, ActivityStatus.ARCHIVED):
        stdout.write(f"activities: the demo activity is {activity.status}; delete it and seed again to renew it")
    else:
        revision = services.activity_publish(activity=activity, actor=operator, note="seed_demo")
        activity.refresh_from_db()
        stdout.write(f"activities: demo activity is {activity.status}, serving revision {revision.number}")
    if not Activity.objects.filter(slug=DEMO_TEMPLATE_SLUG).exists():
        services.activity_clone(
            source=activity, actor=operator, is_template=True, name="Demo template 演示模板", slug=DEMO_TEMPLATE_SLUG
        )
        stdout.write(f"activities: demo template {DEMO_TEMPLATE_SLUG!r} created")
