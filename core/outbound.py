"""Every outbound HTTP call (postbacks, the payment service, alert channels) goes
through `outbound_request`: one pooled `requests.Session` per thread, so calls to
one host reuse connections, and one place where tracing applies. With tracing on
(core.telemetry) the requests instrumentation sends the W3C `traceparent` of the
current span on each call and records a client span for it.

URLs that came from outside (an ad click's callback) go through `guarded_request`
instead, the server-side request forgery guard: such a request may reach only
public addresses. Loopback, private (RFC 1918, unique-local), link-local (169.254/16,
the cloud metadata services at 169.254.169.254), shared (100.64/10, Alibaba Cloud's
metadata at 100.100.100.200), multicast, reserved and unspecified addresses are
refused, unless the caller allows private addresses (POSTBACK_ALLOW_PRIVATE_HOSTS in
development, where the sandbox and the tests' stand-ins live on loopback).

The check is made twice: on every address the host name resolves to before the
request (a clear reason to record), and on the address the socket actually
connected to, before a byte is sent (so a DNS answer that changes between the two,
"DNS rebinding", gains nothing). Redirects are never followed, proxies from the
environment are ignored (we connect to the address we checked)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()


def outbound_session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
    return session


def outbound_request(method: str, url: str, **kwargs) -> requests.Response:
    """`requests.request` on this thread's pooled session (same arguments)."""
    return outbound_session().request(method, url, **kwargs)


# --- URLs from outside ----------------------------------------------------------
class OutboundRefused(Exception):
    """The destination is not one we may call; nothing was sent."""


def address_refusal(address: str, *, allow_private: bool) -> str | None:
    """Why this IP address may not be called, or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_global and not ip.is_multicast:
        return None
    if allow_private and (ip.is_loopback or ip.is_private or ip.is_link_local):
        return None
    if ip.is_loopback:
        kind = "loopback"
    elif ip.is_link_local:
        kind = "link-local (cloud metadata range)"
    elif ip.is_private:
        kind = "private"
    else:
        kind = "not a public address"
    return f"{ip} is {kind}"


def host_refusal(host: str, port: int, *, allow_private: bool) -> str | None:
    """Resolve `host` and refuse it when any of its addresses may not be called."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise requests.ConnectionError(f"cannot resolve {host!r}: {exc}") from None
    for info in infos:
        reason = address_refusal(str(info[4][0]), allow_private=allow_private)
        if reason:
            return reason if _is_ip(host) else f"{host} resolves to {reason}"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _PeerChecked:
    """Checks the address a new connection reached before anything is sent on it."""

    allow_private = False

    def _new_conn(self):
        sock = super()._new_conn()
        reason = address_refusal(sock.getpeername()[0], allow_private=self.allow_private)
        if reason:
            sock.close()
            raise OutboundRefused(f"connected to {reason}")
        return sock


def _adapter(allow_private: bool) -> type[HTTPAdapter]:
    attrs = {"allow_private": allow_private}
    http_conn = type("PeerCheckedHTTPConnection", (_PeerChecked, HTTPConnection), attrs)
    https_conn = type("PeerCheckedHTTPSConnection", (_PeerChecked, HTTPSConnection), attrs)
    pools = {
        "http": type("PeerCheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("PeerCheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }

    class PeerCheckedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    return PeerCheckedAdapter


_ADAPTERS = {True: _adapter(True), False: _adapter(False)}


def _guarded_session(allow_private: bool) -> requests.Session:
    """This thread's pooled session whose connections check the peer they reached."""
    name = f"guarded_{allow_private}"
    session = getattr(_local, name, None)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # no proxy from the environment: we connect to the checked address
        adapter = _ADAPTERS[allow_private]()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        setattr(_local, name, session)
    return session


def guarded_request(
    method: str, url: str, *, allow_private: bool, timeout: float, data=None, headers=None
) -> requests.Response:
    """Send one request to a URL that came from outside. Raises OutboundRefused
    (nothing sent) or requests.RequestException (network trouble)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused("not an http(s) URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise OutboundRefused("the URL's port is not a number") from None
    reason = host_refusal(parts.hostname, port, allow_private=allow_private)
    if reason:
        raise OutboundRefused(reason)
    return _guarded_session(allow_private).request(
        method, url, data=data, headers=headers, timeout=timeout, allow_redirects=False
    )
