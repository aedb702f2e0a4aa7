"""Tracking links and their Redis replica (the click endpoint reads only the replica)."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from attribution.clicks import link_redis_key
from attribution.models import TrackingLink
from core.redis import get_redis

logger = logging.getLogger("huodong.attribution")

LINK_FIELDS = (
    "platform",
    "app_id",
    "os",
    "campaign_name",
    "device_window_days",
    "ipua_window_hours",
    "postback_activate",
    "postback_register",
    "postback_pay",
    "rate_limit_per_second",
    "enabled",
    "callback_hosts",
)


def _link_mapping(link: TrackingLink) -> dict[str, str]:
    return {
        "id": str(link.id),
        "platform": link.platform,
        "app_id": link.app_id,
        "os": link.os,
        "enabled": "1" if link.enabled else "0",
        "dw": str(link.device_window_days * 86400),
        "iw": str(link.ipua_window_hours * 3600),
        "rl": str(link.rate_limit_per_second),
    }


def _links_replicate(links: list[TrackingLink]) -> None:
    """Rewrite the replicas in one MULTI/EXEC: a click never sees a replica between its
    DEL and its HSET (it would be rejected as an unknown link)."""
    pipe = get_redis().pipeline(transaction=True)
    for link in links:
        key = link_redis_key(link.token)
        pipe.delete(key)
        pipe.hset(key, mapping=dict[Any, str](_link_mapping(link)))
    pipe.execute()


def tracking_link_sync(*, link: TrackingLink) -> None:
    """Replicate one link's settings into Redis (the click endpoint reads only this)."""
    _links_replicate([link])


def _sync_after_commit(link: TrackingLink) -> None:
    def sync() -> None:
        try:
            tracking_link_sync(link=link)
        except Exception:  # the periodic resync repairs it
            logger.exception("tracking link not replicated to redis", extra={"link_id": link.id})

    transaction.on_commit(sync)


@transaction.atomic
def tracking_link_create(
    *,
    platform: str,
    app_id: str,
    os: str,
    campaign_name: str,
    device_window_days: int = 7,
    ipua_window_hours: int = 24,
    postback_activate: bool = True,
    postback_register: bool = False,
    postback_pay: bool = False,
    rate_limit_per_second: int = 1000,
    enabled: bool = True,
    callback_hosts: str = "",
) -> TrackingLink:
    link = TrackingLink(
        callback_hosts=callback_hosts,
        platform=platform,
        app_id=app_id,
        os=os,
        campaign_name=campaign_name,
        device_window_days=device_window_days,
        ipua_window_hours=ipua_window_hours,
        postback_activate=postback_activate,
        postback_register=postback_register,
        postback_pay=postback_pay,
        rate_limit_per_second=rate_limit_per_second,
        enabled=enabled,
    )
    link.full_clean()
    link.save()
    _sync_after_commit(link)
    logger.info("tracking link created", extra={"link_id": link.id, "platform": platform, "app_id": app_id})
    return link


@transaction.atomic
def tracking_link_update(*, link: TrackingLink, **fields: Any) -> TrackingLink:
    unknown = set(fields) - set(LINK_FIELDS)
    if unknown:
        raise TypeError(f"not tracking link settings: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(link, name, value)
    link.full_clean()
    link.save()
    _sync_after_commit(link)
    logger.info("tracking link updated", extra={"link_id": link.id, "fields": sorted(fields)})
    return link


@transaction.atomic
def tracking_link_delete(*, link: TrackingLink) -> None:
    token = link.token
    link.delete()
    transaction.on_commit(lambda: get_redis().delete(link_redis_key(token)))


def tracking_links_resync() -> dict[str, int]:
    """Rewrite every link's replica and drop replicas of links that no longer exist."""
    links = list(TrackingLink.objects.all())
    _links_replicate(links)
    client = get_redis()
    wanted = {link_redis_key(link.token).encode() for link in links}
    unknown = {key for key in client.scan_iter(match=link_redis_key("*"), count=500) if key not in wanted}
    # A link created since `links` was read has committed before its replica was written: keep it.
    token_of = {key: key.decode().rsplit(":", 1)[1] for key in unknown}
    existing = set(TrackingLink.objects.filter(token__in=token_of.values()).values_list("token", flat=True))
    stale = [key for key, token in token_of.items() if token not in existing]
    if stale:
        client.delete(*stale)
    return {"synced": len(links), "removed": len(stale)}
