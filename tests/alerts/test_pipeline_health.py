"""Pipeline health, so on-call can tell "we broke" from "the traffic changed": each
check of the `pipeline_health` detector (consumer down or lagging, dead letters
growing, the click door answering 503, a beat job that missed its schedule) and
the postback failure rate per platform, with a controllable clock (`at`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from celery.schedules import crontab
from django.utils import timezone

from alerts import detectors, health
from alerts.checks import traffic_check
from alerts.models import Alert, BeatJobRun, ClickOutage
from analytics.models import LinkRollup
from core.events.liveness import heartbeat_write
from core.models import DeadLetter
from core.redis import get_redis
from tests.attribution.conftest import click_params

pytestmark = pytest.mark.django_db
HEALTH = ["pipeline_health"]


def _components(at: datetime) -> set[str]:
    return {f.key for f in traffic_check(at=at, only=HEALTH)}


@pytest.fixture
def consumer_alive(settings):
    """A live consumer's heartbeat (as a worker's supervisor thread writes it)."""
    settings.EVENTS_CONSUMER_ENABLED = True
    heartbeat_write(consumer_id="test-worker", state={"running": True, "loop_at": time.time(), "handled": 3})


def test_consumer_down_then_back_fires_and_resolves(settings):
    settings.EVENTS_CONSUMER_ENABLED = True
    now = timezone.now()
    findings = traffic_check(at=now, only=HEALTH)
    (down,) = [f for f in findings if f.key == "consumer"]
    assert "consumer down: no heartbeat" in down.text and down.severity == "critical"
    assert Alert.objects.get(fingerprint="pipeline_health:consumer").state == "firing"
    heartbeat_write(consumer_id="w1", state={"running": True, "loop_at": time.time()})
    assert "consumer" not in _components(now + timedelta(minutes=1))
    assert Alert.objects.get(fingerprint="pipeline_health:consumer").state == "resolved"


def test_consumer_lagging_its_loop_stuck_fires(settings):
    settings.EVENTS_CONSUMER_ENABLED = True
    stall = settings.EVENTS_STALL_SECONDS
    heartbeat_write(
        consumer_id="w1",
        state={"running": True, "loop_at": time.time() - stall - 30, "busy_since": time.time() - stall - 30},
    )
    (stuck,) = [f for f in traffic_check(at=timezone.now(), only=HEALTH) if f.key == "consumer"]
    assert "consumer stuck" in stuck.text


def test_dead_letters_growing_fires_past_the_threshold(consumer_alive):
    for i in range(9):
        DeadLetter.objects.create(source="user_center", routing_key="app.activated", reason="bad shape", body=str(i))
    assert "dead_letters" not in _components(timezone.now() + timedelta(seconds=1))
    DeadLetter.objects.create(source="user_center", routing_key="app.activated", reason="bad shape", body="x")
    now = timezone.now()  # after the rows: a slow machine may take seconds to write them
    findings = [f for f in traffic_check(at=now + timedelta(seconds=1), only=HEALTH) if f.key == "dead_letters"]
    assert findings and findings[0].title == "Dead letters growing: 10 in 15 min"
    # fifteen minutes later they are old news: resolved
    assert "dead_letters" not in _components(now + timedelta(minutes=16))
    assert Alert.objects.get(fingerprint="pipeline_health:dead_letters").state == "resolved"


def test_click_door_answering_503_is_counted_and_fires(client, settings, make_link, consumer_alive):
    # no flusher thread writes in tests, and no earlier test's counts are pending
    # (tests/conftest.py): the test flushes itself
    link = make_link("oceanengine")
    query = urlencode(click_params("oceanengine", "http://127.0.0.1:9", idfa="A-1", os="ios"))
    assert client.get(f"/t/oceanengine/{link.token}?{query}").status_code == 200
    working_redis = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: click storage unavailable
    get_redis.cache_clear()
    try:
        for _ in range(25):
            response = client.get(f"/t/oceanengine/{link.token}?{query}")
            assert response.status_code == 503 and response["Retry-After"] == "5"
    finally:
        settings.REDIS_URL = working_redis
        get_redis.cache_clear()
    assert health.click_outages_flush() == 25
    assert ClickOutage.objects.get().count == 25
    assert health.click_outages_flush() == 0
    findings = [f for f in traffic_check(at=timezone.now(), only=HEALTH) if f.key == "click_503"]
    assert len(findings) == 1 and findings[0].title.startswith("Click door answering 503: 25 since")


@pytest.mark.django_db(transaction=True)  # the thread writes on its own connection: committed rows
def test_the_flusher_thread_writes_the_counted_503s_without_the_request_waiting(monkeypatch):
    monkeypatch.setattr(health, "FLUSH_SECONDS", 1.0)
    monkeypatch.setattr(health, "_flusher", None)  # one sleeping since an earlier test (tests/conftest.py) is not ours
    health.click_unavailable_note()
    health.click_unavailable_note()
    assert not ClickOutage.objects.exists()  # counted in memory: nothing written by the requests
    thread = health._flusher
    assert thread is not None
    thread.join(timeout=15)
    assert not thread.is_alive()  # nothing left to write: the thread ended
    assert ClickOutage.objects.get().count == 2


def test_503s_below_the_rate_do_not_fire_among_many_clicks(consumer_alive):
    at = datetime(2026, 11, 30, 2, 7, tzinfo=UTC)
    ClickOutage.objects.create(bucket_start=datetime(2026, 11, 30, 2, 5, tzinfo=UTC), count=30)
    LinkRollup.objects.create(
        bucket_start=datetime(2026, 11, 30, 1, 55, tzinfo=UTC),
        bucket_minutes=5,
        app_id="a",
        platform="oceanengine",
        link_id=1,
        os="ios",
        clicks=9000,
        rolled_at=at,
    )
    assert "click_503" not in _components(at)  # 30 of 9,030: 0.3% < 1%
    ClickOutage.objects.update(count=120)
    assert "click_503" in _components(at)
    assert "click_503" not in _components(at + timedelta(minutes=25))  # out of the window: resolved


def test_concurrent_503_counts_add_up():
    from alerts.services import click_outage_record

    bucket = datetime(2026, 11, 30, 2, 5, tzinfo=UTC)
    click_outage_record(bucket_start=bucket, count=3)
    click_outage_record(bucket_start=bucket, count=4)
    assert ClickOutage.objects.get().count == 7


def test_a_beat_task_records_its_job_and_a_late_job_fires(consumer_alive):
    from alerts.tasks import alert_deliveries_sweep_task

    alert_deliveries_sweep_task.apply()  # task_prerun: the beat job's start is recorded
    run = BeatJobRun.objects.get(job="alerts.deliveries_sweep")
    assert run.task == "alerts.deliveries_sweep"
    started = run.last_run_at
    # every 60 s, 120 s of grace: on time at +3 min, missed after
    assert "beat:alerts.deliveries_sweep" not in _components(started + timedelta(minutes=3))
    findings = traffic_check(at=started + timedelta(minutes=3, seconds=1), only=HEALTH)
    (late,) = [f for f in findings if f.key == "beat:alerts.deliveries_sweep"]
    assert late.title.startswith("Beat job alerts.deliveries_sweep missed its schedule")
    assert late.labels == {"component": "beat", "job": "alerts.deliveries_sweep"}
    alert_deliveries_sweep_task.apply()  # it runs again: resolved
    run.refresh_from_db()
    assert "beat:alerts.deliveries_sweep" not in _components(run.last_run_at + timedelta(seconds=30))
    assert Alert.objects.get(fingerprint="pipeline_health:beat:alerts.deliveries_sweep").state == "resolved"


def test_a_crontab_job_is_due_at_its_next_cron_time():
    local = timezone.get_default_timezone()
    last = datetime(2026, 11, 30, 5, 10, tzinfo=local)
    assert detectors._next_run(crontab(hour="5,13", minute=10), last) == datetime(2026, 11, 30, 13, 10, tzinfo=local)
    assert detectors._next_run(300, last) == last + timedelta(minutes=5)


def _postbacks(platform: str, at: datetime, *, failed: int, ok: int) -> None:
    LinkRollup.objects.create(
        bucket_start=at,
        bucket_minutes=5,
        app_id="com.kuaipao.app",
        platform=platform,
        link_id={"tencent": 1, "oceanengine": 2, "kuaishou": 3}[platform],
        os="android",
        postback_attempts_failed=failed,
        postbacks_succeeded=ok,
        rolled_at=at,
    )


def test_postback_failure_rate_is_judged_per_platform():
    at = datetime(2026, 11, 30, 2, 31, tzinfo=UTC)
    for minutes in (5, 10, 15):
        _postbacks("tencent", at - timedelta(minutes=minutes + 1), failed=12, ok=8)  # 60% failing
        _postbacks("oceanengine", at - timedelta(minutes=minutes + 1), failed=1, ok=40)  # 2%
        _postbacks("kuaishou", at - timedelta(minutes=minutes + 1), failed=3, ok=0)  # too few attempts
    (finding,) = traffic_check(at=at, only=["postback_failures"])
    assert finding.key == "platform tencent" and finding.labels == {"platform": "tencent"}
    assert finding.title == "Postbacks to tencent failing: 60% of 60 attempts"
    assert Alert.objects.get().fingerprint == "postback_failures:tencent"
    assert traffic_check(at=at + timedelta(hours=1), only=["postback_failures"]) == []
    assert Alert.objects.get().state == "resolved"
