"""Publishing events onto the contract exchanges."""

from __future__ import annotations

import json

from kombu import Connection, Exchange


def publish_event(
    exchange: str,
    routing_key: str,
    payload: dict | bytes,
    *,
    url: str | None = None,
    connection: Connection | None = None,
    headers: dict | None = None,
) -> None:
    """Publish one event as the other teams do: persistent, UTF-8 JSON, on a durable
    topic exchange. Bytes are sent as they are (tests send broken bodies)."""
    from django.conf import settings

    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode("utf-8")
    if not (headers and "traceparent" in headers):
        from core.telemetry import inject_headers

        headers = inject_headers(dict(headers or {})) or None  # the current trace, when tracing is on
    own = connection is None
    conn = connection or Connection(url or settings.EVENTS_BROKER_URL)
    try:
        with conn.Producer() as producer:
            producer.publish(
                body,
                exchange=Exchange(exchange, type="topic", durable=True),
                routing_key=routing_key,
                declare=[Exchange(exchange, type="topic", durable=True)],
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                headers=headers,
                retry=True,
                retry_policy={"max_retries": 3},
            )
    finally:
        if own:
            conn.release()
