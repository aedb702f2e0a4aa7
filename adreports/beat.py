from celery.schedules import crontab

SCHEDULE = {
    # 05:10 Asia/Shanghai (CELERY_TIMEZONE): yesterday is settled enough, before the 09:00 report.
    # Again at 13:10 so a platform that failed at dawn is retried the same day.
    "adreports.ad_reports_pull": {"task": "adreports.ad_reports_pull", "schedule": crontab(hour="5,13", minute=10)},
}
