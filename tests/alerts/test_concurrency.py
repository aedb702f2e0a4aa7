"""Truly concurrent clients (threads, each with its own database connection; the
guarantee that matters is MariaDB's): racing detections of one condition open one
alert and send one message, and two `traffic_check` runs at once fire and resolve
a condition once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from alerts import services
from alerts.checks import traffic_check
from alerts.models import Alert, AlertChannel, AlertDelivery
from alerts.services import Detection
from analytics.models import LinkRollup
from tests.alerts.conftest import SECRETS

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
THREADS = 8


def _all_at_once(n: int, work) -> list:
    """Runs work(i) in n threads released together; returns results (or raised errors)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # reported by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


@pytest.fixture
def webhook(robots):
    return services.alert_channel_save(
        channel=AlertChannel(
            name="oncall", kind="webhook", url=f"{robots.url}/webhook", secret=SECRETS["webhook"], cooldown_minutes=60
        )
    )


def test_racing_alert_fire_calls_open_one_alert_and_send_once(robots, webhook):
    for round_ in range(5):
        detection = Detection(
            rule="click_spike",
            fingerprint=f"click_spike:{round_}:ios",
            severity="warning",
            title=f"Clicks spike on link {round_}",
            text="…",
            labels={"link": str(round_)},
        )
        results = _all_at_once(THREADS, lambda i, d=detection: services.alert_fire(detection=d, now=T0))
        assert not [r for r in results if isinstance(r, Exception)], results
        assert len({r.pk for r in results}) == 1
    assert Alert.objects.count() == 5
    assert sorted(Alert.objects.values_list("detections", flat=True)) == [THREADS] * 5
    assert AlertDelivery.objects.count() == 5
    services.deliveries_sweep(now=T0)
    assert len(robots.of("webhook")) == 5


def _spiking_link() -> datetime:
    rows = []
    end = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    for day in range(8):
        for b in range(1, 4):
            rows.append(
                LinkRollup(
                    bucket_start=end - timedelta(days=day, minutes=5 * b),
                    bucket_minutes=5,
                    app_id="com.kuaipao.app",
                    platform="oceanengine",
                    link_id=7,
                    os="ios",
                    clicks=1000 if day == 0 else 100 + day,
                    rolled_at=end,
                )
            )
    LinkRollup.objects.bulk_create(rows)
    return end + timedelta(minutes=1, seconds=5)


def test_two_traffic_checks_at_once_fire_once_and_resolve_once(robots, webhook):
    at = _spiking_link()
    for attempt in range(3):  # the same condition, checked twice at once, three times over
        moment = at + timedelta(seconds=attempt)
        results = _all_at_once(2, lambda i, m=moment: traffic_check(at=m, only=["click_spike"]))
        assert not [r for r in results if isinstance(r, Exception)], results
        assert all(len(r) == 1 for r in results)
    alert = Alert.objects.get()
    assert (alert.state, alert.detections) == ("firing", 6)
    services.deliveries_sweep(now=at + timedelta(minutes=1))
    assert [r["body"]["alert"]["state"] for r in robots.of("webhook")] == ["firing"]
    later = at + timedelta(minutes=30)  # the burst is out of the window: both resolve, one message
    results = _all_at_once(2, lambda i: traffic_check(at=later, only=["click_spike"]))
    assert results == [[], []]
    alert.refresh_from_db()
    assert alert.state == "resolved" and Alert.objects.count() == 1
    services.deliveries_sweep(now=later + timedelta(minutes=1))
    assert [r["body"]["alert"]["state"] for r in robots.of("webhook")] == ["firing", "resolved"]
