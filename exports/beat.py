SCHEDULE = {
    "exports-click-log-drain": {"task": "exports.tasks.click_log_drain_task", "schedule": 15},
    "exports-partitions-due": {"task": "exports.tasks.partitions_due_task", "schedule": 300},
    "exports-click-log-purge": {"task": "exports.tasks.click_log_purge_task", "schedule": 3600},
}
