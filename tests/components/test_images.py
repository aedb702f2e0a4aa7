"""Banner images are uploaded (checked, stored through the storage API, served
with cache headers); the site has a favicon; S3-compatible storage by URL."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from activities import services
from components.models import Component
from components.storage_url import media_storage
from core.services import OPERATOR_GROUP, groups_sync, staff_user_ensure

pytestmark = pytest.mark.django_db


def _png(size=(40, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (255, 90, 54)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def op(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    groups_sync()
    user = staff_user_ensure(username="operator", password="operator-demo-2026", group=OPERATOR_GROUP)
    client.force_login(user)
    return user


def _add(client, activity, **files):
    url = reverse("admin:components_component_add") + f"?activity={activity.pk}&type=banner"
    return client.post(url, {"title": "Top", "enabled": "on", "cfg_image": "", **files})


def test_an_uploaded_banner_image_is_stored_and_served_with_cache_headers(op, client, tmp_path):
    activity = services.activity_create(actor=op, name="A", slug="a")
    response = _add(client, activity, banner_upload=SimpleUploadedFile("top.png", _png(), "image/png"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    image = Component.objects.get(type="banner").config["image"]
    assert image.startswith("/media/banners/") and image.endswith(".png")
    served = client.get(image)
    assert served.status_code == 200 and b"".join(served.streaming_content) == _png()
    assert "max-age=31536000" in served["Cache-Control"]


def test_oversized_and_non_image_uploads_are_refused_in_words(op, client, settings):
    activity = services.activity_create(actor=op, name="A", slug="a")
    settings.UPLOAD_IMAGE_MAX_BYTES = 1024
    big = _add(client, activity, banner_upload=SimpleUploadedFile("big.png", _png((800, 800)) + b"0" * 2048))
    assert "at most 1 KB" in str(big.context["adminform"].form.errors["banner_upload"])
    settings.UPLOAD_IMAGE_MAX_BYTES = 2 * 1024 * 1024
    fake = _add(client, activity, banner_upload=SimpleUploadedFile("x.png", b"<script>alert(1)</script>"))
    assert "not an image" in str(fake.context["adminform"].form.errors["banner_upload"])
    nothing = _add(client, activity)
    assert "upload an image" in str(nothing.context["adminform"].form.errors)
    assert not Component.objects.exists()


def test_the_site_has_a_favicon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"].endswith("huodong/favicon.svg")
    assert 'rel="icon"' in client.get("/admin/login/").content.decode()


def test_media_storage_by_url():
    assert media_storage("")["BACKEND"].endswith("FileSystemStorage")
    s3 = media_storage("s3://campaign-images/prod?endpoint_url=https://oss-cn-shanghai.aliyuncs.com&region_name=cn")
    assert s3["BACKEND"] == "storages.backends.s3.S3Storage"
    assert s3["OPTIONS"]["bucket_name"] == "campaign-images" and s3["OPTIONS"]["location"] == "prod"
    assert s3["OPTIONS"]["endpoint_url"] == "https://oss-cn-shanghai.aliyuncs.com"
    with pytest.raises(ValueError):
        media_storage("s3://bucket?secret=x")
    with pytest.raises(ValueError):
        media_storage("ftp://host/x")


def test_seed_demo_uploads_the_demo_banner(client, settings, tmp_path):
    from activities.demo import demo_activity
    from components import demo

    settings.MEDIA_ROOT = tmp_path
    activity = demo_activity()
    banner = services.component_create(
        activity=activity, actor=None, type="banner", config={"image": "https://img.example.com/x.svg"}
    )
    demo.seed(io.StringIO())
    demo.seed(io.StringIO())  # idempotent
    banner.refresh_from_db()
    assert banner.config["image"].startswith("/media/banners/") and banner.config["image"].endswith(".png")
    assert client.get(banner.config["image"]).status_code == 200
