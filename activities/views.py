"""Thin doors: the public H5 page, the signed preview and the frontend API (contracts §6)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core import signing
from django.http import HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from activities import selectors
from activities.models import Activity
from analytics.counters import activity_view_count, visitor_of
from components import registry
from core.auth import EndUser
from core.errors import ApiError

logger = logging.getLogger(__name__)

PREVIEW_SALT = "activities.preview"


def _render_components(body: dict) -> list[dict]:
    """Each component through its type's template; one broken template is logged and
    left out rather than breaking the page."""
    activity = {k: v for k, v in body.items() if k != "components"}
    out = []
    for component in body["components"]:
        try:
            template = registry.get(component["type"]).template
            html = render_to_string(template, {"component": component, "activity": activity})
        except Exception:
            logger.exception("component render failed", extra={"component_id": component.get("id")})
            continue
        out.append({"component": component, "html": mark_safe(html)})
    return out


def _page_html(body: dict, *, preview: bool = False) -> str:
    return render_to_string(
        "activities/page.html",
        {"activity": body, "items": _render_components(body), "preview": preview},
    )


def _unavailable(code: str, message: str, status: int = 404) -> HttpResponse:
    html = render_to_string("activities/unavailable.html", {"code": code, "message": message})
    return HttpResponse(html, status=status)


def activity_page(request, slug: str) -> HttpResponse:
    """/a/{slug}/: the published snapshot, server-rendered; cached per generation."""
    public = selectors.public_activity_get(slug, with_page=True)
    if not public.served:
        return _unavailable(*public.error)
    activity_view_count(slug=slug, visitor=visitor_of(request))
    # Browsers and CDNs revalidate every time; the ETag names the published
    # generation, so an unchanged page costs a 304.
    etag = f'"{public.body["revision"]}-{public.generation}"'
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponseNotModified()
    else:
        html = public.page_html
        if html is None:
            html = _page_html(public.body)
            selectors.public_page_fill(slug, public.generation, html)
        response = HttpResponse(html)
    response["ETag"] = etag
    response["Cache-Control"] = "no-cache"
    return response


def preview_token_make(activity: Activity) -> str:
    return signing.dumps({"activity": activity.pk}, salt=PREVIEW_SALT, compress=True)


def activity_preview(request, token: str) -> HttpResponse:
    """A draft as it would look, for anyone holding an unexpired signed link."""
    try:
        data = signing.loads(token, salt=PREVIEW_SALT, max_age=settings.ACTIVITY_PREVIEW_TTL_SECONDS)
    except signing.SignatureExpired:
        return _unavailable("preview_expired", "This preview link has expired; ask for a new one.", 403)
    except signing.BadSignature:
        return _unavailable("preview_invalid", "This preview link is not valid.", 403)
    activity = get_object_or_404(Activity, pk=data.get("activity"))
    response = HttpResponse(_page_html(selectors.preview_body(activity), preview=True))
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


# --- API --------------------------------------------------------------------------


class ActivityThemeSerializer(serializers.Serializer):
    background_color = serializers.CharField()
    header_image = serializers.CharField()
    share_title = serializers.CharField()
    share_image = serializers.CharField()


class ActivityComponentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField(help_text="Registry key: banner, rich_text, countdown, listing, coupon_pack, ...")
    position = serializers.IntegerField()
    title = serializers.CharField()
    config = serializers.DictField(help_text="The type's public config, frozen at publish.")
    state = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="Per-request live state (types with a live_state hook only; depends on the user).",
    )


class ActivityPublicSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    status = serializers.CharField()
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    theme = ActivityThemeSerializer()
    revision = serializers.IntegerField()
    published_at = serializers.DateTimeField()
    components = ActivityComponentSerializer(many=True)


class ActivityErrorSerializer(serializers.Serializer):
    error = serializers.DictField()


class ActivityDetailApi(APIView):
    """The published snapshot of an online activity; authentication is optional and
    only changes the components' `state`."""

    permission_classes: list = []

    @extend_schema(
        operation_id="activity_retrieve",
        auth=[{"userToken": []}, {}],
        responses={
            200: ActivityPublicSerializer,
            401: OpenApiResponse(ActivityErrorSerializer, description="A token was sent and is invalid or expired."),
            404: OpenApiResponse(
                ActivityErrorSerializer,
                description="activity_not_found, activity_not_started, activity_offline or activity_ended.",
            ),
        },
        tags=["activities"],
    )
    def get(self, request, slug: str):
        public = selectors.public_activity_get(slug)
        if not public.served:
            code, message = public.error
            raise ApiError(code, message, 404)
        activity_view_count(slug=slug, visitor=visitor_of(request))
        user = request.user if isinstance(request.user, EndUser) else None
        body = {**public.body, "components": selectors.components_live_state(public.body["components"], user)}
        response = Response(body)
        response["Cache-Control"] = "private, no-cache"
        response["Vary"] = "Authorization"
        return response
