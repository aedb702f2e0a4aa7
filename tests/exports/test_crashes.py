"""Workers killed (SIGKILL, real processes) mid-export and mid-drain."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.redis import get_redis
from exports import drain, services, storage
from exports.models import ClickLogChunk, Partition, PartitionStatus
from tests.attribution.conftest import click_params

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def _clicks(client, link, n: int) -> None:
    for _ in range(n):
        params = click_params("generic", "http://127.0.0.1:9", os="ios", idfa=os.urandom(8).hex())
        assert client.get(f"/t/generic/{link.token}?{urlencode(params)}").status_code == 200


def _until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _run_until_paused(mode: str, tmp_path, **env) -> subprocess.Popen:
    marker = tmp_path / f"{mode}.paused"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.exports.killable", mode, str(marker)],
        cwd=ROOT,
        env={
            **os.environ,
            "KILLABLE_DB_NAME": connection.settings_dict["NAME"],
            "KILLABLE_REDIS_URL": settings.REDIS_URL,
            **{k: str(v) for k, v in env.items()},
        },
    )
    try:
        _until(lambda: marker.exists() or proc.poll() is not None)
        assert proc.poll() is None and marker.read_text() != "finished", "the worker did not pause"
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc


def _rows(dataset, hour) -> list[str]:
    return [
        log_id
        for chunk in ClickLogChunk.objects.filter(dataset=dataset, hour=hour)
        for log_id in drain.chunk_decode(chunk.data).column("log_id").to_pylist()
    ]


def test_a_worker_killed_mid_export_leaves_no_success_and_the_next_run_completes_it(
    client, make_link, settings, tmp_path
):
    settings.EXPORT_URL = str(tmp_path / "export")
    link = make_link("generic", os="ios")
    _clicks(client, link, 3)
    hour = services.hour_floor(timezone.now())
    first = services.partition_export(dataset="clicks", hour=hour, force=True)
    _clicks(client, link, 2)
    _run_until_paused(
        "export",
        tmp_path,
        KILLABLE_EXPORT_URL=settings.EXPORT_URL,
        KILLABLE_DATASET="clicks",
        KILLABLE_HOUR=f"{hour:%Y-%m-%dT%H}",
        EXPORT_PARTITION_LOCK_SECONDS=1,
    )
    folder = Path(settings.EXPORT_URL) / storage.partition_path("clicks", hour)
    assert not (folder / "_SUCCESS").exists()  # readers skip the half-replaced partition
    assert Partition.objects.get(pk=first.pk).status == PartitionStatus.RUNNING
    lock = f"{settings.ATTRIBUTION_REDIS_PREFIX}:export:clicks:{hour:%Y%m%d%H}"
    _until(lambda: not get_redis().exists(lock))  # the dead worker's lock expires

    services.partition_export(dataset="clicks", hour=hour, force=True)
    again = Partition.objects.get(pk=first.pk)
    assert again.status == PartitionStatus.DONE and again.rows == first.rows + 2 and again.attempts == 3
    assert (folder / "_SUCCESS").exists() and sorted(p.name for p in folder.iterdir()) == ["_SUCCESS", "part-0.parquet"]
    assert not (Path(settings.EXPORT_URL) / "clicks" / "_tmp").exists() or not any(
        (Path(settings.EXPORT_URL) / "clicks" / "_tmp").rglob("*.parquet")
    )


def test_a_drainer_killed_after_storing_a_batch_loses_and_duplicates_nothing(client, make_link, tmp_path):
    link = make_link("generic", os="ios")
    _clicks(client, link, 25)
    sent = [eid.decode() for eid, _ in get_redis().xrange(drain.stream_key("clicks"))]
    _run_until_paused("drain", tmp_path, KILLABLE_BATCH=10, EXPORT_DRAIN_LOCK_SECONDS=1)
    hour = services.hour_floor(timezone.now())
    assert ClickLogChunk.objects.count() == 2  # two batches stored, the second never acknowledged
    _clicks(client, link, 5)
    sent += [eid.decode() for eid, _ in get_redis().xrange(drain.stream_key("clicks"), min=f"({sent[-1]}")]

    stored = drain.click_log_drain(wait_seconds=10).stored
    hours = {services.hour_floor(timezone.now()), hour}
    log_ids = [log_id for h in hours for log_id in _rows("clicks", h)]
    assert sorted(log_ids) == sorted(sent) and len(sent) == 30  # every click once
    assert stored["clicks"] == 10  # the acknowledged-too-late batch was not stored again
    assert get_redis().xlen(drain.stream_key("clicks")) <= 1  # drained entries leave Redis
