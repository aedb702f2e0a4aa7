"""Observability: one trace across the click, the task and the outbound postback
(in-memory span exporter), trace ids in the JSON logs, `/metrics` in Prometheus
text format with counters that move with the traffic sent."""

from __future__ import annotations

import io
import json
import logging
import sys
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, ParentBased, Sampler, SamplingResult
from prometheus_client.parser import text_string_to_metric_families

from attribution import services
from core import telemetry
from tests.attribution.conftest import AdPlatform, click_params

pytestmark = pytest.mark.django_db


class _Switch(Sampler):
    """Samples (parent-based) only while a test has it on, so the rest of the suite
    pays nothing for the provider this module installs."""

    on = False

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):
        if not self.on:
            return SamplingResult(Decision.DROP)
        decide = ParentBased(ALWAYS_ON).should_sample
        return decide(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return "test switch"


_SWITCH = _Switch()
_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans(settings):
    if not telemetry.tracing_enabled():
        assert telemetry.tracing_setup(exporter=_EXPORTER, sampler=_SWITCH)
    settings.TRACING_CLICK_SAMPLE_RATIO = 1.0
    _EXPORTER.clear()
    _SWITCH.on = True
    yield _EXPORTER
    _SWITCH.on = False
    _EXPORTER.clear()


@pytest.fixture
def ad_platform(settings):
    platform = AdPlatform()
    settings.POSTBACK_OCEANENGINE_URL = platform.url + "/oceanengine/track/activate/"
    yield platform
    platform.close()


def _link(platform="oceanengine", **fields):
    link = services.tracking_link_create(
        platform=platform, app_id="com.kuaipao.app", os="ios", campaign_name="obs", **fields
    )
    services.tracking_link_sync(link=link)
    return link


def _lean_click(path: str, **headers) -> int:
    """A click through the production door (config.wsgi: the lean WSGI app, not Django)."""
    from wsgiref.util import setup_testing_defaults

    from config.wsgi import application

    path, _, query = path.partition("?")
    environ = {"PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": "GET", "REMOTE_ADDR": "203.0.113.7"}
    environ.update({"HTTP_" + k.upper(): v for k, v in headers.items()})
    setup_testing_defaults(environ)
    environ["wsgi.errors"] = sys.stderr
    answer = {}
    b"".join(application(environ, lambda status, hdrs: answer.update(status=int(status.split()[0]))))
    return answer["status"]


def _click_path(link, **device) -> str:
    return f"/t/{link.platform}/{link.token}?{urlencode(click_params(link.platform, '', os=link.os, **device))}"


INBOUND = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_click_with_a_traceparent_continues_that_trace_and_its_redis_call_is_a_child(spans):
    link = _link()
    assert _lean_click(_click_path(link, idfa="TR-1"), traceparent=INBOUND) == 200
    by_name = {s.name: s for s in spans.get_finished_spans()}
    click = by_name["GET /t/{platform}/{link_token}"]
    assert format(click.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(click.parent.span_id, "016x") == "b7ad6b7169203331"
    assert click.attributes["http.response.status_code"] == 200
    in_trace = [s for s in spans.get_finished_spans() if s.context.trace_id == click.context.trace_id]
    redis_spans = [s for s in in_trace if s.attributes.get("db.system") == "redis"]
    assert redis_spans and all(s.parent.span_id == click.context.span_id for s in redis_spans)


def test_an_unsampled_click_records_no_span_at_all(spans, settings):
    settings.TRACING_CLICK_SAMPLE_RATIO = 0.0
    link = _link()
    spans.clear()
    assert _lean_click(_click_path(link, idfa="TR-2")) == 200
    assert spans.get_finished_spans() == ()


def test_one_trace_from_an_inbound_request_through_the_task_to_the_postback_carrying_traceparent(
    spans, ad_platform, django_capture_on_commit_callbacks
):
    from opentelemetry import trace

    link = _link()
    assert _lean_click(_click_path(link, idfa="TR-3")) == 200
    with trace.get_tracer("test").start_as_current_span("activation") as parent:
        with django_capture_on_commit_callbacks(execute=True):
            outcome = services.activation_record(
                event_id="tr-act-3",
                app_id=link.app_id,
                os="ios",
                user_id=None,
                device={"idfa": "TR-3"},
                ip=None,
                ua=None,
                occurred_at=timezone.now(),
            )
    assert outcome.outcome == "attributed"
    (sent,) = ad_platform.received("oceanengine")
    trace_id = format(parent.get_span_context().trace_id, "032x")
    assert sent["headers"]["traceparent"].split("-")[1] == trace_id
    finished = [s for s in spans.get_finished_spans() if s.context.trace_id == parent.get_span_context().trace_id]
    kinds = {s.kind for s in finished}
    assert trace.SpanKind.CLIENT in kinds  # the outbound request
    assert any(s.name.startswith("run/") for s in finished)  # the Celery task (eager here)
    # The postback carries the span id of an outbound (CLIENT) span of this trace, not the
    # task's: the whole suite may record other outbound GETs in the trace before it.
    client_spans = {format(s.context.span_id, "016x") for s in finished if s.kind == trace.SpanKind.CLIENT}
    assert sent["headers"]["traceparent"].split("-")[2] in client_spans


@pytest.mark.django_db(transaction=True)
def test_one_trace_across_the_click_the_event_consumer_the_task_and_the_outbound_postback(spans, events, ad_platform):
    from opentelemetry import trace

    from tests.attribution.conftest import event_payload

    link = _link()
    assert _lean_click(_click_path(link, idfa="TR-E2E")) == 200
    (click,) = [s for s in spans.get_finished_spans() if s.name == "GET /t/{platform}/{link_token}"]
    trace_id = click.context.trace_id
    traceparent = f"00-{trace_id:032x}-{click.context.span_id:016x}-01"
    # The app's publisher carries the click's trace in the AMQP header `traceparent`.
    payload = event_payload("app.activated", device={"idfa": "TR-E2E"}, os="ios")
    events.publish("user_center", "app.activated", payload, headers={"traceparent": traceparent})
    events.wait_for(lambda: len(ad_platform.received("oceanengine")) == 1)
    (sent,) = ad_platform.received("oceanengine")
    events.wait_for(lambda: any(s.name.endswith(" process") for s in spans.get_finished_spans()))
    # the task runs when the consumer's batch commits, after the event's span ended
    events.wait_for(lambda: any("postback_deliver" in s.name for s in spans.get_finished_spans()))
    in_trace = [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]
    (consumer,) = [s for s in in_trace if s.name.endswith(".user_center process")]
    assert consumer.parent.span_id == click.context.span_id  # web -> consumer
    assert consumer.attributes["messaging.rabbitmq.destination.routing_key"] == "app.activated"
    (task,) = [s for s in in_trace if s.name.startswith("run/") and "postback_deliver" in s.name]
    # The postback carries an outbound (CLIENT) span of this trace; the chain below proves it
    # is the one inside the task (the whole suite may record other outbound GETs first).
    (outbound,) = [
        s
        for s in in_trace
        if s.kind == trace.SpanKind.CLIENT
        and sent["headers"]["traceparent"] == f"00-{trace_id:032x}-{s.context.span_id:016x}-01"
    ]
    # the outbound call is inside the task, the task inside the consumer's span
    spans_by_id = {s.context.span_id: s for s in in_trace}
    chain, span = [], outbound
    while span.parent is not None and span.parent.span_id in spans_by_id:
        span = spans_by_id[span.parent.span_id]
        chain.append(span)
    assert task in chain and consumer in chain and chain[-1] is click


@pytest.mark.django_db(transaction=True)
def test_an_event_without_traceparent_starts_a_new_trace_and_is_counted(spans, events, settings):
    from tests.attribution.conftest import event_payload

    settings.METRICS_TOKEN = ""
    applied = ("huodong_events_consumed_total", (("outcome", "applied"), ("queue", "user_center")))
    dead = ("huodong_events_dead_lettered_total", (("queue", "user_center"),))
    lag = ("huodong_events_lag_seconds_count", (("queue", "user_center"),))
    before = _scrape(Client(), "")
    events.publish("user_center", "app.activated", event_payload("app.activated", device={"idfa": "TR-NEW"}))
    events.publish("user_center", "app.activated", b"{broken")
    events.wait_for(lambda: len(events.dead_letters()) == 1)
    events.wait_for(lambda: any(s.name.endswith(" process") for s in spans.get_finished_spans()))
    consumers = [s for s in spans.get_finished_spans() if s.name.endswith(".user_center process")]
    assert consumers and all(s.parent is None for s in consumers)
    after = _scrape(Client(), "")
    assert after[applied] - before.get(applied, 0) == 1
    assert after[dead] - before.get(dead, 0) == 1
    assert after[lag] - before.get(lag, 0) == 1


def test_log_lines_carry_the_trace_and_span_ids_in_ecs_fields(spans):
    from opentelemetry import trace

    from core.logs import EcsJsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EcsJsonFormatter())
    log = logging.getLogger("huodong.test.obs")
    log.addHandler(handler)
    try:
        with trace.get_tracer("test").start_as_current_span("work") as span:
            log.warning("inside", extra={"error": "boom", "user": "u1"})
        log.warning("outside")
    finally:
        log.removeHandler(handler)
    inside, outside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert inside["trace.id"] == format(span.get_span_context().trace_id, "032x")
    assert inside["span.id"] == format(span.get_span_context().span_id, "016x")
    assert (inside["log.level"], inside["log.logger"], inside["message"]) == ("warning", "huodong.test.obs", "inside")
    assert inside["error.message"] == "boom" and inside["user.id"] == "u1" and "error" not in inside
    assert inside["@timestamp"].endswith("Z") and inside["ecs.version"]
    assert "trace.id" not in outside


def _scrape(client: Client, token: str) -> dict:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    values = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def test_metrics_need_the_bearer_token_parse_as_prometheus_text_and_move_with_traffic(settings):
    settings.METRICS_TOKEN = "scrape-token-0123456789"
    client = Client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    link = _link()
    accepted = ("huodong_clicks_total", (("outcome", "accepted"), ("platform", "oceanengine")))
    unknown = ("huodong_clicks_total", (("outcome", "unknown_link"), ("platform", "other")))
    health = (
        "huodong_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "/healthz"), ("status", "200")),
    )
    click_route = (("method", "GET"), ("route", "/t/{platform}/{link_token}"), ("status", "200"))
    clicks = ("huodong_http_request_duration_seconds_count", click_route)
    before = _scrape(client, settings.METRICS_TOKEN)
    for i in range(3):
        assert _lean_click(_click_path(link, idfa=f"M-{i}")) == 200
    assert _lean_click("/t/nosuchplatform/abc") == 404
    for _ in range(2):
        assert client.get("/healthz").status_code == 200
    after = _scrape(client, settings.METRICS_TOKEN)
    assert after[accepted] - before.get(accepted, 0) == 3
    assert after[unknown] - before.get(unknown, 0) == 1
    assert after[health] - before.get(health, 0) == 2
    assert after[clicks] - before.get(clicks, 0) == 3


def test_metrics_are_open_without_a_token_in_development(settings):
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics")
    assert response.status_code == 200 and b"huodong_clicks_total" in response.content


def _delta(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0) - before.get(key, 0)


def test_claims_tasks_database_and_redis_errors_are_counted(settings, user_client):
    from django.db import DatabaseError, connection

    from config.celery import app as celery_app
    from core.redis import get_redis
    from tests.coupons.factories import coupon_pack_make

    settings.METRICS_TOKEN = ""

    @celery_app.task(name="tests.observability.boom")
    def boom():
        raise ValueError("boom")

    before = _scrape(Client(), "")
    pack = coupon_pack_make(total_stock=1)
    for user_id, status in (("a", 201), ("b", 409)):
        response = user_client(user_id).post(f"/api/v1/components/{pack.component_id}/claim", HTTP_IDEMPOTENCY_KEY="k")
        assert response.status_code == status
    assert boom.apply(throw=False).failed()  # as a worker runs it: the error is recorded, not raised
    with pytest.raises(DatabaseError), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_for_metrics")
    with pytest.raises(Exception, match="unknown command"):
        get_redis().execute_command("NO_SUCH_COMMAND_FOR_METRICS")
    after = _scrape(Client(), "")
    assert _delta(before, after, "huodong_coupon_claims_total", result="claimed") == 1
    assert _delta(before, after, "huodong_coupon_claims_total", result="sold_out") == 1
    assert _delta(before, after, "huodong_celery_task_failures_total", task="tests.observability.boom") == 1
    duration = "huodong_celery_task_duration_seconds_count"
    assert _delta(before, after, duration, task="tests.observability.boom", state="FAILURE") == 1
    db_errors = sum(v for (name, _), v in after.items() if name == "huodong_db_errors_total")
    assert db_errors - sum(v for (name, _), v in before.items() if name == "huodong_db_errors_total") == 1
    assert _delta(before, after, "huodong_redis_errors_total", error="ResponseError") == 1


def test_outbound_spans_never_record_query_values(spans, ad_platform):
    from core.outbound import outbound_request

    url = ad_platform.url + "/oceanengine/track/activate/?access_token=SECRET-TOKEN&page=2"
    outbound_request("GET", url, timeout=5)
    (client_span,) = [s for s in spans.get_finished_spans() if s.name == "GET"]
    recorded = json.dumps(dict(client_span.attributes))
    assert "SECRET-TOKEN" not in recorded
    assert "access_token=REDACTED" in recorded
