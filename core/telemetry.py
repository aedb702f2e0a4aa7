"""Tracing: OpenTelemetry, configured by the standard `OTEL_*` variables.

Tracing is on when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`;
comma-separated for several) and off when it is unset or `none`. Off means no cost:
the SDK and the instrumentations are not even imported, and the helpers below
return at their first line.

When on, one call of `tracing_setup()` per process (config/wsgi.py, the Celery
worker's process init, manage.py commands that serve) installs a tracer provider
(resource from `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`, sampler from
`OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, OTLP endpoint from
`OTEL_EXPORTER_OTLP_ENDPOINT` ...) and the official instrumentations: Django (W3C
`traceparent` accepted on inbound requests), Celery (carried in task headers),
redis, the database client (mysqlclient or sqlite3) and requests (sent on every
outbound call: postbacks, the payment service, alert channels, all through
`core.outbound`).

Two paths are traced by hand: the lean click door (`click_span`: a span for a
sampled share of clicks, `TRACING_CLICK_SAMPLE_RATIO`, or for any click arriving
with a sampled `traceparent`), and event consumption (`event_span`: the parent is
the AMQP message header `traceparent` when the publisher sent one).
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

_state: dict = {"on": None, "tracer": None}


def tracing_requested() -> bool:
    return os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower() not in ("", "none")


def tracing_enabled() -> bool:
    return bool(_state["on"])


def _exporters() -> list:
    names = [n.strip().lower() for n in os.environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    exporters: list[SpanExporter] = []
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        elif name != "none":
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(f"OTEL_TRACES_EXPORTER={name!r}: use otlp, console or none")
    return exporters


def tracing_setup(*, exporter=None, sampler=None, service_name: str = "huodong") -> bool:
    """Install the tracer provider and the instrumentations in this process, once.

    `exporter` and `sampler` (tests) replace the configured exporters with one span
    exporter fed synchronously, and the `OTEL_TRACES_SAMPLER` sampler. Returns
    whether tracing is on."""
    if _state["on"] or (_state["on"] is False and exporter is None):
        return _state["on"]  # set up already, or found off (an explicit exporter still installs)
    if exporter is None and not tracing_requested():
        _state["on"] = False
        return False
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(
        resource=Resource.create({} if named else {"service.name": service_name}),
        **({"sampler": sampler} if sampler is not None else {}),
    )
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        for configured in _exporters():
            provider.add_span_processor(BatchSpanProcessor(configured))
    trace.set_tracer_provider(provider)
    _instrument()
    _state["tracer"] = trace.get_tracer("huodong")
    _state["on"] = True
    return True


def _instrument() -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor

    DjangoInstrumentor().instrument()
    CeleryInstrumentor().instrument()
    RedisInstrumentor().instrument()
    RequestsInstrumentor().instrument(request_hook=_redact_outbound_url)
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    if engine.endswith("mysql"):
        from opentelemetry.instrumentation.mysqlclient import MySQLClientInstrumentor

        MySQLClientInstrumentor().instrument()
    elif engine.endswith("sqlite3"):
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

        SQLite3Instrumentor().instrument()


def _redact_outbound_url(span, request) -> None:
    """Outbound URLs can carry credentials in their query (Tencent's reporting API takes
    `access_token` there; postback callbacks are opaque tokens): spans keep the
    parameter names, never their values."""
    from urllib.parse import parse_qsl, urlsplit, urlunsplit

    url = getattr(request, "url", None)
    if span is None or not span.is_recording() or not url:
        return
    parts = urlsplit(url)
    if not parts.query:
        return
    names = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True)]
    redacted = urlunsplit(parts._replace(query="&".join(f"{name}=REDACTED" for name in names)))
    for attribute in ("http.url", "url.full"):
        span.set_attribute(attribute, redacted)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current sampled span, hex, or None. Cheap when off."""
    if not _state["on"]:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@contextlib.contextmanager
def click_span(environ: Mapping, platform: str) -> Iterator[object | None]:
    """The click's span, for a sampled share of clicks (or a sampled inbound
    `traceparent`); an unsampled click runs under a non-recording parent so that
    the Redis call beneath it records nothing either. Yields the span or None."""
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace

    carrier = {}
    if environ.get("HTTP_TRACEPARENT"):
        carrier = {"traceparent": environ["HTTP_TRACEPARENT"], "tracestate": environ.get("HTTP_TRACESTATE", "")}
    parent = propagate.extract(carrier) if carrier else None
    parent_sampled = parent is not None and trace.get_current_span(parent).get_span_context().trace_flags.sampled
    from django.conf import settings

    if parent_sampled or random.random() < settings.TRACING_CLICK_SAMPLE_RATIO:
        with _state["tracer"].start_as_current_span(
            "GET /t/{platform}/{link_token}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": "GET", "http.route": "/t/{platform}/{link_token}", "platform": platform},
        ) as span:
            yield span
        return
    unsampled = trace.NonRecordingSpan(
        trace.SpanContext(random.getrandbits(128) or 1, random.getrandbits(64) or 1, is_remote=False)
    )
    token = otel_context.attach(trace.set_span_in_context(unsampled))
    try:
        yield None
    finally:
        otel_context.detach(token)


@contextlib.contextmanager
def event_span(*, queue: str, routing_key: str, headers: Mapping | None) -> Iterator[None]:
    """A consumer span for one event; its parent is the message's `traceparent`
    header when the publisher sent one, else it starts a new trace."""
    if not _state["on"]:
        yield
        return
    from opentelemetry import propagate, trace

    carrier = {k: str(v) for k, v in (headers or {}).items() if k in ("traceparent", "tracestate")}
    with _state["tracer"].start_as_current_span(
        f"{queue} process",
        context=propagate.extract(carrier),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.destination.name": queue,
            "messaging.rabbitmq.destination.routing_key": routing_key,
            "messaging.operation.type": "process",
        },
    ):
        yield


def inject_headers(headers: dict) -> dict:
    """Add the current trace's `traceparent` (and `tracestate`) to outgoing headers."""
    if _state["on"]:
        from opentelemetry import propagate

        propagate.inject(headers)
    return headers
