"""The Celery app: tasks, beat and the event consumers.

Every app may define `tasks.py` (autodiscovered) and `beat.py` with a
`SCHEDULE` dict (merged into beat's schedule). The event consumer bootstep
(core.events.consumer) is attached to every worker.
"""

from __future__ import annotations

import importlib
import os

from celery import Celery
from celery.signals import beat_init, celeryd_init, worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("huodong")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _collect_beat_schedules(sender: Celery, **_: object) -> None:
    from django.apps import apps

    schedule = dict(sender.conf.beat_schedule or {})
    for config in apps.get_app_configs():
        try:
            module = importlib.import_module(f"{config.name}.beat")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.beat":
                raise
            continue
        schedule.update(getattr(module, "SCHEDULE", {}))
    sender.conf.beat_schedule = schedule


@celeryd_init.connect
@beat_init.connect
def _process_prepare(**_: object) -> None:
    # The worker and beat are entry points: folders under var/ and the embedded Redis
    # (when REDIS_URL is unset) before they connect to their broker (core/boot.py).
    from core.boot import process_prepare

    process_prepare()


@worker_init.connect
@worker_process_init.connect
def _tracing_setup(**_: object) -> None:
    # On only when OTEL_TRACES_EXPORTER is set; once per process (core/telemetry.py).
    from core.telemetry import tracing_setup

    tracing_setup(service_name="huodong-worker")


def _install_consumer() -> None:
    from core.events.consumer import EventConsumerStep

    app.steps["consumer"].add(EventConsumerStep)


_install_consumer()
