"""Products: the one write path for creating and editing what a paid-sale component sells
(the admin, the demo, and operator screens of other apps call these)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from components.models import Component
from core.errors import Conflict, DomainError, Message, NotFound
from payments.models import EntitlementKind, Product
from payments.services.orders import PAID_TYPE

# What an operator edits; `held` moves with every order and is never written from here.
PRODUCT_FIELDS = (
    "component",
    "name",
    "description",
    "price_fen",
    "stock",
    "per_user_limit",
    "sale_starts_at",
    "sale_ends_at",
    "entitlement_kind",
    "entitlement_days",
    "entitlement_quantity",
)


def product_check(
    *,
    component: Component | None,
    stock: int | None,
    entitlement_kind: str | None,
    entitlement_days: int | None,
    held: int = 0,
) -> None:
    """The product rules, in one place: raises DomainError (code "invalid") whose
    details["fields"] names each field refused with its reason; the admin form
    shows them beside the fields."""
    problems: dict[str, Message] = {}
    if component is not None and component.type != PAID_TYPE:
        problems["component"] = _("Component %(id)s is a %(type)s, not a paid_sale.") % {
            "id": component.pk,
            "type": component.type,
        }
    if stock is not None and stock < held:
        problems["stock"] = _("%(held)s are already reserved or sold; the stock cannot go below that.") % {"held": held}
    if entitlement_kind == EntitlementKind.MEMBERSHIP and not entitlement_days:
        problems["entitlement_days"] = _("A membership needs its number of days.")
    if problems:
        raise DomainError(" ".join(map(str, problems.values())), code="invalid", details={"fields": problems})


@transaction.atomic
def product_create(
    *,
    component: Component,
    name: str,
    price_fen: int,
    stock: int,
    entitlement_kind: str,
    entitlement_days: int | None = None,
    entitlement_quantity: int = 1,
    per_user_limit: int = 1,
    description: str = "",
    sale_starts_at: datetime | None = None,
    sale_ends_at: datetime | None = None,
) -> Product:
    product_check(
        component=component, stock=stock, entitlement_kind=entitlement_kind, entitlement_days=entitlement_days
    )
    return Product.objects.create(
        component=component,
        name=name,
        description=description,
        price_fen=price_fen,
        stock=stock,
        per_user_limit=per_user_limit,
        entitlement_kind=entitlement_kind,
        entitlement_days=entitlement_days,
        entitlement_quantity=entitlement_quantity,
        sale_starts_at=sale_starts_at,
        sale_ends_at=sale_ends_at,
    )


def _locked(product_id: int) -> Product:
    product = Product.objects.select_for_update().filter(pk=product_id).first()
    if product is None:
        raise NotFound(_("No product %(id)s.") % {"id": product_id}, code="product_not_found")
    return product


@transaction.atomic
def product_update(*, product: Product, **fields: Any) -> Product:
    """Change the given settings (names from PRODUCT_FIELDS) of one product. Only
    those columns are written: `held` moves with every order, and writing back a
    value read earlier would lose the reservations made meanwhile. The stock is
    checked against `held` under the product's row lock (the CheckConstraint
    refuses it too)."""
    unknown = set(fields) - set(PRODUCT_FIELDS)
    if unknown:
        raise TypeError(f"not product settings: {sorted(unknown)}")
    product = _locked(product.pk)
    for name, value in fields.items():
        setattr(product, name, value)
    product_check(
        component=product.component if "component" in fields else None,
        stock=product.stock,
        entitlement_kind=product.entitlement_kind,
        entitlement_days=product.entitlement_days,
        held=product.held,
    )
    product.save(update_fields=[*fields, "updated_at"])  # updated_at: auto_now
    return product


@transaction.atomic
def product_delete(*, product: Product) -> None:
    """Delete a product nobody ordered (a product with orders: Conflict product_has_orders)."""
    product = _locked(product.pk)
    if product.orders.exists():
        raise Conflict(
            _("%(name)s has orders; it cannot be deleted (end its sale instead).") % {"name": product.name},
            code="product_has_orders",
        )
    product.delete()
