from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts and fraud rules"

    def ready(self) -> None:
        from celery.signals import task_prerun

        from alerts.health import beat_task_started

        task_prerun.connect(beat_task_started, weak=False, dispatch_uid="alerts.beat_task_started")
