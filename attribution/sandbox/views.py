"""HTTP door of the sandbox ad platform (AD_SANDBOX_ENABLED; off in production)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from attribution import platforms
from attribution.sandbox import services
from core.errors import json_error


@csrf_exempt
@require_http_methods(["GET", "POST"])
def postback(request: HttpRequest, platform: str, rest: str = "") -> JsonResponse:
    if not settings.AD_SANDBOX_ENABLED:
        return json_error("not_found", "The sandbox ad platform is disabled.", 404)
    if platform not in platforms.PLATFORMS:
        return json_error("not_found", f"No sandbox platform {platform!r}.", 404)
    answer = services.sandbox_postback_record(
        platform=platform,
        method=request.method or "",
        path=request.path,
        query={k: request.GET.get(k, "") for k in request.GET},
        body=request.body,
    )
    return JsonResponse(answer)
