"""An hour of traffic through the real doors, exported (local folder and loopback S3)
and read back with DuckDB as the data team would."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import urlencode

import duckdb
import pytest
from django.utils import timezone

from attribution import services as attribution_services
from attribution.models import Conversion, PostbackAttempt
from exports import services, storage
from exports.models import Partition, PartitionStatus
from exports.schemas import DATASETS
from payments import services as payment_services
from payments.models import Order
from tests.attribution.conftest import click_params
from tests.coupons.factories import coupon_pack_make
from tests.payments.conftest import result_event
from tests.payments.factories import ProductFactory

pytestmark = pytest.mark.django_db

IDFAS = [str(uuid.uuid4()).upper() for _ in range(5)]


def _hours(started):
    """The UTC hour(s) the test's rows fell in (two if it ran across an hour's end)."""
    return sorted({services.hour_floor(started), services.hour_floor(timezone.now())})


def _export_all(started, **kwargs):
    return [
        services.partition_export(dataset=dataset, hour=hour, force=True, **kwargs)
        for hour in _hours(started)
        for dataset in DATASETS
    ]


def _read(root: str, dataset: str) -> str:
    return f"read_parquet('{root}/{dataset}/*/*/*.parquet', hive_partitioning = true)"


def _traffic(client, make_link, ad_platform, claim, order_post, fake_payments, django_capture_on_commit_callbacks):
    link = make_link("oceanengine", os="ios")
    for idfa in IDFAS:
        params = click_params("oceanengine", ad_platform.url, os="ios", idfa=idfa, ip="203.0.113.77")
        assert client.get(f"/t/oceanengine/{link.token}?{urlencode(params)}").status_code == 200
    bad = click_params("oceanengine", ad_platform.url, os="ios", idfa=IDFAS[0], ip="198.51.100.200")
    assert client.get(f"/t/oceanengine/unknown-token?{urlencode(bad)}").status_code == 404
    for n, idfa in enumerate(IDFAS[:2]):
        with django_capture_on_commit_callbacks(execute=True):
            attribution_services.activation_record(
                event_id=str(uuid.uuid4()),
                app_id=link.app_id,
                os="ios",
                user_id=f"u{n}",
                device={"idfa": idfa},
                ip=None,
                ua=None,
                occurred_at=timezone.now(),
            )
    pack = coupon_pack_make()
    for user in ("u0", "u1", "u2"):
        assert claim(pack, user_id=user).status_code in (200, 201)
    product = ProductFactory()
    for user in ("u0", "u1"):
        assert order_post(product.component_id, user_id=user).status_code in (200, 201)
    payment_services.payment_result_apply(payload=result_event(Order.objects.get(user_id="u0"), "PAID"))
    return link


def test_an_hour_of_every_dataset_exports_and_duckdb_joins_it(
    export_url,
    local_copy,
    client,
    make_link,
    ad_platform,
    claim,
    order_post,
    fake_payments,
    django_capture_on_commit_callbacks,
):
    started = timezone.now()
    link = _traffic(
        client, make_link, ad_platform, claim, order_post, fake_payments, django_capture_on_commit_callbacks
    )
    partitions = _export_all(started)
    assert {p.status for p in partitions} == {PartitionStatus.DONE}
    assert Conversion.objects.count() == 2 and PostbackAttempt.objects.count() == 2

    root = local_copy()
    db = duckdb.connect()
    count = {d: db.execute(f"select count(*) from {_read(root, d)}").fetchone()[0] for d in DATASETS}
    assert count == {
        "clicks": 5,
        "click_rejects": 1,
        "conversions": 2,
        "conversion_events": 0,
        "postback_attempts": 2,
        "coupon_claims": 3,
        "coupon_redemptions": 0,
        "orders": 2,
        "payment_results": 1,
    }
    # clicks -> conversions -> postback attempts, on the join ids
    joined = db.execute(
        f"""select c.tracking_link_id, c.idfa, v.conversion_id, a.succeeded, c.ip, a.event_type
            from {_read(root, "clicks")} c
            join {_read(root, "conversions")} v on v.click_id = c.click_id
            join {_read(root, "postback_attempts")} a on a.conversion_id = v.conversion_id
            order by v.conversion_id"""
    ).fetchall()
    conversions = list(Conversion.objects.order_by("pk"))
    assert [(r[0], r[2], r[3], r[5]) for r in joined] == [(link.id, c.pk, True, "activate") for c in conversions]
    assert all(r[4] == "203.0.113.77" for r in joined)  # clicks keep the raw address
    # users -> claims -> orders
    users = db.execute(
        f"""select cl.user_id, count(distinct cl.claim_id), count(distinct o.order_no), max(p.outcome)
            from {_read(root, "coupon_claims")} cl
            left join {_read(root, "orders")} o on o.user_id = cl.user_id
            left join {_read(root, "payment_results")} p on p.order_id = o.order_id
            group by cl.user_id order by cl.user_id"""
    ).fetchall()
    assert [(u, c, o) for u, c, o, _ in users] == [("u0", 1, 1), ("u1", 1, 1), ("u2", 1, 0)]
    assert users[0][3] == "applied"
    # rejects: the address truncated to its /24, the reason kept
    assert db.execute(f"select reason, ip from {_read(root, 'click_rejects')}").fetchall() == [
        ("unknown_link", "198.51.100.0")
    ]
    # every partition is complete; event times are UTC microseconds
    dest = storage.destination()
    for partition in partitions:
        info = dest.filesystem.get_file_info(
            f"{dest.base}/{storage.partition_path(partition.dataset, partition.hour)}/_SUCCESS"
        )
        assert info.size > 0
    kind = db.execute(f"select typeof(click_at) from {_read(root, 'clicks')} limit 1").fetchone()[0]
    assert kind == "TIMESTAMP WITH TIME ZONE"


def test_re_export_replaces_the_partition_whole(export_url, local_copy, client, make_link):
    link = make_link("generic", os="ios")

    def click(n):
        for _ in range(n):
            params = click_params("generic", "http://127.0.0.1:9", os="ios", idfa=str(uuid.uuid4()))
            assert client.get(f"/t/generic/{link.token}?{urlencode(params)}").status_code == 200

    click(2)
    hour = services.hour_floor(timezone.now())
    first = services.partition_export(dataset="clicks", hour=hour, force=True)
    click(3)
    again = services.partition_export(dataset="clicks", hour=hour, force=True)
    assert again.rows == first.rows + 3 and again.attempts == 2
    dest = storage.destination()
    folder = f"{dest.base}/{storage.partition_path('clicks', hour)}"
    names = sorted(info.base_name for info in storage._files(dest.filesystem, folder))
    assert names == ["_SUCCESS", "part-0.parquet"]
    root = local_copy()
    total = duckdb.connect().execute(f"select count(*), count(distinct log_id) from {_read(root, 'clicks')}")
    assert total.fetchone() == (again.rows, again.rows)


def test_an_hour_not_settled_is_refused_without_force_and_beat_queues_settled_ones(settings, tmp_path):
    from core.errors import Conflict

    settings.EXPORT_URL = str(tmp_path)
    now = timezone.now()
    with pytest.raises(Conflict):
        services.partition_export(dataset="orders", hour=services.hour_floor(now), now=now)
    due = services.partitions_due(now=now)
    settled = services.hour_floor(now - timedelta(hours=1, minutes=settings.EXPORT_DELAY_MINUTES))
    assert ("orders", settled) in due and all(hour <= settled for _, hour in due)
    services.partition_export(dataset="orders", hour=settled, now=now)
    assert ("orders", settled) not in services.partitions_due(now=now)
    assert services.partition_export(dataset="orders", hour=settled, now=now).attempts == 1  # done: not redone
    assert Partition.objects.get(dataset="orders", hour=settled).status == PartitionStatus.DONE


def test_a_partition_forced_out_before_its_hour_settled_is_exported_again_once_it_has(settings, tmp_path):
    settings.EXPORT_URL = str(tmp_path)
    now = timezone.now()
    hour = services.hour_floor(now)
    early = services.partition_export(dataset="orders", hour=hour, force=True, now=now)
    assert early.status == PartitionStatus.DONE and early.attempts == 1
    settled = hour + timedelta(hours=1, minutes=settings.EXPORT_DELAY_MINUTES)
    assert ("orders", hour) in services.partitions_due(now=settled)
    # exported_at is the real clock: still early for the hour, so the next run redoes it
    assert services.partition_export(dataset="orders", hour=hour, now=settled).attempts == 2
