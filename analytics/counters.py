"""Page views and unique visitors, counted on the activity page and API path.

One pipelined Redis round trip per served view (no database): `an:pv:{YYYYMMDDHH}`
hash (field = activity slug) and `an:uv:{slug}:{YYYYMMDDHH}` HyperLogLog of
visitors (`u:<user id>` when signed in, else a digest of source address + user
agent). The hourly campaign rollup reads them; they expire after 40 days. A Redis
failure is logged and never breaks the page."""

from __future__ import annotations

import hashlib
import logging
import time

import redis

from attribution.clicks import hour_bucket
from core.auth import EndUser
from core.redis import get_redis

logger = logging.getLogger("huodong.analytics")

PREFIX = "an"
TTL_SECONDS = 40 * 24 * 3600


def views_key(hour: str) -> str:
    return f"{PREFIX}:pv:{hour}"


def visitors_key(slug: str, hour: str) -> str:
    return f"{PREFIX}:uv:{slug}:{hour}"


def visitor_of(request) -> str:
    user = getattr(request, "user", None)
    if isinstance(user, EndUser):
        return f"u:{user.id}"
    source = f"{request.META.get('REMOTE_ADDR', '')}|{request.META.get('HTTP_USER_AGENT', '')[:256]}"
    return "a:" + hashlib.blake2b(source.encode(), digest_size=10).hexdigest()


def activity_view_count(*, slug: str, visitor: str, at: float | None = None) -> None:
    """Count one served view (`at`: epoch seconds, now by default; seed_demo backfills)."""
    hour = hour_bucket(time.time() if at is None else at)
    try:
        pipe = get_redis().pipeline(transaction=False)
        pipe.hincrby(views_key(hour), slug, 1)
        pipe.expire(views_key(hour), TTL_SECONDS)
        pipe.pfadd(visitors_key(slug, hour), visitor)
        pipe.expire(visitors_key(slug, hour), TTL_SECONDS)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("page view not counted", extra={"slug": slug, "error": str(exc)})
