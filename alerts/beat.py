SCHEDULE = {
    "alerts.deliveries_sweep": {"task": "alerts.deliveries_sweep", "schedule": 60},
    "alerts.traffic_check": {"task": "alerts.traffic_check", "schedule": 60},
}
