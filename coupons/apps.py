from django.apps import AppConfig


class CouponsConfig(AppConfig):
    name = "coupons"

    def ready(self) -> None:
        from core import errors
        from coupons.errors import COUPON_STATUS

        errors.DOMAIN_STATUS.update(COUPON_STATUS)  # the one code -> status mapping of the API
