# Every 30 s, so an activity goes online or ends within a minute of its time.
SCHEDULE = {
    "activities-tick": {"task": "activities.tasks.activities_tick", "schedule": 30.0},
}
