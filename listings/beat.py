from celery.schedules import crontab

# Nightly: drop stored upload files of old import jobs (the job records stay).
SCHEDULE = {
    "listings-purge-import-files": {"task": "listings.purge_import_files", "schedule": crontab(hour=3, minute=30)},
}
