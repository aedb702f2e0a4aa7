"""Loopback stand-ins for the three platforms' reporting APIs (contracts §10): real
HTTP servers on 127.0.0.1 (port 0) in threads, with scripted faults. Never patched code."""

from __future__ import annotations

import json
import secrets
import threading
from collections import deque
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Server(ThreadingHTTPServer):
    daemon_threads = True


# What each platform answers for the faults the tests script.
CODES = {
    "oceanengine": {"rate_limited": 40100, "token_expired": 40102, "refresh_invalid": 40103},
    "tencent": {"rate_limited": 11017, "token_expired": 11000, "refresh_invalid": 11012},
    "kuaishou": {"rate_limited": 402004, "token_expired": 401001, "refresh_invalid": 401003},
}
REFRESH_PATHS = {
    "oceanengine": "/open_api/oauth2/refresh_token/",
    "tencent": "/oauth/token",
    "kuaishou": "/rest/openapi/oauth2/authorize/refresh_token",
}
CODE_PATHS = {
    "oceanengine": "/open_api/oauth2/access_token/",
    "tencent": "/oauth/token",
    "kuaishou": "/rest/openapi/oauth2/authorize/access_token",
}
REPORT_PATHS = {
    "oceanengine": "/open_api/2/report/custom/get/",
    "tencent": "/v3.0/daily_reports/get",
    "kuaishou": "/rest/openapi/v1/report/unit_report",
}


def wire_row(platform: str, day: date, campaign: str, ad: str, money, impressions=0, clicks=0, conversions=0) -> dict:
    """One report row as the platform sends it; `money` in the platform's unit and
    JSON type (Ocean Engine: yuan string, Tencent: fen integer, Kuaishou: yuan number)."""
    if platform == "oceanengine":
        return {
            "dimensions": {"stat_time_day": day.isoformat(), "cdp_project_id": campaign, "cdp_promotion_id": ad},
            "metrics": {
                "stat_cost": money,
                "show_cnt": str(impressions),
                "click_cnt": str(clicks),
                "convert_cnt": str(conversions),
            },
        }
    if platform == "tencent":
        return {
            "date": day.isoformat(),
            "campaign_id": int(campaign),
            "adgroup_id": int(ad),
            "cost": money,
            "view_count": impressions,
            "valid_click_count": clicks,
            "activated_count": conversions,
        }
    return {
        "stat_date": day.isoformat(),
        "campaign_id": int(campaign),
        "unit_id": int(ad),
        "charge": money,
        "show": impressions,
        "aclick": clicks,
        "activation": conversions,
    }


class InFlight:
    """Counts report requests in flight across fakes; each request waits (bounded) for a
    second one to arrive, so concurrent pulls overlap and the peak shows the bound."""

    def __init__(self, overlap: int = 2, wait: float = 0.5):
        self.cond = threading.Condition()
        self.now = self.peak = 0
        self.overlap, self.wait = overlap, wait

    def enter(self) -> None:
        with self.cond:
            self.now += 1
            self.peak = max(self.peak, self.now)
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.now >= self.overlap, timeout=self.wait)

    def leave(self) -> None:
        with self.cond:
            self.now -= 1


