"""Uploaded images from the local media folder (production stores them in an
S3-compatible bucket that serves them itself) and the favicon."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.http import Http404, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.views.static import serve

IMMUTABLE = "public, max-age=31536000, immutable"


def favicon(request):
    response = HttpResponsePermanentRedirect(static("huodong/favicon.svg"))
    response["Cache-Control"] = "public, max-age=86400"
    return response


def media(request, path: str):
    """Uploaded files are named by their content's hash, so they never change:
    browsers and CDNs may keep them for a year."""
    if not isinstance(default_storage, FileSystemStorage):
        raise Http404
    response = serve(request, path, document_root=str(settings.MEDIA_ROOT))
    response["Cache-Control"] = IMMUTABLE
    response["X-Content-Type-Options"] = "nosniff"
    return response
