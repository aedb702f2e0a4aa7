SCHEDULE = {
    "alerts-deliveries-sweep": {"task": "alerts.tasks.alert_deliveries_sweep_task", "schedule": 60},
    "alerts-traffic-check": {"task": "alerts.tasks.traffic_check_task", "schedule": 60},
}
