from django.apps import AppConfig


class CouponsConfig(AppConfig):
    name = "coupons"

    def ready(self) -> None:
        from core import errors
        from coupons.errors import EXTRA_STATUS

        errors.DOMAIN_STATUS.update(EXTRA_STATUS)  # the others follow their kind (coupons/errors.py)
