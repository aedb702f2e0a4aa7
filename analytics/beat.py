SCHEDULE = {
    # every closed 5-minute bucket and hour, late data re-rolled, retention applied
    "analytics-rollup-tick": {"task": "analytics.tasks.rollup_tick_task", "schedule": 60},
}