class FakeAdPlatform:
    """One platform's reporting API, in memory.

    - `rows[day]`: the wire rows of each day (set with `set_day`), paged by the
      requested page/page_size.
    - tokens: `access_token` is accepted until `expire_access()`; a refresh with the
      current `refresh_token` rotates both (refresh tokens are single-use).
    - `faults`: a queue of what the next report requests answer instead of data:
      "rate_limited", "token_expired", "5xx", "garbage", "no_code".
    - `page_faults[page]`: the same, for the request of that page only (once each).
    - `requests`: every request seen as (path, query dict, headers dict, JSON body).
    """

    def __init__(
        self, platform: str, *, app_id: str = "1001", secret: str = "app-secret-xyz", inflight: InFlight | None = None
    ):
        self.platform = platform
        self.inflight = inflight
        self.app_id = app_id
        self.secret = secret
        self.access_token = "at-" + secrets.token_hex(8)
        self.refresh_token = "rt-" + secrets.token_hex(8)
        self.access_expires_in = 86400
        self.refresh_expires_in = 30 * 86400
        self.auth_codes: set[str] = set()
        self.refresh_fails = False
        self.rows: dict[str, list[dict]] = {}
        self.faults: deque[str] = deque()
        self.page_faults: dict[int, list[str]] = {}
        self.requests: list[tuple[str, dict, dict, dict | None]] = []
        self.refreshes = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with fake.lock:
                    fake.requests.append((parts.path, query, dict(self.headers), body))
                counted = fake.inflight is not None and parts.path == REPORT_PATHS[fake.platform]
                if counted:
                    fake.inflight.enter()
                try:
                    status, answer, raw = fake.answer(self.command, parts.path, query, dict(self.headers), body)
                finally:
                    if counted:
                        fake.inflight.leave()
                self._send(status, answer, raw)

            do_GET = _handle  # noqa: N815
            do_POST = _handle  # noqa: N815

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- scripting ------------------------------------------------------------
    def set_day(self, day: date, rows: list[dict]) -> None:
        with self.lock:
            self.rows[day.isoformat()] = rows

    def expire_access(self) -> None:
        """The current access token is now answered with the expired-token code."""
        with self.lock:
            self.access_token = "at-" + secrets.token_hex(8)

    def report_requests(self) -> list:
        return [r for r in self.requests if r[0] == REPORT_PATHS[self.platform]]

    def refresh_requests(self) -> list:
        return [r for r in self.requests if r[0] == REFRESH_PATHS[self.platform] and self._is_refresh(r[1], r[3])]

    def _is_refresh(self, query: dict, body) -> bool:
        if self.platform == "tencent":
            return query.get("grant_type") == "refresh_token"
        return True

    # --- behaviour --------------------------------------------------------------
    def _error(self, name: str) -> tuple[int, dict, None]:
        return 200, {"code": CODES[self.platform][name], "message": name, "data": {}}, None

    def _tokens(self) -> dict:
        self.access_token = "at-" + secrets.token_hex(8)
        self.refresh_token = "rt-" + secrets.token_hex(8)
        data = {"access_token": self.access_token, "refresh_token": self.refresh_token}
        if self.platform == "oceanengine":
            data["expires_in"] = self.access_expires_in
        else:
            data["access_token_expires_in"] = self.access_expires_in
        data["refresh_token_expires_in"] = self.refresh_expires_in
        return {"code": 0, "message": "OK", "data": data}

    def answer(self, method: str, path: str, query: dict, headers: dict, body) -> tuple[int, dict | None, bytes | None]:
        with self.lock:
            if path == REFRESH_PATHS[self.platform] and (self.platform != "tencent" or "refresh_token" in query):
                source = query if self.platform == "tencent" else body or {}
                app_id = source.get("client_id" if self.platform == "tencent" else "app_id")
                secret = source.get("client_secret" if self.platform == "tencent" else "secret")
                if str(app_id) != self.app_id or secret != self.secret:
                    return 200, {"code": 40001, "message": "bad app credentials"}, None
                if self.refresh_fails or source.get("refresh_token") != self.refresh_token:
                    return self._error("refresh_invalid")
                self.refreshes += 1
                return 200, self._tokens(), None
            if path == CODE_PATHS[self.platform]:
                source = query if self.platform == "tencent" else body or {}
                code = source.get("authorization_code" if self.platform == "tencent" else "auth_code")
                if code not in self.auth_codes:
                    return 200, {"code": 40001, "message": "bad auth code"}, None
                self.auth_codes.discard(code)
                return 200, self._tokens(), None
            if path != REPORT_PATHS[self.platform]:
                return 404, {"code": 404, "message": "no such path"}, None
            token = query.get("access_token") if self.platform == "tencent" else headers.get("Access-Token")
            if self.platform == "tencent":
                if not query.get("timestamp", "").isdigit() or not 0 < len(query.get("nonce", "")) <= 32:
                    return 200, {"code": 11001, "message": "timestamp/nonce required"}, None
            if self.platform == "kuaishou":
                params = body or {}
                start, end = params.get("start_date"), params.get("end_date")
                page, size = int(params.get("page", 1)), int(params.get("page_size", 20))
            elif self.platform == "tencent":
                dr = json.loads(query["date_range"])
                start, end = dr["start_date"], dr["end_date"]
                page, size = int(query.get("page", 1)), int(query.get("page_size", 10))
            else:
                start, end = query.get("start_time"), query.get("end_time")
                page, size = int(query.get("page", 1)), int(query.get("page_size", 10))
            fault = None
            if self.page_faults.get(page):
                fault = self.page_faults[page].pop(0)
            elif self.faults:
                fault = self.faults.popleft()
            if fault == "5xx":
                return 502, None, b"<html>Bad Gateway</html>"
            if fault == "garbage":
                return 200, None, b'{"code": 0, "data": {"rows": [tr'
            if fault == "no_code":
                return 200, {"message": "ok"}, None
            if fault in ("rate_limited", "token_expired"):
                return self._error(fault)
            if token != self.access_token:
                return self._error("token_expired")
            rows = [r for d, day_rows in sorted(self.rows.items()) if start <= d <= end for r in day_rows]
            chunk = rows[(page - 1) * size : page * size]
            total_page = max(1, -(-len(rows) // size))
            if self.platform == "oceanengine":
                data = {"rows": chunk, "page_info": {"page": page, "page_size": size, "total_page": total_page}}
            elif self.platform == "tencent":
                data = {"list": chunk, "page_info": {"page": page, "page_size": size, "total_page": total_page}}
            else:
                data = {"details": chunk, "total_count": len(rows)}
            return 200, {"code": 0, "message": "OK", "data": data}, None
