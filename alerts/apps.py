from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = _("Alerts and fraud rules")

    def ready(self) -> None:
        from celery.signals import task_prerun

        from alerts.health import beat_task_started

        task_prerun.connect(beat_task_started, weak=False, dispatch_uid="alerts.beat_task_started")
