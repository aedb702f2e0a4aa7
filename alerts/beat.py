SCHEDULE = {
    "alerts-deliveries-sweep": {"task": "alerts.tasks.alert_deliveries_sweep_task", "schedule": 60},
}
