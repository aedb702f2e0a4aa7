"""Realistic traffic for demos and tests: clicks through the click door
(`attribution.clicks.click_handle`, what `GET /t/{platform}/{token}` runs) and
activations through the events broker (`publish_event` on `user_center`, as the
user center sends them) or, with `direct`, through the matching service at once.
Options inject an OS's activation drop, click injection (installs seconds after
the click) or a click flood (one device clicking like a machine)."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from attribution import services
from attribution.clicks import click_handle
from attribution.models import TrackingLink
from core.events.publish import publish_event

UAS = {
    "ios": [
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 13_7 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    ],
    "android": [
        "Mozilla/5.0 (Linux; Android 14; V2309A) AppleWebKit/537.36 Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 12; PGT-AN10) AppleWebKit/537.36 Mobile Safari/537.36",
    ],
}


def _os_param(platform: str, os: str) -> str:
    if platform == "oceanengine":
        return "1" if os == "ios" else "0"
    return "" if platform == "kuaishou" else os


@dataclass
class Simulated:
    clicks: int = 0
    activations: int = 0
    dropped: int = 0
    event_ids: list[str] = field(default_factory=list)


def traffic_simulate(
    *,
    links: list[TrackingLink],
    clicks_per_link: int = 20,
    install_rate: float = 0.3,
    drop_os: str = "",
    drop_os_version: str = "",
    injection: int = 0,
    flood_clicks: int = 0,
    direct: bool = False,
    seed: int = 1,
) -> Simulated:
    rng = random.Random(seed)
    done = Simulated()
    for link in links:
        for n in range(clicks_per_link + injection):
            inject = n >= clicks_per_link
            os = link.os or rng.choice(["ios", "android"])
            ua = rng.choice(UAS[os])
            device = (
                {"idfa": str(uuid.UUID(int=rng.getrandbits(128))).upper()}
                if os == "ios"
                else {"oaid": uuid.UUID(int=rng.getrandbits(128)).hex}
            )
            repeats = flood_clicks if (flood_clicks and n == 0) else 1
            for _ in range(repeats):
                params = {**device, "os": _os_param(link.platform, os), "ip": f"203.0.113.{rng.randrange(1, 250)}"}
                now_ms = int(time.time() * 1000)
                params.update(ua=ua, ts=str(now_ms // 1000 if link.platform == "tencent" else now_ms))
                status, _ = click_handle(
                    platform=link.platform, token=link.token, query=urlencode(params), source_ip="203.0.113.1"
                )
                done.clicks += 1 if status == 200 else 0
            if not inject and rng.random() >= install_rate and not (flood_clicks and n == 0):
                continue
            if drop_os == os and (
                not drop_os_version or f"OS {drop_os_version}" in ua or f"Android {drop_os_version}" in ua
            ):
                done.dropped += 1
                continue
            delay = 2 if inject else rng.randrange(60, 3600)
            occurred = datetime.now(UTC) + timedelta(seconds=delay)
            event_id = str(uuid.uuid4())
            raw = {"idfa": device["idfa"]} if "idfa" in device else {"oaid": device["oaid"]}
            if direct:
                services.activation_record(
                    event_id=event_id,
                    app_id=link.app_id,
                    os=os,
                    user_id=None,
                    device=raw,
                    ip="198.51.100.20",
                    ua=ua,
                    occurred_at=occurred,
                )
            else:
                publish_event(
                    "user_center",
                    "app.activated",
                    {
                        "event_id": event_id,
                        "type": "app.activated",
                        "occurred_at": occurred.isoformat(timespec="milliseconds"),
                        "app_id": link.app_id,
                        "os": os,
                        "user_id": None,
                        "device": raw,
                        "ip": "198.51.100.20",
                        "ua": ua,
                    },
                )
            done.activations += 1
            done.event_ids.append(event_id)
    return done
