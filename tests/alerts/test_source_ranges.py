"""Clicks per source address range: the click script counts each click's /24 (IPv4)
or /48 (IPv6) per 5-minute bucket in the same Lua call; `source_range_spike`
compares each range's window with the same window on previous days (controllable
clock: the history is written into the same Redis hashes the click script fills)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.core.management import call_command

from alerts import ranges
from alerts.checks import traffic_check
from alerts.models import Alert
from core.redis import get_redis
from tests.attribution.conftest import click_params

pytestmark = pytest.mark.django_db
T = datetime(2026, 11, 30, 12, 1, 30, tzinfo=UTC)  # window: 11:45–12:00 (three closed buckets)
RULE = ["source_range_spike"]
FARM, CARRIER = "203.0.113.0/24", "198.51.100.0/24"


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.7", "203.0.113.0/24"),
        (" 10.001.2.255 ", "10.1.2.0/24"),
        ("2001:db8:1:2::5", "2001:db8:1::/48"),
        ("::ffff:203.0.113.9", "203.0.113.0/24"),
        ("203.0.113", ""),
        ("256.1.1.1", ""),
        ("__IP__", ""),
        ("", ""),
        (None, ""),
        ("2001:db8::zz", ""),
    ],
)
def test_source_range_of_an_address(ip, expected):
    assert ranges.source_range(ip) == expected


def test_the_click_door_counts_accepted_and_rejected_clicks_per_range(client, make_link):
    link = make_link("oceanengine")
    for ip in ("203.0.113.7", "203.0.113.99", "2001:db8:1:2::5", "__IP__"):
        query = urlencode(click_params("oceanengine", "http://127.0.0.1:9", idfa="A-1", os="ios", ip=ip))
        assert client.get(f"/t/oceanengine/{link.token}?{query}").status_code == 200
    disabled = make_link("oceanengine", enabled=False)
    query = urlencode(click_params("oceanengine", "http://127.0.0.1:9", idfa="A-2", os="ios", ip="203.0.113.8"))
    assert client.get(f"/t/oceanengine/{disabled.token}?{query}").status_code == 403
    client_redis = get_redis()
    (key,) = client_redis.keys("att:src:*")
    assert client_redis.ttl(key) > 0
    assert ranges._decode(client_redis.hgetall(key)) == {FARM: 3, "2001:db8:1::/48": 1}


def _history(*, days: int, farm_now: int = 0, carrier_per_bucket: int = 60) -> None:
    client = get_redis()
    end = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    for day in range(days + 1):
        for b in range(1, 7):
            start = end - timedelta(days=day, minutes=5 * b)
            counts = {CARRIER: carrier_per_bucket + (day * 7 + b) % 11, "192.0.2.0/24": 2}
            if day == 0 and farm_now and b <= 3:
                counts[FARM] = farm_now
            elif day > 0:
                counts[FARM] = 3 + day % 3  # a few clicks a bucket on ordinary days
            ranges.counts_add(client, start=start, counts=counts, ttl_seconds=20 * 86400)


def test_a_normal_day_from_every_range_raises_nothing():
    _history(days=7)
    assert traffic_check(at=T, only=RULE) == []
    assert traffic_check(at=T + timedelta(minutes=5), only=RULE) == []


def test_a_spike_from_one_range_names_the_range_and_resolves():
    _history(days=7, farm_now=150)  # 450 clicks in 15 min against ~12
    out = StringIO()
    call_command("traffic_check", "--at", T.isoformat(), "--rule", "source_range_spike", stdout=out)
    (line,) = out.getvalue().strip().splitlines()
    assert line.startswith(f"source_range_spike\twarning\tsource {FARM}\tClicks from {FARM}: 450 in 15 min vs")
    alert = Alert.objects.get()
    assert alert.fingerprint == f"source_range_spike:{FARM}" and alert.labels == {"source_range": FARM}
    assert "deny-list" in alert.text and alert.value == 450
    # the closed buckets were compacted: busy ranges kept, the 2-click range dropped, the total kept
    compacted = ranges._decode(get_redis().hgetall(ranges.compact_key(datetime(2026, 11, 30, 11, 55, tzinfo=UTC))))
    assert compacted[FARM] == 150 and "192.0.2.0/24" not in compacted and compacted["_"] > 150
    # a later window without the burst: resolved
    traffic_check(at=T + timedelta(minutes=20), only=RULE)
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_a_busy_range_at_its_usual_level_does_not_fire_but_triples_do():
    _history(days=7, carrier_per_bucket=400)  # a carrier NAT: 1,200+ clicks per window every day
    assert traffic_check(at=T, only=RULE) == []
    ranges.counts_add(get_redis(), start=datetime(2026, 11, 30, 11, 55, tzinfo=UTC), counts={CARRIER: 4000})
    get_redis().delete(ranges.compact_key(datetime(2026, 11, 30, 11, 55, tzinfo=UTC)))
    (finding,) = traffic_check(at=T, only=RULE)
    assert finding.key == f"source {CARRIER}"
