"""Nightly housekeeping: idempotency records, processed-event markers and dead letters
older than their retention are deleted; recent ones stay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from config.celery import app
from core import services
from core.models import DeadLetter, IdempotencyRecord, ProcessedEvent

pytestmark = pytest.mark.django_db


def _aged(model, field: str, days: float, **values):
    row = model.objects.create(**values)
    model.objects.filter(pk=row.pk).update(**{field: timezone.now() - timedelta(days=days)})
    return row


def _idempotency(n: int, days: float):
    return _aged(
        IdempotencyRecord,
        "created_at",
        days,
        scope="t",
        user_id="u",
        key=f"k{n}",
        fingerprint="f",
        response_status=201,
        response_body={},
    )


def test_idempotency_records_older_than_the_retention_go(settings, monkeypatch):
    settings.IDEMPOTENCY_RETENTION_DAYS = 7
    monkeypatch.setattr(services, "PURGE_BATCH", 2)  # several batches
    old = [_idempotency(n, 7.1) for n in range(5)]
    recent = [_idempotency(10, 6.9), _idempotency(11, 0)]
    assert services.idempotency_records_purge() == 5
    assert set(IdempotencyRecord.objects.values_list("pk", flat=True)) == {r.pk for r in recent}
    assert not IdempotencyRecord.objects.filter(pk__in=[r.pk for r in old]).exists()


def test_processed_event_markers_older_than_the_retention_go(settings):
    settings.EVENTS_PROCESSED_RETENTION_DAYS = 30
    _aged(ProcessedEvent, "processed_at", 31, source="payment", event_id="old", event_type="paid")
    kept = _aged(ProcessedEvent, "processed_at", 29, source="payment", event_id="new", event_type="paid")
    assert services.processed_events_purge() == 1
    assert list(ProcessedEvent.objects.values_list("pk", flat=True)) == [kept.pk]


def test_dead_letters_older_than_the_retention_go(settings):
    settings.EVENTS_DEAD_LETTER_RETENTION_DAYS = 90
    _aged(DeadLetter, "created_at", 91, source="payment", reason="bad", body="{}")
    kept = _aged(DeadLetter, "created_at", 1, source="payment", reason="bad", body="{}")
    assert services.dead_letters_purge() == 1
    assert list(DeadLetter.objects.values_list("pk", flat=True)) == [kept.pk]


def test_beat_runs_the_three_purges_nightly():
    app.loader.import_default_modules()
    app.finalize(auto=True)
    schedule = app.conf.beat_schedule
    for name in ("core.idempotency_records_purge", "core.processed_events_purge", "core.dead_letters_purge"):
        assert schedule[name]["task"] == name
        assert name in app.tasks


def test_the_tasks_purge(settings):
    app.loader.import_default_modules()
    settings.EVENTS_DEAD_LETTER_RETENTION_DAYS = 1
    _aged(DeadLetter, "created_at", 2, source="user_center", reason="bad", body="{}")
    assert app.tasks["core.dead_letters_purge"].apply().get() == 1
    assert app.tasks["core.idempotency_records_purge"].apply().get() == 0
    assert app.tasks["core.processed_events_purge"].apply().get() == 0
