"""HTTP doors. The click endpoint's production door is the lean WSGI dispatch in
config/wsgi.py (attribution.clicks.wsgi_app); this DRF view serves the same logic
through Django (test client, runserver) and documents it in the OpenAPI schema."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny

from attribution.clicks import click_handle

_PARAMS = [
    OpenApiParameter(
        "platform", OpenApiTypes.STR, OpenApiParameter.PATH, enum=["oceanengine", "tencent", "kuaishou", "generic"]
    ),
    OpenApiParameter("link_token", OpenApiTypes.STR, OpenApiParameter.PATH),
    *[
        OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.QUERY, required=False, description=text)
        for name, text in (
            ("account", "advertiser / account id"),
            ("campaign", "campaign (project) id"),
            ("ad", "ad (promotion / ad group) id"),
            ("creative", "creative id"),
            ("click_id", "the platform's click / request id"),
            ("os", "0 Android, 1 iOS (oceanengine); android / ios"),
            ("idfa", "raw IDFA"),
            ("idfa_md5", "md5 of upper-case IDFA"),
            ("imei_md5", "md5 of IMEI"),
            ("oaid", "raw OAID"),
            ("oaid_md5", "md5 of OAID"),
            ("android_id_md5", "md5 of Android ID"),
            ("caid", "CAID: raw, or URL-encoded JSON list"),
            ("ip", "the device's IP"),
            ("ua", "the device's user agent"),
            ("ts", "click time (Unix ms; tencent: Unix s)"),
            ("callback", "the platform's callback parameter or URL"),
        )
    ],
]
_ERROR = inline_serializer(
    "AttributionClickError",
    {
        "error": inline_serializer(
            "AttributionClickErrorBody", {"code": serializers.CharField(), "message": serializers.CharField()}
        )
    },
)


@extend_schema(
    operation_id="attribution_click",
    summary="Ad-platform click callback (contracts §1)",
    description='Records one ad click. Answers tencent with {"ret": 0, "msg": "ok"}, the others with {"code": 0}.',
    parameters=_PARAMS,
    auth=[],
    responses={
        200: OpenApiResponse(
            inline_serializer(
                "AttributionClickAccepted",
                {
                    "code": serializers.IntegerField(required=False),
                    "ret": serializers.IntegerField(required=False),
                    "msg": serializers.CharField(required=False),
                },
            )
        ),
        400: OpenApiResponse(_ERROR, description="bad_query: the query breaks a bound (docs/attribution.md)"),
        403: OpenApiResponse(_ERROR, description="link disabled"),
        404: OpenApiResponse(_ERROR, description="unknown platform or token"),
        429: OpenApiResponse(_ERROR, description="rate limited (per source IP or per link)"),
        503: OpenApiResponse(_ERROR, description="click storage unavailable"),
    },
    tags=["attribution"],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def click(request, platform: str, link_token: str):
    status, body = click_handle(
        platform=platform,
        token=link_token,
        query=request.META.get("QUERY_STRING", ""),
        source_ip=request.META.get("REMOTE_ADDR", ""),
    )
    response = HttpResponse(body, status=status, content_type="application/json")
    if status == 503:
        response["Retry-After"] = "5"
    return response
