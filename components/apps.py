from django.apps import AppConfig


class ComponentsConfig(AppConfig):
    name = "components"

    def ready(self) -> None:
        # Every app declares its component types in `<app>/component_types.py`.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("component_types")
        # ...and optionally what their settings screen adds, in `<app>/component_admin.py`.
        autodiscover_modules("component_admin")
