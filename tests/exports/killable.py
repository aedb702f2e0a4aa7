"""A real worker process for the crash tests, paused at a chosen point until killed.

    python -m tests.exports.killable export|drain MARKER

Reads the test's database, Redis and EXPORT_URL from KILLABLE_* variables; writes
MARKER when it reaches the point (export: new parts in place, `_SUCCESS` not yet
written; drain: a second batch committed, not yet acknowledged), then waits there.
"""

import os
import sys
import time
from pathlib import Path


def main(mode: str, marker: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connections

    from core.redis import get_redis

    connections["default"].settings_dict["NAME"] = os.environ["KILLABLE_DB_NAME"]
    settings.REDIS_URL = os.environ["KILLABLE_REDIS_URL"]
    settings.EXPORT_URL = os.environ.get("KILLABLE_EXPORT_URL", settings.EXPORT_URL)
    get_redis.cache_clear()

    def pause() -> None:
        Path(marker).write_text(str(os.getpid()))
        while True:
            time.sleep(1)

    if mode == "export":
        from exports import services, storage

        storage.before_success = pause
        services.partition_export(
            dataset=os.environ["KILLABLE_DATASET"],
            hour=services.hour_parse(os.environ["KILLABLE_HOUR"]),
            force=True,
        )
    else:
        from exports import drain

        original = drain._store
        batches = []

        def store_then_pause(dataset, entries):
            stored = original(dataset, entries)
            batches.append(stored)
            if len(batches) == 2:
                pause()
            return stored

        drain._store = store_then_pause
        drain.click_log_drain(batch=int(os.environ["KILLABLE_BATCH"]))
    Path(marker).write_text("finished")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
