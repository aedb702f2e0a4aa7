from celery.schedules import crontab

# Nightly: drop stored upload files of old import jobs (the job records stay).
SCHEDULE = {
    "listings.import_files_purge": {"task": "listings.import_files_purge", "schedule": crontab(hour=3, minute=30)},
}
