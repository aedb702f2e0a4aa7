from celery.schedules import crontab

# Nightly housekeeping, 04:10-04:20 Asia/Shanghai (CELERY_TIMEZONE); retention in settings
# (IDEMPOTENCY_RETENTION_DAYS, EVENTS_PROCESSED_RETENTION_DAYS, EVENTS_DEAD_LETTER_RETENTION_DAYS).
SCHEDULE = {
    "core.idempotency_records_purge": {
        "task": "core.idempotency_records_purge",
        "schedule": crontab(hour=4, minute=10),
    },
    "core.processed_events_purge": {"task": "core.processed_events_purge", "schedule": crontab(hour=4, minute=15)},
    "core.dead_letters_purge": {"task": "core.dead_letters_purge", "schedule": crontab(hour=4, minute=20)},
}
