"""Talking to the ad platforms' postback endpoints: the one module that sends a postback
and reads the answer's HTTP status (services see a `PostbackAnswer`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings

from attribution import platforms
from attribution.models import Conversion
from core.outbound import OutboundRefused, guarded_request, outbound_request

BODY_KEPT = 4000  # bytes of the platform's answer kept on the attempt


@dataclass(frozen=True)
class PostbackAnswer:
    succeeded: bool
    status_code: int | None  # None: no answer (timeout, connection refused)
    body: bytes
    error: str  # why it did not succeed; "" when it did


def base_url(platform: str) -> str:
    if platform == platforms.OCEANENGINE:
        return settings.POSTBACK_OCEANENGINE_URL
    if platform == platforms.KUAISHOU:
        return settings.POSTBACK_KUAISHOU_URL
    return ""


def postback_send(request: platforms.PostbackRequest, conversion: Conversion) -> PostbackAnswer:
    """Send one postback and judge the platform's answer. Raises OutboundRefused when
    the callback's host is not allowed (nothing sent)."""
    try:
        response = _send(request, conversion)
    except OutboundRefused:
        raise
    except requests.RequestException as exc:
        return PostbackAnswer(False, None, b"", f"{type(exc).__name__}: {exc}"[:500])
    succeeded = platforms.postback_succeeded(conversion.platform, response.status_code, response.content)
    error = "" if succeeded else f"HTTP {response.status_code}: the platform did not confirm success"
    return PostbackAnswer(succeeded, response.status_code, response.content[:BODY_KEPT], error)


def _send(request: platforms.PostbackRequest, conversion: Conversion):
    """A configured base URL (POSTBACK_*_URL) is trusted as configured. A URL taken from
    the click's callback must be on its platform's allow-list (generic links: plus the
    link's own hosts), and goes through the SSRF guard (core.outbound)."""
    if not request.to_callback:
        return outbound_request(
            request.method,
            request.url,
            data=request.body,
            headers=request.headers,
            timeout=settings.POSTBACK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    host = urlsplit(request.url).hostname or ""
    configured = settings.POSTBACK_CALLBACK_HOSTS.get(conversion.platform, [])
    own = conversion.link.callback_host_list if conversion.platform == platforms.GENERIC else []
    entry = platforms.host_matches(host, configured)
    if entry is None and platforms.host_matches(host, own) is None:
        where = "the link's callback hosts nor " if conversion.platform == platforms.GENERIC else ""
        raise OutboundRefused(f"host {host!r} is on neither {where}the {conversion.platform} callback allow-list")
    # An IP address the deployment lists itself is trusted as configured (like POSTBACK_*_URL).
    trusted = entry is not None and _is_ip(entry.strip("[]"))
    return guarded_request(
        request.method,
        request.url,
        allow_private=settings.POSTBACK_ALLOW_PRIVATE_HOSTS or trusted,
        timeout=settings.POSTBACK_TIMEOUT_SECONDS,
        data=request.body,
        headers=request.headers,
    )


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
