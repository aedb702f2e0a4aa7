"""Images operators upload (banners, listing covers): checked, stored through
Django's storage API under a name derived from their content, so a URL never changes
meaning and can be cached for a year."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.translation import gettext

from core.errors import DomainError

FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif"}


def image_check(upload) -> str:
    """The file's extension by its real format (Pillow), or DomainError in words."""
    limit = settings.UPLOAD_IMAGE_MAX_BYTES
    if upload.size > limit:
        raise DomainError(
            gettext("The image is %(size)s KB; at most %(limit)s KB.")
            % {"size": upload.size // 1024, "limit": limit // 1024},
            code="image_too_large",
        )
    from PIL import Image

    try:
        upload.seek(0)
        with Image.open(upload) as image:
            kind = image.format
            image.verify()
    except Exception:
        raise DomainError(gettext("This file is not an image we can show."), code="image_invalid") from None
    finally:
        upload.seek(0)
    if kind not in FORMATS:
        raise DomainError(gettext("Upload a JPEG, PNG, WebP or GIF image."), code="image_type")
    return FORMATS[kind]


def image_save(upload, *, folder: str = "images") -> str:
    """Check an uploaded image and store it once (content-addressed); returns its
    storage name (for a model field that keeps the name, e.g. Listing.cover_image)."""
    extension = image_check(upload)
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    name = f"{folder}/{digest.hexdigest()[:32]}.{extension}"
    if not default_storage.exists(name):
        name = default_storage.save(name, upload)
    return name


def image_url(name: str) -> str:
    """The URL pages use for a stored image: absolute on object storage, rooted at
    /media/ on the local folder (served with year-long cache headers)."""
    url = default_storage.url(name)
    if not url.startswith(("http://", "https://", "/")):
        url = "/" + url
    return url


def image_store(upload, *, folder: str = "images") -> str:
    """Store an uploaded image once (content-addressed) and return the URL pages use."""
    return image_url(image_save(upload, folder=folder))
