from django.apps import AppConfig


class AdreportsConfig(AppConfig):
    name = "adreports"
    verbose_name = "Ad reports"
