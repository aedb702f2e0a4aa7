SCHEDULE = {
    "attribution-postbacks-sweep": {"task": "attribution.tasks.postbacks_sweep_task", "schedule": 300},
    "attribution-links-resync": {"task": "attribution.tasks.tracking_links_resync_task", "schedule": 600},
    "attribution-pending-events-retry": {"task": "attribution.tasks.pending_events_retry_task", "schedule": 900},
}
