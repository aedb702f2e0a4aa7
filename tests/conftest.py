"""Shared test fixtures.

Tests run against whatever DATABASE_URL / REDIS_URL / *_BROKER_URL say (the
embedded defaults, or the real MariaDB, Redis and RabbitMQ in CI's second run).
Redis tests use database TEST_REDIS_DB (15) and flush it around each test; event queues get a
per-run prefix so a running `make run` worker never steals a test's messages.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.utils import translation
from kombu import Connection
from rest_framework.test import APIClient

from core.auth import user_token_mint
from core.boot import process_prepare
from core.redis import get_redis

# The test run is an entry point: folders under var/, the embedded Redis when REDIS_URL
# is unset (pytest-django has set Django up by now; nothing has touched Redis yet).
process_prepare()

TEST_QUEUE_PREFIX = f"test-{uuid.uuid4().hex[:8]}"


def _redis_test_url(url: str) -> str:
    db = settings.TEST_REDIS_DB
    if url.startswith("unix://"):
        return re.sub(r"db=\d+", f"db={db}", url) if "db=" in url else url + f"?db={db}"
    return re.sub(r"/\d*$", "", url.split("?")[0]) + f"/{db}"


@pytest.fixture(scope="session", autouse=True)
def _isolated_services():
    redis_url = _redis_test_url(settings.REDIS_URL)
    caches = {"default": {**settings.CACHES["default"], "LOCATION": redis_url}}
    override = override_settings(
        REDIS_URL=redis_url,
        CACHES=caches,
        EVENTS_QUEUE_PREFIX=TEST_QUEUE_PREFIX,
        EVENTS_RETRY_DELAY_MS=50,  # retries due at once: tests await them, never sleep
        ANALYTICS_DEMO_DAYS=0,  # seed_demo's history takes minutes; tests/analytics/test_demo.py makes one day
    )
    override.enable()
    get_redis.cache_clear()
    from config.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    override.disable()
    get_redis.cache_clear()


def pytest_sessionfinish(session, exitstatus):
    """Whatever the test run started, it stops: the embedded Redis server too, when
    this run started it (one found running, e.g. `make run`'s, is left alone)."""
    from core import embedded_redis

    if settings.EMBEDDED_REDIS and embedded_redis.started_here(settings.VAR_DIR):
        get_redis.cache_clear()
        embedded_redis.stop(settings.VAR_DIR)


@pytest.fixture(autouse=True)
def _english_unless_chinese(request):
    """The product speaks Simplified Chinese by default (LANGUAGE_CODE); tests read and
    assert English words, so each test runs in English unless it is marked `chinese`
    (tests/config/test_i18n.py proves the Chinese default). A browser test can still ask
    for Chinese with its Accept-Language (Playwright's `locale="zh-CN"`)."""
    if request.node.get_closest_marker("chinese"):
        yield
        return
    with override_settings(LANGUAGE_CODE="en"), translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _clean_redis():
    get_redis().flushdb()
    yield


@pytest.fixture(scope="session", autouse=True)
def _no_background_503_flush():
    """The click door's 503 counts (alerts.health) are written by a daemon thread after
    FLUSH_SECONDS, on its own connection: outside the test's transaction, so a row it
    committed outlived the test that answered the 503s and added to a later test's
    (tests/alerts/test_pipeline_health.py saw 26 of 25 when tests/attribution ran
    first). In tests that thread only sleeps; a test flushes itself
    (`click_outages_flush`), inside its transaction."""
    from alerts import health

    saved, health.FLUSH_SECONDS = health.FLUSH_SECONDS, 24 * 3600.0
    yield
    health.FLUSH_SECONDS = saved


@pytest.fixture(autouse=True)
def _no_pending_503_counts():
    """Each test starts without 503 counts an earlier test left in the process's memory."""
    from alerts import health

    with health._lock:
        health._pending.clear()
    yield


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user_client() -> Callable[[str], APIClient]:
    """`user_client("10086")`: an API client authenticated as that end user."""

    def make(user_id: str = "10086") -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {user_token_mint(user_id=user_id)}")
        return client

    return make


def _event_queue_names() -> list:
    from core.events.consumer import dead_letter_queue, event_queues, retry_queue

    prefix = settings.EVENTS_QUEUE_PREFIX
    return [*event_queues(prefix), retry_queue(prefix), dead_letter_queue(prefix)]


class EventsHarness:
    """Runs the real, supervised event consumer (as a worker does) against
    EVENTS_BROKER_URL, in threads of the test process."""

    def __init__(self):
        from core.events.consumer import ConsumerSupervisor, declare_topology

        # Start from empty queues: nothing left over by an earlier test is consumed here.
        with Connection(settings.EVENTS_BROKER_URL) as conn:
            declare_topology(conn, settings.EVENTS_QUEUE_PREFIX)
            for queue in _event_queue_names():
                queue(conn.default_channel).purge()
        self.supervisor = ConsumerSupervisor()
        self.supervisor.start()
        if not self.supervisor.ready.wait(15):
            self.supervisor.stop()
            raise RuntimeError("event consumer did not start")

    @property
    def consumer(self):
        return self.supervisor.consumer

    def publish(self, exchange: str, routing_key: str, payload, **kwargs) -> None:
        from core.events.publish import publish_event

        publish_event(exchange, routing_key, payload, **kwargs)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.05)
        raise AssertionError(f"condition not met within {timeout:.0f}s")

    def dead_letters(self) -> list:
        """Drain the dead-letter queue: [(reason, body bytes, headers)]."""
        from core.events.consumer import REASON_HEADER, dead_letter_queue

        out = []
        with Connection(settings.EVENTS_BROKER_URL) as conn:
            queue = dead_letter_queue(settings.EVENTS_QUEUE_PREFIX)(conn.default_channel)
            queue.declare()
            while (message := queue.get(no_ack=True)) is not None:
                out.append((message.headers.get(REASON_HEADER), message.body, message.headers))
        return out

    def stop(self) -> None:
        self.supervisor.stop()


