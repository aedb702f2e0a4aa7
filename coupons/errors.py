"""The coupon domain's refusals: `core.errors.DomainError` with a coupon code.

Services and selectors raise these (never DRF errors); the API maps each code to
its HTTP status through `core.errors.DOMAIN_STATUS`, to which `COUPON_STATUS`
is added when the app is ready; the admin shows the message to the operator.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from core.errors import Conflict, DomainError, Forbidden, Message, NotFound

# code -> HTTP status at the API door (unlisted codes are 400)
COUPON_STATUS: dict[str, int] = {
    "component_not_found": 404,
    "not_a_coupon_pack": 404,
    "code_not_found": 404,
    "coupon_not_found": 404,
    "coupon_not_owned": 403,
    "too_many_attempts": 429,
    **dict.fromkeys(
        (
            "sold_out",
            "limit_reached",
            "pack_disabled",
            "not_started",
            "ended",
            "activity_not_online",
            "pack_empty",
            "code_already_redeemed",
            "code_expired",
            "coupon_used",
            "coupon_expired",
            "coupon_not_yet_valid",
            "min_spend_not_met",
            "insufficient_stock",
            "stock_below_taken",
        ),
        409,
    ),
}


class CouponError(DomainError):
    """A coupon rule said no; `code` is one of COUPON_STATUS (or `invalid`).
    `CouponError(code, message)` is made of the kind that gives its status."""

    def __new__(cls, code: str = "invalid", message: Message = "", details=None):
        if cls is CouponError:
            cls = _KINDS.get(COUPON_STATUS.get(code, 400), CouponError)
        return super().__new__(cls)

    def __init__(self, code: str = "invalid", message: Message = "", details=None):
        super().__init__(message, code=code, details=details)


class CouponNotFound(CouponError, NotFound):
    pass


class CouponForbidden(CouponError, Forbidden):
    pass


class CouponConflict(CouponError, Conflict):
    pass


_KINDS: dict[int, type[CouponError]] = {404: CouponNotFound, 403: CouponForbidden, 409: CouponConflict}

# The one status without a family in core.errors; added to DOMAIN_STATUS by CouponsConfig.ready.
EXTRA_STATUS = {"too_many_attempts": 429}


def sold_out() -> CouponError:
    return CouponError("sold_out", _("All packs have been claimed."))


def limit_reached(limit: int) -> CouponError:
    return CouponError(
        "limit_reached", _("You have already claimed this pack %(limit)s time(s), the limit.") % {"limit": limit}
    )


def pack_disabled() -> CouponError:
    return CouponError("pack_disabled", _("This coupon pack is no longer available."))


def pack_empty() -> CouponError:
    return CouponError("pack_empty", _("This coupon pack has no coupons in it yet."))
