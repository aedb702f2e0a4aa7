from celery.schedules import crontab

SCHEDULE = {
    "payments.orders_expire": {"task": "payments.orders_expire", "schedule": 60.0},
    # Yesterday's 对账 at 02:30 Asia/Shanghai (CELERY_TIMEZONE).
    "payments.reconciliation_run": {"task": "payments.reconciliation_run", "schedule": crontab(hour=2, minute=30)},
}
