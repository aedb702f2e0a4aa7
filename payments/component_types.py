"""The `paid_sale` component type: a product sold on the activity page."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from components.registry import ComponentType, register
from payments.selectors import paid_sale_state
from payments.serializers import PaidSalePublicSerializer


def clone_paid_sale(*, source, target) -> None:
    """A cloned activity sells a copy of the product, with its own full stock."""
    from payments.models import Product

    product = Product.objects.filter(component=source).first()
    if product is None or Product.objects.filter(component=target).exists():
        return
    product.pk = None
    product.id = None
    product.component = target
    product.held = 0
    product._state.adding = True
    product.save()


PAID_SALE = register(
    ComponentType(
        key="paid_sale",
        label="Paid sale 付费商品",
        schema={
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "button_text": {
                    "type": "string",
                    "title": gettext_noop("Button text"),
                    "default": "立即购买",
                    "maxLength": 20,
                },
                "show_stock": {"type": "boolean", "title": gettext_noop("Show remaining stock"), "default": True},
                "note": {
                    "type": "string",
                    "title": gettext_noop("Small print under the button"),
                    "default": "",
                    "maxLength": 200,
                },
            },
        },
        serializer=PaidSalePublicSerializer,
        template="components/paid_sale.html",
        clone=clone_paid_sale,
        live_state=paid_sale_state,
    )
)
