"""Celery task names follow one scheme: `<app>.<entity>_<verb>` (usually the service the
task runs), and every beat job is keyed by the task it starts (docs/engineering.md)."""

import re

from config.celery import app

NAME = re.compile(r"^(?P<app>[a-z]+)\.[a-z][a-z0-9]*(_[a-z0-9]+)+$")


def _our_tasks() -> dict[str, object]:
    app.loader.import_default_modules()
    # celery's own, and tasks a test defines for itself (e.g. tests.observability.boom)
    return {name: task for name, task in app.tasks.items() if not name.startswith(("celery.", "tests."))}


def test_every_task_is_named_app_dot_entity_verb():
    tasks = _our_tasks()
    assert len(tasks) >= 20
    for name, task in tasks.items():
        match = NAME.match(name)
        assert match, f"{name}: name it <app>.<entity>_<verb>"
        assert (
            type(task).__module__.split(".")[0] == match["app"] or task.run.__module__.split(".")[0] == match["app"]
        ), f"{name} is defined outside the {match['app']} app"


def test_every_beat_job_is_keyed_by_a_registered_task():
    app.finalize(auto=True)
    schedule = app.conf.beat_schedule
    tasks = _our_tasks()
    assert schedule
    for key, entry in schedule.items():
        assert entry["task"] in tasks, f"beat job {key}: no task {entry['task']}"
        assert key == entry["task"], f"beat job {key}: key it by its task name {entry['task']}"
