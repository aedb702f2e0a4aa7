SCHEDULE = {
    "exports.click_log_drain": {"task": "exports.click_log_drain", "schedule": 15},
    "exports.partitions_due": {"task": "exports.partitions_due", "schedule": 300},
    "exports.click_log_purge": {"task": "exports.click_log_purge", "schedule": 3600},
}
