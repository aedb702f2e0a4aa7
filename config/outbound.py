"""Every outbound HTTP call (postbacks, the payment service, alert channels) goes
through `outbound_request`: one pooled `requests.Session` per thread, so calls to
one host reuse connections, and one place where tracing applies. With tracing on
(config.telemetry) the requests instrumentation sends the W3C `traceparent` of the
current span on each call and records a client span for it."""

from __future__ import annotations

import threading

import requests

_local = threading.local()


def outbound_session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def outbound_request(method: str, url: str, **kwargs) -> requests.Response:
    """`requests.request` on this thread's pooled session (same arguments)."""
    return outbound_session().request(method, url, **kwargs)
