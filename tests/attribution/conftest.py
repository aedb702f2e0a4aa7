"""Fixtures for attribution: a fake ad platform on loopback, tracking links, clicks."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

import pytest

from attribution import services

SHANGHAI = ZoneInfo("Asia/Shanghai")
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
)
ANDROID_UA = "Mozilla/5.0 (Linux; Android 13; V2227A Build/TP1A.220624.014; wv) AppleWebKit/537.36 Chrome/116.0 Mobile"

SUCCESS = {
    "oceanengine": (200, b'{"code": 0, "msg": "success"}'),
    "kuaishou": (200, b'{"result": 1}'),
    "tencent": (200, b'{"code": 0, "message": ""}'),
    "generic": (204, b""),
}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class AdPlatform:
    """Plays every ad platform's postback endpoint: /<platform>/... on one loopback server.
    `script["tencent"] = [(500, b"..."), ...]` queues answers before the default success."""

    def __init__(self):
        self.requests: list[dict] = []
        self.script: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
        self.lock = threading.Lock()
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                name = parts.path.strip("/").split("/")[0]
                with platform.lock:
                    platform.requests.append(
                        {
                            "platform": name,
                            "method": self.command,
                            "path": parts.path,
                            "query": {k: v[0] for k, v in parse_qs(parts.query).items()},
                            "body": json.loads(body) if body else None,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                        }
                    )
                    queued = platform.script[name]
                    status, answer = queued.pop(0) if queued else SUCCESS.get(name, (404, b"{}"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = _answer  # noqa: N815 (http.server names)
            do_POST = _answer  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self, platform: str | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if platform is None or r["platform"] == platform]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ad_platform(settings):
    platform = AdPlatform()
    settings.POSTBACK_OCEANENGINE_URL = platform.url + "/oceanengine/track/activate/"
    settings.POSTBACK_KUAISHOU_URL = platform.url + "/kuaishou/track/activate"
    settings.POSTBACK_TIMEOUT_SECONDS = 3.0
    yield platform
    platform.close()


@pytest.fixture
def make_link():
    def make(platform: str = "oceanengine", **fields):
        fields.setdefault("app_id", "com.kuaipao.app")
        fields.setdefault("os", "ios" if platform in ("oceanengine", "generic") else "android")
        fields.setdefault("campaign_name", f"{platform} campaign")
        link = services.tracking_link_create(platform=platform, **fields)
        services.tracking_link_sync(link=link)  # on_commit does not fire in `db` tests
        return link

    return make


def click_params(platform: str, ad_platform_url: str, *, os: str = "ios", **device) -> dict[str, str]:
    """Query parameters as the platform sends them once its macros are replaced;
    `device` overrides (idfa=..., imei=..., ...) given raw, hashed here as the platform does."""
    request_id = uuid.uuid4().hex
    ts_ms = int(datetime.now().timestamp() * 1000)
    ip = device.get("ip", "203.0.113.7")
    ua = device.get("ua", IPHONE_UA if os == "ios" else ANDROID_UA)
    idfa, imei = device.get("idfa"), device.get("imei")
    oaid, android_id, caid = device.get("oaid"), device.get("android_id"), device.get("caid")
    if platform == "oceanengine":
        params = {
            "account": "1780000000000001",
            "campaign": "7300000000000002",
            "ad": "7300000000000003",
            "creative": "7300000000000004",
            "click_id": request_id,
            "os": "1" if os == "ios" else "0",
            "idfa": idfa or "__IDFA__",
            "idfa_md5": md5(idfa.upper()) if idfa else "",
            "imei_md5": md5(imei) if imei else "__IMEI__",
            "oaid": oaid or "",
            "oaid_md5": md5(oaid) if oaid else "__OAID_MD5__",
            "android_id_md5": md5(android_id.lower()) if android_id else "",
            "caid": json.dumps([{"caid_md5": md5(caid), "version": "20230330"}]) if caid else "__CAID_MD5__",
            "ip": ip,
            "ua": ua,
            "ts": str(ts_ms),
            "callback": "EJiw267wvfQCGKf2g74ZIPD89-vIATAMOAFCIDIwMjMxMTI3MTAxNTAyMTI3LjAuMC4xMjQ2NjlFOEQxSAA=",
        }
    elif platform == "tencent":
        muid = md5(idfa.upper()) if (os == "ios" and idfa) else md5(imei) if imei else ""
        params = {
            "account": "25610",
            "campaign": "4311",
            "ad": "66213",
            "creative": "81452",
            "click_id": "wx0" + request_id[:20],
            "os": os,
            ("idfa_md5" if os == "ios" else "imei_md5"): muid,
            "oaid": oaid or "",
            "oaid_md5": md5(oaid) if oaid else "",
            "android_id_md5": md5(android_id.lower()) if android_id else "",
            "caid": json.dumps([{"caid": caid, "version": "20230330"}]) if caid else "",
            "ip": ip,
            "ua": ua,
            "ts": str(ts_ms // 1000),
            "callback": quote(f"{ad_platform_url}/tencent/conv?cb={request_id}", safe=""),
        }
    elif platform == "kuaishou":
        params = {
            "account": "9001",
            "campaign": "__DID__",
            "ad": "12345",
            "creative": "67890",
            "idfa_md5": md5(idfa.upper()) if idfa else "__IDFA2__",
            "imei_md5": md5(imei) if imei else "__IMEI2__",
            "oaid": oaid or "__OAID__",
            "oaid_md5": md5(oaid) if oaid else "__OAID2__",
            "android_id_md5": md5(android_id.lower()) if android_id else "__ANDROIDID2__",
            "ip": ip,
            "ua": ua,
            "ts": str(ts_ms),
            "callback": "CKmGtdwBEJCj5PcBGJyQmgQgu7Oh",
        }
    else:
        params = {
            "campaign": "spring",
            "ad": "a1",
            "creative": "c1",
            "click_id": request_id,
            "os": os,
            "idfa": idfa or "",
            "imei_md5": md5(imei) if imei else "",
            "oaid": oaid or "",
            "android_id_md5": md5(android_id.lower()) if android_id else "",
            "caid": caid or "",
            "ip": ip,
            "ua": ua,
            "ts": str(ts_ms),
            "callback": f"{ad_platform_url}/generic/cb?click={request_id}",
        }
    return params


def event_payload(event_type: str, *, device: dict | None = None, at: datetime | None = None, **extra) -> dict:
    at = at or datetime.now(tz=SHANGHAI)
    payload = {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "occurred_at": at.astimezone(SHANGHAI).isoformat(timespec="milliseconds"),
        "app_id": "com.kuaipao.app",
        "os": "ios",
        "user_id": None,
        "device": device or {},
        "ip": "198.51.100.20",
        "ua": "okhttp/4.9",
    }
    payload.update(extra)
    return payload


def later(**delta) -> datetime:
    return datetime.now(tz=SHANGHAI) + timedelta(**delta)
