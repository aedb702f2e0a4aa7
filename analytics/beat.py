SCHEDULE = {
    # every closed 5-minute bucket and hour, late data re-rolled, retention applied
    "analytics.rollup_tick": {"task": "analytics.rollup_tick", "schedule": 60},
    # the daily report, once REPORT_DAILY_AT has passed (idempotent: one archive row per day)
    "analytics.daily_report_tick": {"task": "analytics.daily_report_tick", "schedule": 300},
}
