"""seed_demo: the demo banner is an uploaded image (stored through the storage API,
served from /media/ with cache headers), as an operator would upload it."""

from __future__ import annotations

import io

from django.core.files.base import ContentFile

from activities import services
from activities.demo import DEMO_SLUG
from components.images import image_store
from components.models import Component


def _banner_png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (750, 280), (255, 90, 54))
    draw = ImageDraw.Draw(image)
    for i, colour in enumerate(((255, 122, 69), (255, 160, 90), (255, 206, 120))):
        draw.ellipse((520 + i * 40, -80 + i * 50, 820 + i * 40, 220 + i * 50), fill=colour)
    draw.rounded_rectangle((40, 190, 300, 240), radius=25, fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def seed(stdout) -> None:
    banner = Component.objects.filter(activity__slug=DEMO_SLUG, type="banner").order_by("position", "id").first()
    if banner is None or str(banner.config.get("image", "")).startswith("/media/"):
        return
    url = image_store(ContentFile(_banner_png(), name="demo-banner.png"), folder="banners")
    services.component_update(component=banner, actor=None, config={**banner.config, "image": url})
    stdout.write(f"components: the demo banner is an uploaded image ({url})")
