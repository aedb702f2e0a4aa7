"""Loopback stand-ins for the chat robots (WeCom, DingTalk, Feishu, a generic
webhook) checking contract §7's payload and signature as the real ones do, and an
SMTP server (aiosmtpd) that keeps what it accepted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller


class ChatRobots:
    """Paths /wecom, /dingtalk, /feishu, /webhook; `secrets` per kind; `fail` counts
    how many next requests of a kind get a 500."""

    def __init__(self, secrets: dict[str, str] | None = None):
        self.secrets = secrets or {}
        self.received: list[dict] = []
        self.fail: dict[str, int] = {}
        self.lock = threading.Lock()
        robots = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                kind = parts.path.strip("/").split("/")[0]
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                with robots.lock:
                    if robots.fail.get(kind):
                        robots.fail[kind] -= 1
                        return self._answer(500, {"error": "down"})
                body = json.loads(raw)
                verdict = robots.check(kind, body, raw, query, self.headers)
                with robots.lock:
                    robots.received.append({"kind": kind, "body": body, "query": query, "verdict": verdict})
                if kind == "webhook":
                    return self._answer(204 if verdict == "ok" else 401, {})
                if self.headers.get("Content-Type") != "application/json":
                    verdict = "bad content type"
                field = "code" if kind == "feishu" else "errcode"
                return self._answer(200, {field: 0 if verdict == "ok" else 310000, "msg": verdict})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def check(self, kind: str, body: dict, raw: bytes, query: dict, headers) -> str:
        secret = self.secrets.get(kind)
        if kind == "wecom":
            ok = body.get("msgtype") == "markdown" and isinstance(body["markdown"].get("content"), str)
            return "ok" if ok and query.get("key") == "robot-key" else "bad wecom payload"
        if kind == "dingtalk":
            if body.get("msgtype") != "markdown" or not {"title", "text"} <= set(body.get("markdown", {})):
                return "bad dingtalk payload"
            if secret:
                ts = query.get("timestamp", "")
                want = base64.b64encode(
                    hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
                ).decode()
                # parse_qs already url-decoded the sign once
                if query.get("sign") != want or len(ts) != 13:
                    return "bad dingtalk sign"
            return "ok"
        if kind == "feishu":
            if body.get("msg_type") != "text" or not isinstance(body.get("content", {}).get("text"), str):
                return "bad feishu payload"
            if secret:
                ts = body.get("timestamp", "")
                want = base64.b64encode(hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()
                if body.get("sign") != want or len(str(ts)) != 10:
                    return "bad feishu sign"
            return "ok"
        if kind == "webhook":
            alert = body.get("alert", {})
            keys = {"id", "rule", "severity", "state", "title", "text", "labels", "starts_at", "ends_at", "url"}
            if set(alert) != keys or alert["state"] not in ("firing", "resolved"):
                return "bad webhook payload"
            if secret and headers.get("X-Signature") != hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest():
                return "bad webhook signature"
            return "ok"
        return "unknown robot"

    def of(self, kind: str) -> list[dict]:
        with self.lock:
            return [r for r in self.received if r["kind"] == kind]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class _Keep:
    def __init__(self):
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(envelope)
        return "250 OK"


class SmtpServer:
    def __init__(self):
        self.handler = _Keep()
        with socket.socket() as probe:  # a free port (aiosmtpd's start() connects to the port it was given)
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def messages(self):
        return self.handler.messages

    def close(self):
        self.controller.stop()
