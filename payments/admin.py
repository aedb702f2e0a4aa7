from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from payments import selectors, services
from payments.models import (
    Entitlement,
    Order,
    OrderEvent,
    OrderState,
    PaymentResult,
    Product,
    ReconciliationItem,
    ReconciliationReport,
)
from payments.sandbox.models import SandboxPaycode


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class NoWriteBack:
    """For admins whose every field is read-only: Save on the change page writes
    nothing. (Django would write back the whole row as read at the start of the
    request, undoing a state move, a revocation or a payment made meanwhile.)"""

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)


class ProductAdminForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = (
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

    def clean_component(self):
        component = self.cleaned_data["component"]
        if component is not None and component.type != "paid_sale":
            raise forms.ValidationError(f"Component {component.pk} is a {component.type}, not a paid_sale.")
        return component

    def clean(self):
        data = super().clean()
        held = self.instance.held if self.instance.pk else 0
        if data.get("stock") is not None and data["stock"] < held:
            self.add_error("stock", f"{held} are already reserved or sold; the stock cannot go below that.")
        if data.get("entitlement_kind") == "membership" and not data.get("entitlement_days"):
            self.add_error("entitlement_days", "A membership needs its number of days.")
        return data


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
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

    def save_model(self, request, obj, form, change):
        if not change:
            obj.save()
            return
        # Only what the form edits: `held` moves with every order, and writing back
        # the value read at the start of this request would lose the reservations
        # made meanwhile (the CheckConstraint still refuses a stock below `held`).
        obj.save(update_fields=[*form.Meta.fields, "updated_at"])

    @admin.display(description="price (¥)")
    def price_yuan(self, obj):
        return f"{obj.price_fen / 100:.2f}"

    @admin.display(description="sold (paid)", ordering="sold_count")
    def sold(self, obj):
        return obj.sold_count

    @admin.display(description="reserved (pending)", ordering="reserved_count")
    def reserved(self, obj):
        return obj.reserved_count

    @admin.display(description="remaining")
    def remaining_display(self, obj):
        return obj.remaining


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("created_at", "from_state", "to_state", "cause", "detail")
    readonly_fields = fields
    verbose_name_plural = "timeline (state moves with their causes)"


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
    verbose_name_plural = "payment events"


@admin.register(Order)
class OrderAdmin(NoWriteBack, admin.ModelAdmin):
    list_display = ("order_no", "product", "user_id", "amount_fen", "state", "refund_required", "created_at", "paid_at")
    # Date filters are ranges (no date_hierarchy: it needs MariaDB's time-zone tables).
    list_filter = ("state", "refund_required", "product", "close_cause", "created_at", "paid_at")
    search_fields = ("order_no", "user_id", "paycode", "transaction_id")
    inlines = [OrderEventInline, PaymentResultInline]
    actions = ["refund_orders"]
    readonly_fields = [f.name for f in Order._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(
        description="Mark refunded (money returned in the payment console): revoke entitlement",
        permissions=["change"],
    )
    def refund_orders(self, request, queryset):
        done = 0
        for order in queryset.filter(state__in=[OrderState.PAID, OrderState.CLOSED]):
            done += services.order_refund(
                order_id=order.pk, cause="refunded_by_operator", detail={"operator": request.user.username}
            )
        self.message_user(request, f"{done} order(s) refunded.", messages.SUCCESS)


@admin.register(PaymentResult)
class PaymentResultAdmin(NoWriteBack, admin.ModelAdmin):
    list_display = (
        "received_at",
        "merchant_order_no",
        "status",
        "amount_fen",
        "source",
        "outcome",
        "flagged",
        "reason",
    )
    list_filter = ("flagged", "outcome", "status", "source", "received_at")
    search_fields = ("merchant_order_no", "paycode", "event_id", "transaction_id")
    readonly_fields = [f.name for f in PaymentResult._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Entitlement)
class EntitlementAdmin(NoWriteBack, admin.ModelAdmin):
    list_display = ("user_id", "product", "kind", "quantity", "valid_from", "valid_until", "revoked_at", "order")
    list_filter = ("kind", "product")
    search_fields = ("user_id", "order__order_no")
    readonly_fields = [f.name for f in Entitlement._meta.fields]

    def has_add_permission(self, request):
        return False


class ReconciliationItemInline(ReadOnlyInline):
    model = ReconciliationItem
    fields = ("order", "kind", "our_state", "service_status", "repaired", "detail")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order")


@admin.register(ReconciliationReport)
class ReconciliationReportAdmin(NoWriteBack, admin.ModelAdmin):
    list_display = ("day", "started_at", "finished_at", "orders_checked", "differences_display", "repaired", "errors")
    list_filter = ("day",)
    inlines = [ReconciliationItemInline]
    readonly_fields = [f.name for f in ReconciliationReport._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="differences")
    def differences_display(self, obj):
        if obj.differences > obj.repaired:
            return format_html('<strong style="color:#c00">{}</strong>', obj.differences)
        return obj.differences


@admin.register(SandboxPaycode)
class SandboxPaycodeAdmin(NoWriteBack, admin.ModelAdmin):
    list_display = ("paycode", "merchant_order_no", "amount_fen", "status", "channel", "created_at")
    list_filter = ("status", "channel")
    search_fields = ("paycode", "merchant_order_no")
    readonly_fields = [f.name for f in SandboxPaycode._meta.fields]
