"""Operators' screens for paid sales. Every write is a service call (payments.services)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.admin_kit import DomainErrorMixin, LedgerSearchMixin, NoWriteBackMixin, ReadOnlyInline, form_domain_errors
from payments import selectors, services
from payments.models import (
    Entitlement,
    Order,
    OrderEvent,
    PaymentResult,
    Product,
    ReconciliationItem,
    ReconciliationReport,
)
from payments.sandbox.models import SandboxPaycode


def _yuan(fen: int | None) -> str:
    return "—" if fen is None else f"¥{fen / 100:.2f}"


class ProductAdminForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = services.PRODUCT_FIELDS

    def clean(self):
        data = super().clean()
        with form_domain_errors(self):  # the rules live in the service; shown beside their fields
            services.product_check(
                component=data.get("component"),
                stock=data.get("stock"),
                entitlement_kind=data.get("entitlement_kind"),
                entitlement_days=data.get("entitlement_days"),
                held=self.instance.held if self.instance.pk else 0,
            )
        return data


@admin.register(Product)
class ProductAdmin(DomainErrorMixin, admin.ModelAdmin):
    form = ProductAdminForm
    list_display = (
        "name",
        "component",
        "price_yuan",
        "stock",
        "sold",
        "reserved",
        "remaining_display",
        "per_user_limit",
    )
    search_fields = ("name",)
    list_filter = ("entitlement_kind",)
    raw_id_fields = ("component",)
    readonly_fields = ("held", "created_at", "updated_at")

    def get_queryset(self, request):
        return selectors.products_with_counts().select_related("component")

    def get_readonly_fields(self, request, obj=None):
        # a product stays with its component (edited on the component's screen too)
        return (*self.readonly_fields, "component") if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in services.PRODUCT_FIELDS if name in form.cleaned_data}
        if change:  # writes only these fields: never a stale `held`
            saved = services.product_update(product=obj, **values)
        else:
            saved = services.product_create(**values)
        obj.pk, obj.held = saved.pk, saved.held

    def delete_model(self, request, obj):
        services.product_delete(product=obj)

    def delete_queryset(self, request, queryset):
        for product in queryset:
            services.product_delete(product=product)

    @admin.display(description=_("price (¥)"))
    def price_yuan(self, obj):
        return f"{obj.price_fen / 100:.2f}"

    @admin.display(description=_("sold (paid)"), ordering="sold_count")
    def sold(self, obj):
        return obj.sold_count

    @admin.display(description=_("reserved (pending)"), ordering="reserved_count")
    def reserved(self, obj):
        return obj.reserved_count

    @admin.display(description=_("remaining"))
    def remaining_display(self, obj):
        return obj.remaining


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("created_at", "from_state", "to_state", "cause", "detail")
    readonly_fields = fields
    verbose_name_plural = _("timeline (state moves with their causes)")


class PaymentResultInline(ReadOnlyInline):
    model = PaymentResult
    fields = (
        "received_at",
        "source",
        "status",
        "amount_fen",
        "channel",
        "transaction_id",
        "outcome",
        "flagged",
        "reason",
    )
    readonly_fields = fields
    verbose_name_plural = _("payment events")


@admin.register(Order)
class OrderAdmin(LedgerSearchMixin, NoWriteBackMixin, DomainErrorMixin, admin.ModelAdmin):
    list_display = ("order_no", "product", "user_id", "amount", "state", "refund_required", "created_at", "paid_at")
    # Date filters are ranges (no date_hierarchy: it needs MariaDB's time-zone tables).
    list_filter = ("state", "refund_required", "product", "close_cause", "created_at", "paid_at")
    ledger_search_fields = ("order_no", "user_id", "paycode")
    inlines = [OrderEventInline, PaymentResultInline]
    actions = ["refund_orders"]
    readonly_fields = [f.name for f in Order._meta.fields]

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(
        description=_("Mark refunded (money returned in the payment console): revoke entitlement"),
        permissions=["change"],
    )
    def refund_orders(self, request, queryset):
        done = services.orders_refund(
            order_ids=list(queryset.values_list("pk", flat=True)), operator=request.user.username
        )
        self.message_user(request, f"{done} order(s) refunded.", messages.SUCCESS)

    @admin.display(description=_("amount"), ordering="amount_fen")
    def amount(self, obj):
        return _yuan(obj.amount_fen)


@admin.register(PaymentResult)
class PaymentResultAdmin(LedgerSearchMixin, NoWriteBackMixin, admin.ModelAdmin):
    list_display = (
        "received_at",
        "merchant_order_no",
        "status",
        "amount",
        "source",
        "outcome",
        "flagged",
        "reason",
    )
    list_filter = ("flagged", "outcome", "status", "source", "received_at")
    ledger_search_fields = ("merchant_order_no", "event_id", "order__paycode")
    readonly_fields = [f.name for f in PaymentResult._meta.fields]

    @admin.display(description=_("amount"), ordering="amount_fen")
    def amount(self, obj):
        return _yuan(obj.amount_fen)


@admin.register(Entitlement)
class EntitlementAdmin(LedgerSearchMixin, NoWriteBackMixin, admin.ModelAdmin):
    list_display = ("user_id", "product", "kind", "quantity", "valid_from", "valid_until", "revoked_at", "order")
    list_filter = ("kind", "product")
    ledger_search_fields = ("user_id", "order__order_no")
    readonly_fields = [f.name for f in Entitlement._meta.fields]


class ReconciliationItemInline(ReadOnlyInline):
    model = ReconciliationItem
    fields = ("order", "kind", "our_state", "service_status", "repaired", "detail")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order")


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(NoWriteBackMixin, admin.ModelAdmin):
    list_display = ("day", "started_at", "finished_at", "orders_checked", "differences_display", "repaired", "errors")
    list_filter = ("day",)
    inlines = [ReconciliationItemInline]
    readonly_fields = [f.name for f in ReconciliationReport._meta.fields]

    @admin.display(description=_("differences"))
    def differences_display(self, obj):
        if obj.differences > obj.repaired:
            return format_html('<strong style="color:#c00">{}</strong>', obj.differences)
        return obj.differences


@admin.register(SandboxPaycode)
class SandboxPaycodeAdmin(NoWriteBackMixin, admin.ModelAdmin):
    list_display = ("paycode", "merchant_order_no", "amount_fen", "status", "channel", "created_at")
    list_filter = ("status", "channel")
    search_fields = ("paycode", "merchant_order_no")
    readonly_fields = [f.name for f in SandboxPaycode._meta.fields]
