"""Thin doors: the public H5 page, the signed preview and the frontend API (contracts §6).
Rules live in activities.selectors (what is served, preview tokens) and activities.cache
(the cached public view); these views render and speak HTTP."""

from __future__ import annotations

import logging

from django.http import Http404, HttpResponse, HttpResponseNotModified
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.response import Response
from rest_framework.views import APIView

from activities import cache, selectors
from activities.selectors import PREVIEW_SALT, preview_token_make  # noqa: F401 (admin, activities.preview)
from analytics.counters import activity_view_count, visitor_of
from components import registry
from core.auth import EndUser
from core.errors import DomainError, Message, NotFound, domain_status

logger = logging.getLogger(__name__)


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


def _unavailable(code: str, message: Message, status: int = 404) -> HttpResponse:
    html = render_to_string("activities/unavailable.html", {"code": code, "message": message})
    return HttpResponse(html, status=status)


def activity_page(request, slug: str) -> HttpResponse:
    """/a/{slug}/: the published snapshot, server-rendered; cached per generation."""
    public = cache.public_activity_get(slug, with_page=True)
    body = public.body
    if not public.served or body is None:
        return _unavailable(*public.why_not_served())
    activity_view_count(slug=slug, visitor=visitor_of(request))
    # Browsers and CDNs revalidate every time; the ETag names the published
    # generation, so an unchanged page costs a 304.
    etag = f'"{body["revision"]}-{public.generation}"'
    response: HttpResponse
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponseNotModified()
    else:
        html = public.page_html
        if html is None:
            html = _page_html(body)
            cache.public_page_fill(slug, public.generation, html)
        response = HttpResponse(html)
    response["ETag"] = etag
    response["Cache-Control"] = "no-cache"
    return response


def activity_preview(request, token: str) -> HttpResponse:
    """A draft as it would look, for anyone holding an unexpired signed link."""
    try:
        activity = selectors.preview_activity_get(token)
    except NotFound as exc:
        raise Http404(exc.message) from None
    except DomainError as exc:
        return _unavailable(exc.code, exc.message, domain_status(exc))
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


class _LiveStateField(serializers.DictField):
    """`state` is present (a dict, or null when the hook failed) only for types with a
    live_state hook: absent from the component, absent from the output."""

    def get_attribute(self, instance):
        if "state" not in instance:
            raise SkipField
        return instance["state"]


class ActivityComponentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField(help_text="Registry key: banner, rich_text, countdown, listing, coupon_pack, ...")
    position = serializers.IntegerField()
    title = serializers.CharField()
    config = serializers.DictField(help_text="The type's public config, frozen at publish.")
    state = _LiveStateField(
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
    """The error shape (contracts §6) is rendered by the API's exception handler."""

    error = serializers.DictField()


class ActivityDetailApi(APIView):
    """The published snapshot of an online activity; authentication is optional and
    only changes the components' `state`."""

    permission_classes: list = []

    @extend_schema(
        operation_id="activity_retrieve",
        auth=[{"userToken": []}, {}],  # type: ignore[list-item]  # drf-spectacular's stub says list[str]; its docs allow security requirement objects
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
        public = cache.public_activity_get(slug)
        if not public.served:
            code, message = public.why_not_served()
            raise NotFound(message, code=code)
        activity_view_count(slug=slug, visitor=visitor_of(request))
        user = request.user if isinstance(request.user, EndUser) else None
        response = Response(ActivityPublicSerializer(selectors.public_activity_body(public, user)).data)
        response["Cache-Control"] = "private, no-cache"
        response["Vary"] = "Authorization"
        return response
