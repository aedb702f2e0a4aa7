# Every 30 s, so an activity goes online or ends within a minute of its time.
SCHEDULE = {
    "activities.activities_advance": {"task": "activities.activities_advance", "schedule": 30.0},
}
