from django.apps import AppConfig


class ConfigConfig(AppConfig):
    name = "config"
    verbose_name = "Platform"

    def ready(self) -> None:
        # Each app registers its event handlers in `<app>/handlers.py`.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("handlers")
