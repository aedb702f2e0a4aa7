from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CouponsConfig(AppConfig):
    name = "coupons"
    verbose_name = _("Coupons")

    def ready(self) -> None:
        from core import errors
        from coupons.errors import EXTRA_STATUS

        errors.DOMAIN_STATUS.update(EXTRA_STATUS)  # the others follow their kind (coupons/errors.py)
