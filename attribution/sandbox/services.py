"""The sandbox ad platform: plays the four platforms' postback endpoints (contracts §3)
outside production, records every request and answers as the platform does on success."""

from __future__ import annotations

import json

from attribution import platforms
from attribution.sandbox.models import SandboxPostback

_ANSWERS: dict[str, dict[str, object]] = {
    platforms.OCEANENGINE: {"code": 0, "msg": "success"},
    platforms.TENCENT: {"code": 0, "message": ""},
    platforms.KUAISHOU: {"result": 1},
    platforms.GENERIC: {"ok": True},
}
BODY_LIMIT = 10_000


def sandbox_postback_record(
    *, platform: str, method: str, path: str, query: dict[str, str], body: bytes
) -> dict[str, object]:
    """Record one received postback; returns the platform's success answer."""
    text = body[:BODY_LIMIT].decode("utf-8", "replace")
    event = query.get("event_type") or query.get("event") or ""
    if not event and platform == platforms.TENCENT:
        try:
            event = str(json.loads(text)["actions"][0]["action_type"])
        except (ValueError, KeyError, IndexError, TypeError):
            event = ""
    answer = _ANSWERS[platform]
    SandboxPostback.objects.create(
        platform=platform,
        method=method,
        path=path[:500],
        query={k: v[:500] for k, v in list(query.items())[:50]},
        body=text,
        event_type=event[:32],
        answer=json.dumps(answer),
    )
    return answer
