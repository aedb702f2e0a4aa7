"""The paid_sale component's settings screen (components/admin_extensions.py): the
product it sells (price in yuan, stock, per-user limit, sale window, entitlement),
created and edited together with the component. Writes through payments.services."""

from __future__ import annotations

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from components.admin_extensions import CheckItem, ComponentAdminExtension, register_admin
from components.forms import YuanField, fen_to_yuan, yuan_to_fen
from payments import services
from payments.models import EntitlementKind, Order, OrderState, Product


def _product_of(component) -> Product | None:
    if component is None or component.pk is None:
        return None
    return Product.objects.filter(component=component).first()


class PaidSaleComponentAdmin(ComponentAdminExtension):
    fieldset_title = _("Product: price, stock and what the buyer gets")

    def form_fields(self, component) -> dict[str, forms.Field]:
        return {
            "product_name": forms.CharField(label=_("Product name"), max_length=120),
            "product_description": forms.CharField(
                label=_("Description"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2})
            ),
            "product_price_yuan": YuanField(
                label=_("Price (yuan)"), min_value=fen_to_yuan(1), help_text=_("e.g. 19.90")
            ),
            "product_stock": forms.IntegerField(label=_("Stock"), min_value=0, help_text=_("How many can be sold.")),
            "product_per_user_limit": forms.IntegerField(label=_("Per user"), min_value=1, initial=1),
            "product_sale_starts_at": forms.SplitDateTimeField(
                label=_("Sale opens at"),
                required=False,
                widget=AdminSplitDateTime,
                help_text=_("Empty: with the activity (Asia/Shanghai time)."),
            ),
            "product_sale_ends_at": forms.SplitDateTimeField(
                label=_("Sale closes at"), required=False, widget=AdminSplitDateTime
            ),
            "product_entitlement_kind": forms.ChoiceField(
                label=_("The buyer gets"), choices=EntitlementKind.choices, initial=EntitlementKind.MEMBERSHIP
            ),
            "product_entitlement_days": forms.IntegerField(
                label=_("Membership days"),
                min_value=1,
                required=False,
                help_text=_("Membership: days one purchase adds."),
            ),
            "product_entitlement_quantity": forms.IntegerField(
                label=_("Credits"), min_value=1, initial=1, help_text=_("Credits: how many one purchase grants.")
            ),
        }

    def initial(self, component) -> dict:
        product = _product_of(component)
        if product is None:
            return {"product_name": component.title}
        return {
            "product_name": product.name,
            "product_description": product.description,
            "product_price_yuan": fen_to_yuan(product.price_fen),
            "product_stock": product.stock,
            "product_per_user_limit": product.per_user_limit,
            "product_sale_starts_at": product.sale_starts_at,
            "product_sale_ends_at": product.sale_ends_at,
            "product_entitlement_kind": product.entitlement_kind,
            "product_entitlement_days": product.entitlement_days,
            "product_entitlement_quantity": product.entitlement_quantity,
        }

    def clean(self, form, editors) -> None:
        data = form.cleaned_data
        start, end = data.get("product_sale_starts_at"), data.get("product_sale_ends_at")
        if start and end and end <= start:
            form.add_error("product_sale_ends_at", gettext("The sale must close after it opens."))
        if data.get("product_entitlement_kind") == EntitlementKind.MEMBERSHIP and not data.get(
            "product_entitlement_days"
        ):
            form.add_error("product_entitlement_days", gettext("A membership needs its number of days."))
        product = _product_of(form.instance)
        stock = data.get("product_stock")
        if product is not None and stock is not None and stock < product.held:
            form.add_error(
                "product_stock",
                gettext("%(held)s are already reserved or sold; the stock cannot go below that.")
                % {"held": product.held},
            )

    def write(self, *, component, cleaned, editors, actor) -> None:
        fields = {
            "name": cleaned["product_name"],
            "description": cleaned.get("product_description") or "",
            "price_fen": yuan_to_fen(cleaned["product_price_yuan"]),
            "stock": cleaned["product_stock"],
            "per_user_limit": cleaned["product_per_user_limit"],
            "sale_starts_at": cleaned.get("product_sale_starts_at"),
            "sale_ends_at": cleaned.get("product_sale_ends_at"),
            "entitlement_kind": cleaned["product_entitlement_kind"],
            "entitlement_days": cleaned.get("product_entitlement_days"),
            "entitlement_quantity": cleaned.get("product_entitlement_quantity") or 1,
        }
        product = _product_of(component)
        if product is None:
            services.product_create(component=component, **fields)
        else:
            services.product_update(product=product, **fields)

    def readonly_summary(self, component) -> list[tuple[str, str]]:
        product = _product_of(component)
        if product is None:
            return [(gettext("Product"), gettext("not set up yet: fill in the product above"))]
        paid = Order.objects.filter(product=product, state=OrderState.PAID).count()
        pending = Order.objects.filter(product=product, state=OrderState.PENDING).count()
        return [
            (gettext("Price"), f"¥{fen_to_yuan(product.price_fen)}"),
            (gettext("Left"), f"{product.remaining} / {product.stock}"),
            (gettext("Sold (paid)"), str(paid)),
            (gettext("Reserved (awaiting payment)"), str(pending)),
        ]

    def links(self, component) -> list[tuple[str, str]]:
        product = _product_of(component)
        if product is None:
            return []
        return [
            (gettext("Orders"), reverse("admin:payments_order_changelist") + f"?product__id__exact={product.pk}"),
            (
                gettext("Entitlements"),
                reverse("admin:payments_entitlement_changelist") + f"?product__id__exact={product.pk}",
            ),
        ]

    def delete_refusal(self, component) -> str | None:
        product = _product_of(component)
        if product is None:
            return None
        orders = Order.objects.filter(product=product).count()
        if not orders:
            return None
        return gettext(
            "“%(name)s” cannot be deleted: it has %(orders)s orders, which keep their records and entitlements. "
            "Disable it instead: untick “Enabled” (the component leaves the page at the next publish)."
        ) % {"name": component.title or product.name, "orders": orders}

    def before_delete(self, *, component, actor) -> None:
        product = _product_of(component)
        if product is not None:
            services.product_delete(product=product)

    def checklist(self, component) -> list[CheckItem]:
        name = component.title or gettext("Paid sale")
        product = _product_of(component)
        if product is None:
            return [CheckItem("error", gettext("%s: no product set up yet (price and stock).") % name)]
        out = []
        if product.price_fen <= 0:
            out.append(CheckItem("error", gettext("%s: set the price.") % name))
        if product.remaining <= 0:
            out.append(CheckItem("warning", gettext("%s: nothing left to sell (raise the stock).") % name))
        activity = component.activity
        if product.sale_ends_at and activity.starts_at and product.sale_ends_at <= activity.starts_at:
            out.append(CheckItem("warning", gettext("%s: the sale closes before the activity starts.") % name))
        if not out:
            out.append(
                CheckItem(
                    "ok",
                    gettext("%(name)s: ¥%(price)s, %(left)s in stock.")
                    % {"name": name, "price": fen_to_yuan(product.price_fen), "left": product.remaining},
                )
            )
        return out


register_admin("paid_sale", PaidSaleComponentAdmin())
