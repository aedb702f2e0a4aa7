SCHEDULE = {
    "attribution.postbacks_sweep": {"task": "attribution.postbacks_sweep", "schedule": 300},
    "attribution.tracking_links_resync": {"task": "attribution.tracking_links_resync", "schedule": 600},
    "attribution.pending_events_retry": {"task": "attribution.pending_events_retry", "schedule": 900},
}
