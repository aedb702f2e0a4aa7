"""Pipeline-health recording (the doors; writes go through `alerts.services`).

- `click_unavailable_note()`: called by the click door when it answers 503 (click
  storage, Redis, unavailable). The count is kept in the process's memory per
  5-minute bucket and written to `ClickOutage` by a daemon thread every
  FLUSH_SECONDS, so the failing request never waits for the database (the click
  path does not touch it, contracts §1). A failed write keeps the counts for the
  next flush.
- `beat_task_started`: a `task_prerun` receiver (connected in `AlertsConfig.ready`)
  that records, for a task that is an entry of the beat schedule, when it last
  started (`BeatJobRun`).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from functools import lru_cache

logger = logging.getLogger("huodong.alerts")

FLUSH_SECONDS = 5.0
_lock = threading.Lock()
_pending: dict[int, int] = {}  # bucket start (Unix s) -> 503s not yet written
_flusher: threading.Thread | None = None


def click_unavailable_note(*, now: float | None = None) -> None:
    """Count one 503 of the click door (in memory; never raises, never blocks on I/O)."""
    global _flusher
    bucket = int(now if now is not None else time.time()) // 300 * 300
    with _lock:
        _pending[bucket] = _pending.get(bucket, 0) + 1
        if _flusher is None or not _flusher.is_alive():
            _flusher = threading.Thread(target=_flush_loop, name="alerts-503-flush", daemon=True)
            _flusher.start()


def _flush_loop() -> None:
    global _flusher
    from django.db import connections

    try:
        while True:
            time.sleep(FLUSH_SECONDS)
            click_outages_flush()
            with _lock:
                if not _pending:
                    _flusher = None
                    return
    finally:
        connections.close_all()  # this thread's connections only


def click_outages_flush() -> int:
    """Write the counted 503s; returns how many were written."""
    from alerts.services import click_outage_record

    with _lock:
        taken = dict(_pending)
        _pending.clear()
    written = 0
    for bucket, count in sorted(taken.items()):
        try:
            click_outage_record(bucket_start=datetime.fromtimestamp(bucket, tz=UTC), count=count)
            written += count
        except Exception:  # the database is down too: keep them for the next flush
            logger.exception("click 503 count not recorded; kept for the next flush")
            with _lock:
                _pending[bucket] = _pending.get(bucket, 0) + count
    return written


@lru_cache(maxsize=1)
def beat_schedule() -> dict[str, dict]:
    """The beat schedule (every app's beat.py, merged by the Celery app)."""
    from config.celery import app

    app.finalize(auto=True)
    return dict(app.conf.beat_schedule or {})


@lru_cache(maxsize=1)
def _jobs_by_task() -> dict[str, list[str]]:
    jobs: dict[str, list[str]] = {}
    for name, entry in beat_schedule().items():
        jobs.setdefault(entry["task"], []).append(name)
    return jobs


def beat_task_started(sender: object = None, task: object = None, **_: object) -> None:
    """task_prerun: a beat job's task started; record it (never fails the task)."""
    name = getattr(task or sender, "name", None)
    if not isinstance(name, str):
        return
    jobs = _jobs_by_task().get(name)
    if not jobs:
        return
    from alerts.services import beat_run_record

    try:
        for job in jobs:
            beat_run_record(job=job, task=name, at=datetime.now(UTC))
    except Exception:
        logger.exception("beat job run not recorded", extra={"task": name})
