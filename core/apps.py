from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "core"
    # The label of the app before it moved out of config/: tables, migrations,
    # content types and permissions (config.add_profile, ...) keep their names.
    label = "config"
    verbose_name = _("Platform")

    def ready(self) -> None:
        # Each app registers its event handlers in `<app>/handlers.py`.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("handlers")

        # Observability hooks (core/observability.py): database errors, task timings.
        from celery.signals import task_failure, task_postrun, task_prerun
        from django.db.backends.signals import connection_created

        from core import observability

        connection_created.connect(observability.db_connection_instrument, dispatch_uid="huodong.db_errors")
        task_prerun.connect(observability.task_started, dispatch_uid="huodong.task_started", weak=False)
        task_postrun.connect(observability.task_finished, dispatch_uid="huodong.task_finished", weak=False)
        task_failure.connect(observability.task_failed, dispatch_uid="huodong.task_failed", weak=False)
        from core import profiling

        task_prerun.connect(profiling.task_profile_start, dispatch_uid="huodong.task_profile_start", weak=False)
        task_postrun.connect(profiling.task_profile_stop, dispatch_uid="huodong.task_profile_stop", weak=False)
