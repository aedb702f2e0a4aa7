SCHEDULE = {
    # every closed 5-minute bucket and hour, late data re-rolled, retention applied
    "analytics-rollup-tick": {"task": "analytics.tasks.rollup_tick_task", "schedule": 60},
    # the daily report, once REPORT_DAILY_AT has passed (idempotent: one archive row per day)
    "analytics-daily-report": {"task": "analytics.tasks.daily_report_tick_task", "schedule": 300},
}
