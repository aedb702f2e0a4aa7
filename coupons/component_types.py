"""The `coupon_pack` component type (领券): one coupon pack on an activity page."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_noop

from components.registry import ComponentType, ConfigSerializer, register
from coupons.models import CouponPack
from coupons.selectors import coupon_pack_live_state, coupon_pack_public
from coupons.services import coupon_pack_clone

COUPON_PACK_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "button_text": {
            "type": "string",
            "title": gettext_noop("Button text"),
            "minLength": 1,
            "maxLength": 20,
            "default": "立即领取",
        },
        "show_remaining": {"type": "boolean", "title": gettext_noop("Show remaining"), "default": True},
        "note": {"type": "string", "title": gettext_noop("Note"), "maxLength": 200, "default": ""},
    },
}


class CouponPackPublicSerializer(ConfigSerializer):
    """The component's config plus the pack it shows (frozen in the snapshot);
    the stock and the user's state come live from `live_state`."""

    def to_representation(self, instance) -> dict[str, Any]:
        pack = CouponPack.objects.filter(component=instance).first()
        return {**dict(instance.config), "pack": coupon_pack_public(pack)}


def live_state(*, component, user) -> dict[str, Any]:
    return coupon_pack_live_state(component=component, user=user)


register(
    ComponentType(
        key="coupon_pack",
        label="Coupon pack (领券)",
        schema=COUPON_PACK_SCHEMA,
        serializer=CouponPackPublicSerializer,
        template="components/coupon_pack.html",
        clone=coupon_pack_clone,
        live_state=live_state,
    )
)