@pytest.fixture
def events(transactional_db):
    """The event consumer running for this test, on the real broker. Handlers
    commit, so tests that use it see committed data (transactional_db)."""
    harness = EventsHarness()
    yield harness
    harness.stop()
    with Connection(settings.EVENTS_BROKER_URL) as conn:
        channel = conn.default_channel
        for queue in _event_queue_names():
            try:
                queue(channel).delete()
            except Exception:
                channel = conn.channel()


@pytest.fixture
def browser_page(request):
    """A headless Chromium page (Debian's chromium, driven by Playwright; no
    browser is ever downloaded). Use with pytest-django's `live_server`. A test
    marked `chinese` browses as a Chinese operator does (locale zh-CN, Accept-Language
    zh-Hans): Django serves it the Chinese admin."""
    from playwright.sync_api import sync_playwright

    chinese = request.node.get_closest_marker("chinese") is not None
    language = (
        {"locale": "zh-CN", "extra_http_headers": {"Accept-Language": "zh-Hans,zh-CN;q=0.9,zh;q=0.8"}}
        if chinese
        else {}
    )

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        context = browser.new_context(viewport={"width": 414, "height": 896}, accept_downloads=True, **language)
        page = context.new_page()
        page.set_default_timeout(15000)
        yield page
        context.close()
        browser.close()


def _staff_login(client, group: str):
    """`client` logged in as a new staff user of `group` (core.services' groups)."""
    from django.contrib.auth.models import Group

    from core.services import groups_sync
    from tests.factories import StaffUserFactory

    groups_sync()
    user = StaffUserFactory()
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(db) -> Callable[[str], Client]:
    """`staff_client(ANALYST_GROUP)`: a new test client logged in as a new staff user
    of that group (one user and client per call)."""
    return lambda group: _staff_login(Client(), group)


@pytest.fixture
def operator_client(client, db):
    """The test client logged in as a staff user of the operator group (the admin's
    campaign staff)."""
    from core.services import OPERATOR_GROUP

    return _staff_login(client, OPERATOR_GROUP)
