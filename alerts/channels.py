"""Contract §7: each channel kind's payload, signature and success test.

`message_build` renders one alert as (title, markdown/text); `channel_send` posts it
through the shared outbound session (traceparent when tracing is on) or mails it,
and raises `SendFailed` with the reason when the counterpart did not accept it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import quote_plus

import requests
from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.html import escape

from alerts.models import Alert, AlertChannel, AlertState, ChannelKind
from core.outbound import outbound_request

MAX_TEXT = 4096  # characters of text per message (contract: 4 KB, cut with "…")
TIMEOUT = 10


class SendFailed(Exception):
    pass


@dataclass(frozen=True)
class Message:
    title: str
    text: str  # markdown (plain enough to read as text)
    state: str


def cut(text: str, limit: int = MAX_TEXT) -> str:
    """At most `limit` UTF-8 bytes, cut with "…" beyond."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[: limit - len("…".encode())].decode(errors="ignore") + "…"


def message_build(*, alert: Alert, state: str) -> Message:
    resolved = state == AlertState.RESOLVED
    prefix = "✅ RESOLVED" if resolved else f"🔥 {alert.severity.upper()}"
    title = f"{prefix}: {alert.title}"
    lines = [f"**{title}**", "", alert.text]
    if resolved and alert.ends_at:
        lines.append(f"Resolved at {alert.ends_at.isoformat()} (since {alert.starts_at.isoformat()}).")
    if alert.labels:
        lines.append("Labels: " + ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())))
    if alert.url:
        lines.append(f"[Dashboard]({alert.url})")
    return Message(title=title[:200], text=cut("\n".join(lines)), state=state)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


def feishu_sign(secret: str, timestamp_s: int) -> str:
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def webhook_sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post(url: str, body: bytes, headers: dict | None = None) -> requests.Response:
    try:
        return outbound_request(
            "POST",
            url,
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=TIMEOUT,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc


def _json_code(response: requests.Response, field: str) -> None:
    if response.status_code != 200:
        raise SendFailed(f"HTTP {response.status_code}: {response.text[:200]}")
    try:
        code = response.json().get(field)
    except (ValueError, AttributeError):
        raise SendFailed(f"not a JSON object: {response.text[:200]}") from None
    if code != 0:
        raise SendFailed(f"{field}={code}: {response.text[:200]}")


def _dumps(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def channel_send(*, channel: AlertChannel, alert: Alert, message: Message, now_s: float | None = None) -> None:
    now_s = time.time() if now_s is None else now_s
    kind = channel.kind
    if kind == ChannelKind.WECOM:
        body = _dumps({"msgtype": "markdown", "markdown": {"content": message.text}})
        _json_code(_post(channel.url, body), "errcode")
    elif kind == ChannelKind.DINGTALK:
        url = channel.url
        if channel.secret:
            ts = int(now_s * 1000)
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={dingtalk_sign(channel.secret, ts)}"
        body = _dumps({"msgtype": "markdown", "markdown": {"title": message.title, "text": message.text}})
        _json_code(_post(url, body), "errcode")
    elif kind == ChannelKind.FEISHU:
        payload: dict = {"msg_type": "text", "content": {"text": message.text}}
        if channel.secret:
            ts = int(now_s)
            payload["timestamp"] = str(ts)
            payload["sign"] = feishu_sign(channel.secret, ts)
        _json_code(_post(channel.url, _dumps(payload)), "code")
    elif kind == ChannelKind.WEBHOOK:
        body = _dumps(
            {
                "alert": {
                    "id": alert.pk,
                    "rule": alert.rule,
                    "severity": alert.severity,
                    "state": "resolved" if message.state == AlertState.RESOLVED else "firing",
                    "title": alert.title,
                    "text": message.text,
                    "labels": alert.labels,
                    "starts_at": alert.starts_at.isoformat(),
                    "ends_at": alert.ends_at.isoformat() if alert.ends_at else None,
                    "url": alert.url,
                }
            }
        )
        headers = {"X-Signature": webhook_sign(channel.secret, body)} if channel.secret else {}
        response = _post(channel.url, body, headers)
        if not 200 <= response.status_code < 300:
            raise SendFailed(f"HTTP {response.status_code}: {response.text[:200]}")
    elif kind == ChannelKind.EMAIL:
        recipients = channel.recipients()
        if not recipients:
            raise SendFailed("the channel has no recipients")
        mail = EmailMultiAlternatives(
            subject=f"[Huodong] {message.title}"[:200],
            body=message.text,
            to=recipients,
            connection=get_connection("django.core.mail.backends.smtp.EmailBackend", timeout=TIMEOUT),
        )
        mail.attach_alternative("<pre>" + escape(message.text) + "</pre>", "text/html")
        try:
            mail.send()
        except Exception as exc:  # SMTP refused, connection refused, timeout
            raise SendFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc
    else:
        raise SendFailed(f"unknown channel kind {kind!r}")
