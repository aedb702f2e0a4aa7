from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AdreportsConfig(AppConfig):
    name = "adreports"
    verbose_name = _("Ad reports")
