import json
import logging

import pytest
from django.test import Client


def test_healthz_answers_without_touching_dependencies():
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_reports_each_dependency_green(events):
    response = Client().get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert {"database", "redis", "celery_broker", "events_consumer"} <= set(body["checks"])
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_readyz_is_503_and_names_the_broken_dependency(settings):
    settings.CELERY_BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"
    response = Client().get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["celery_broker"]["ok"] is False and checks["celery_broker"]["detail"]
    assert checks["database"]["ok"] is True


def test_each_request_logs_one_json_line(caplog):
    from config.settings import LOGGING  # the real formatter

    formatter = logging.config.dictConfigClass(LOGGING).configure_formatter(LOGGING["formatters"]["json"])
    with caplog.at_level(logging.INFO, logger="huodong.request"):
        Client().get("/healthz")
    records = [r for r in caplog.records if r.name == "huodong.request"]
    assert len(records) == 1
    line = json.loads(formatter.format(records[0]))
    assert line["http.request.method"] == "GET" and line["url.path"] == "/healthz"
    assert line["http.response.status_code"] == 200
    assert line["latency_ms"] >= 0 and line["event.duration"] >= 0 and "user.id" in line
    assert line["log.logger"] == "huodong.request" and line["log.level"] == "info" and line["message"] == "request"
    assert line["@timestamp"].endswith("Z") and "trace.id" not in line  # tracing is off
