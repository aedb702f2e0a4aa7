"""A listing's cover can be uploaded on its admin page (the banner's checks and
storage: components.images), not only linked; the API serves the uploaded image's
URL, which the media door answers with year-long cache headers; a listing without
a cover still gets the placeholder (an empty cover_image_url)."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from listings.models import Listing
from tests.listings.factories import ListingComponentFactory, ListingFactory, ListingGroupFactory
from tests.listings.test_api import publish

pytestmark = pytest.mark.django_db


def _image(kind: str = "PNG", size=(60, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buffer, format=kind)
    return buffer.getvalue()


@pytest.fixture
def listing():
    component = ListingComponentFactory()
    group = ListingGroupFactory(component=component, city="上海")
    listing = ListingFactory(group=group, cover_image_url="")
    ListingFactory(group=group, cover_image_url="", sort_order=9)  # never given a cover
    publish(component)
    return listing


def _edit(client, listing: Listing, **extra):
    """POST the listing's admin page with its current values plus `extra`."""
    data = {
        "component": listing.component_id,
        "group": listing.group_id,
        "external_id": listing.external_id,
        "title": listing.title,
        "price_fen": str(listing.price_fen),
        "tags": "[]",
        "sort_order": str(listing.sort_order),
        "is_active": "on",
        "cover_image_url": listing.cover_image_url,
        **extra,
    }
    return client.post(f"/admin/listings/listing/{listing.pk}/change/", data)


def _covers(api_client, listing: Listing) -> list[str]:
    body = api_client.get(f"/api/v1/components/{listing.component_id}/listings", {"city": "上海"}).json()
    return [item["cover_image_url"] for item in body["results"]]


def test_an_uploaded_cover_is_stored_served_by_the_api_and_cached_for_a_year(operator_client, api_client, listing):
    page = operator_client.get(f"/admin/listings/listing/{listing.pk}/change/").content.decode()
    assert 'name="cover_upload"' in page and 'enctype="multipart/form-data"' in page
    assert "No cover: pages show the placeholder." in page

    response = _edit(operator_client, listing, cover_upload=SimpleUploadedFile("flat.png", _image(), "image/png"))
    assert response.status_code == 302, response.context["adminform"].form.errors

    listing.refresh_from_db()
    assert listing.cover_image.name.startswith("listings/") and listing.cover_image.name.endswith(".png")
    cover, placeholder = _covers(api_client, listing)
    assert cover.startswith("/media/listings/") and cover.endswith(".png")
    assert placeholder == ""  # the other listing: the page draws its placeholder
    served = api_client.get(cover)
    assert served.status_code == 200 and b"".join(served.streaming_content) == _image()
    assert "max-age=31536000" in served["Cache-Control"] and "immutable" in served["Cache-Control"]
    assert f'src="{cover}"' in operator_client.get(f"/admin/listings/listing/{listing.pk}/change/").content.decode()


def test_the_uploaded_cover_wins_over_the_link_and_removing_it_brings_the_link_back(
    operator_client, api_client, listing
):
    linked = "https://img.example.com/flat-1.jpg"
    assert _edit(operator_client, listing, cover_image_url=linked).status_code == 302
    assert _covers(api_client, listing)[0] == linked  # a link alone still works

    listing.refresh_from_db()
    jpeg = SimpleUploadedFile("flat.jpg", _image("JPEG"), "image/jpeg")
    assert _edit(operator_client, listing, cover_upload=jpeg).status_code == 302
    assert _covers(api_client, listing)[0].endswith(".jpg")

    listing.refresh_from_db()
    assert _edit(operator_client, listing, cover_clear="on").status_code == 302
    listing.refresh_from_db()
    assert listing.cover_image.name == "" and listing.cover_image_url == linked
    assert _covers(api_client, listing)[0] == linked


def test_too_large_or_not_an_image_is_refused_beside_the_field_and_nothing_changes(
    operator_client, api_client, listing, settings
):
    settings.UPLOAD_IMAGE_MAX_BYTES = 1024
    big = _edit(
        operator_client, listing, cover_upload=SimpleUploadedFile("big.png", _image(size=(600, 600)) + b"0" * 4096)
    )
    assert big.status_code == 200
    assert "at most 1 KB" in " ".join(big.context["adminform"].form.errors["cover_upload"])

    settings.UPLOAD_IMAGE_MAX_BYTES = 2 * 1024 * 1024
    fake = _edit(operator_client, listing, cover_upload=SimpleUploadedFile("x.png", b"<svg onload=alert(1)>"))
    assert "This file is not an image we can show." in fake.context["adminform"].form.errors["cover_upload"]

    bmp = _edit(operator_client, listing, cover_upload=SimpleUploadedFile("x.bmp", _image("BMP"), "image/bmp"))
    assert "Upload a JPEG, PNG, WebP or GIF image." in bmp.context["adminform"].form.errors["cover_upload"]

    listing.refresh_from_db()
    assert listing.cover_image.name == ""
    assert _covers(api_client, listing) == ["", ""]


@pytest.mark.chinese
def test_a_refused_cover_is_explained_in_chinese_to_a_chinese_operator(operator_client, listing):
    fake = _edit(operator_client, listing, cover_upload=SimpleUploadedFile("x.png", b"not an image"))
    assert fake.status_code == 200
    assert "上传封面图片" in fake.content.decode()
    assert fake.context["adminform"].form.errors["cover_upload"] != ["This file is not an image we can show."]


def test_seed_demo_gives_the_first_demo_listing_an_uploaded_cover(client, settings, tmp_path):
    from listings import demo
    from listings.selectors import listing_cover_url

    settings.MEDIA_ROOT = tmp_path
    demo.seed(io.StringIO())
    demo.seed(io.StringIO())  # idempotent: one upload
    first = Listing.objects.get(external_id="DEMO-101")
    assert first.cover_image.name.startswith("listings/") and first.cover_image.name.endswith(".png")
    assert len(list((tmp_path / "listings").iterdir())) == 1
    assert client.get(listing_cover_url(first)).status_code == 200
    others = Listing.objects.exclude(pk=first.pk)
    assert others.exists() and not others.exclude(cover_image="").exists()
