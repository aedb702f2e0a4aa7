"""Demo data: a listing component with a few cities on the demo activity; the first
listing's cover is an uploaded image (as an operator uploads it on the listing's
page), the others link the shared demo picture."""

from __future__ import annotations

import io

from django.conf import settings
from django.core.files.base import ContentFile

from components.models import Component
from listings import services

DEMO_CONFIG = {"listings_per_city": 6, "layout": "list", "city_order": ["上海", "北京", "杭州"], "default_city": "上海"}
DEMO_CITIES = {
    "上海": [("浦东新区", "陆家嘴"), ("徐汇区", "徐家汇"), ("静安区", "南京西路"), ("闵行区", "莘庄")],
    "北京": [("朝阳区", "望京"), ("海淀区", "中关村"), ("东城区", "东直门")],
    "杭州": [("西湖区", "文三路"), ("滨江区", "江南大道"), ("余杭区", "未来科技城")],
}
LAYOUTS = ("1室1厅", "2室1厅", "3室2厅", "2室2厅")


def _cover_png() -> bytes:
    """A small picture of a house: a wall, a roof and a window."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (480, 360), (222, 236, 248))
    draw = ImageDraw.Draw(image)
    draw.rectangle((120, 170, 360, 320), fill=(250, 250, 245))
    draw.polygon([(100, 180), (240, 70), (380, 180)], fill=(214, 86, 60))
    draw.rectangle((160, 210, 220, 260), fill=(120, 170, 220))
    draw.rectangle((260, 230, 310, 320), fill=(150, 110, 80))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def seed(stdout) -> None:
    from activities import services as activity_services
    from activities.demo import demo_activity

    activity = demo_activity()
    component = Component.objects.filter(activity=activity, type=services.LISTING_TYPE).first()
    if component is None:
        component = activity_services.component_create(
            activity=activity, actor=None, type=services.LISTING_TYPE, title="热门房源", config=dict(DEMO_CONFIG)
        )
    cover = f"{settings.SITE_URL}/static/listings/demo-home.svg"
    count = 0
    for city_index, (city, places) in enumerate(DEMO_CITIES.items()):
        for n, (district, area_name) in enumerate(places):
            layout = LAYOUTS[(n + city_index) % len(LAYOUTS)]
            services.listing_save(
                component=component,
                city=city,
                external_id=f"DEMO-{city_index + 1}{n + 1:02d}",
                title=f"{area_name} {layout} 精装修 近地铁",
                price_fen=(380_000 + 55_000 * n + 40_000 * city_index),
                district=district,
                address=f"{district}{area_name}{n + 8}号",
                area_m2=55 + 18 * n,
                layout=layout,
                cover_image_url=cover,
                detail_url=f"{settings.SITE_URL}/a/{activity.slug}/#listing-{city_index + 1}{n + 1:02d}",
                tags=["近地铁", "拎包入住"] if n % 2 == 0 else ["南北通透"],
                sort_order=n,
            )
            count += 1
    first = component.listings.filter(external_id="DEMO-101").first()
    if first is not None and not first.cover_image.name:
        services.listing_cover_image_set(listing_id=first.pk, upload=ContentFile(_cover_png(), name="demo-cover.png"))
    stdout.write(
        f"listings: component #{component.pk} on /a/{activity.slug}/ with {count} listings in {len(DEMO_CITIES)} cities"
    )
