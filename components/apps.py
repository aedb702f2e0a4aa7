from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ComponentsConfig(AppConfig):
    name = "components"
    verbose_name = _("Components")

    def ready(self) -> None:
        # Every app declares its component types in `<app>/component_types.py`.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("component_types")
        # ...and optionally what their settings screen adds, in `<app>/component_admin.py`.
        autodiscover_modules("component_admin")
