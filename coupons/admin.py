"""Operators' screens for coupons. Writes go through coupons.services; the stock
counter is never written from a form (a form holds a stale value)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export import fields
from import_export.admin import ExportMixin

from core.admin_kit import LedgerSearchMixin, ReadOnlyAdmin
from core.errors import DomainError
from core.money import yuan_text
from core.spreadsheets import SafeExportResource
from coupons import services
from coupons.models import (
    Claim,
    Coupon,
    CouponKind,
    CouponPack,
    CouponPackItem,
    CouponTemplate,
    RedeemCode,
    ValidityKind,
)
from coupons.selectors import coupon_pack_remaining, coupon_packs_with_counts

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    from coupons.selectors import PackCounts


@admin.register(CouponTemplate)
class CouponTemplateAdmin(ReadOnlyAdmin):
    """Every coupon of every pack, to find and read. A coupon is created and edited on
    its pack's screen (the coupon pack component: amounts in yuan, validity, how many
    per pack), so this list writes nothing."""

    list_display = ("name", "kind", "amount", "min_spend_yuan", "max_discount_yuan", "validity", "created_at")
    list_filter = ("kind", "validity_kind")
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "kind", "amount", "min_spend_yuan", "max_discount_yuan", "usage_notes")}),
        (_("Validity"), {"fields": ("validity_kind", "valid_from", "valid_until", "valid_days")}),
    )
    readonly_fields = ("amount", "min_spend_yuan", "max_discount_yuan")

    @admin.display(description=_("amount off"), ordering="value")
    def amount(self, obj: CouponTemplate) -> str:
        return f"{obj.value}%" if obj.kind == CouponKind.PERCENT else yuan_text(obj.value, symbol="¥")

    @admin.display(description=_("Minimum spend (yuan)"), ordering="min_spend_fen")
    def min_spend_yuan(self, obj: CouponTemplate) -> str:
        return yuan_text(obj.min_spend_fen) if obj.min_spend_fen else "-"

    @admin.display(description=_("Cap (yuan)"), ordering="max_discount_fen")
    def max_discount_yuan(self, obj: CouponTemplate) -> str:
        return yuan_text(obj.max_discount_fen) if obj.max_discount_fen is not None else "-"

    @admin.display(description=_("validity"))
    def validity(self, obj: CouponTemplate) -> str:
        if obj.validity_kind == ValidityKind.ABSOLUTE:
            return f"{obj.valid_from:%Y-%m-%d %H:%M} → {obj.valid_until:%Y-%m-%d %H:%M}"
        return gettext("%(days)s days from the claim") % {"days": obj.valid_days}


class CouponPackItemInline(admin.TabularInline):
    model = CouponPackItem
    extra = 1
    autocomplete_fields = ("template",)


class GenerateCodesForm(forms.Form):
    count = forms.IntegerField(min_value=1, max_value=services.MAX_CODES_PER_BATCH, initial=100, label=_("Count"))
    batch = forms.CharField(
        max_length=64, required=False, label=_("Batch"), help_text=_("A label to find and export this batch.")
    )
    expires_at = forms.DateTimeField(
        required=False, label=_("Expires at"), help_text=_("Optional: codes stop working after this time.")
    )


@admin.register(CouponPack)
class CouponPackAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "activity_link",
        "total_stock",
        "stock_left",
        "claimed",
        "redeemed",
        "per_user_limit",
        "claim_starts_at",
        "claim_ends_at",
        "enabled",
        "redis_gate",
    )
    list_filter = ("enabled", "redis_gate")
    search_fields = ("name", "component__activity__name", "component__activity__slug")
    # Packs are attached on their component's screen (components/admin_extensions.py).
    readonly_fields = ("component", "stock_left", "records", "records_read", "created_at", "updated_at")
    inlines = [CouponPackItemInline]
    actions = ["disable_packs", "enable_packs", "generate_codes"]
    fieldsets = (
        (None, {"fields": ("name", "description", "component", "enabled")}),
        (
            _("Stock and limits"),
            {"fields": ("total_stock", "stock_left", "per_user_limit", "redis_gate", "stock_shards")},
        ),
        (_("Claim window"), {"fields": ("claim_starts_at", "claim_ends_at")}),
        (_("Record"), {"fields": ("records", "created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return coupon_packs_with_counts().select_related("component__activity")

    @admin.display(description=_("activity"))
    def activity_link(self, obj: CouponPack):
        if obj.component is None:
            return "-"
        return f"{obj.component.activity} (component #{obj.component_id})"

    @admin.display(description=_("claimed"), ordering="claims_count")
    def claimed(self, obj: WithAnnotations[CouponPack, PackCounts]) -> int:
        return obj.claims_count

    @admin.display(description=_("redeemed coupons"), ordering="redeemed_count")
    def redeemed(self, obj: WithAnnotations[CouponPack, PackCounts]) -> str:
        url = reverse("admin:coupons_coupon_changelist") + f"?claim__pack__id__exact={obj.pk}&status__exact=used"
        return format_html('<a href="{}">{}</a>', url, obj.redeemed_count)

    @admin.display(description=_("claims, coupons, codes"))
    def records(self, obj: CouponPack):
        return self._records(obj, generate=True)

    @admin.display(description=_("claims, coupons, codes"))
    def records_read(self, obj: CouponPack):
        return self._records(obj, generate=False)

    def _records(self, obj: CouponPack, *, generate: bool):
        if obj.pk is None:
            return "-"
        links: list[tuple[str, str | None, str]] = [
            ("coupons_claim", f"pack__id__exact={obj.pk}", "claims (search, export)"),
            ("coupons_coupon", f"claim__pack__id__exact={obj.pk}", "coupons"),
            ("coupons_redeemcode", f"pack__id__exact={obj.pk}", "redeem codes"),
        ]
        if generate:
            links.append(("coupons_couponpack_generate_codes", None, "generate redeem codes…"))
        parts = []
        for name, query, label in links:
            if query is None:
                url = reverse(f"admin:{name}", args=[obj.pk])
            else:
                url = reverse(f"admin:{name}_changelist") + "?" + query
            parts.append(format_html('<a href="{}">{}</a>', url, label))
        return format_html_join(" · ", "{}", ((p,) for p in parts))

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.has_change_permission(request, obj):
            return fieldsets
        # Readers: no link to the generating screen (it writes; it answers them 403).
        return [
            (name, {**opts, "fields": tuple("records_read" if f == "records" else f for f in opts["fields"])})
            for name, opts in fieldsets
        ]

    @admin.display(description=_("remaining"))
    def stock_left(self, obj: CouponPack) -> int:
        return coupon_pack_remaining(pack=obj)

    def save_model(self, request, obj: CouponPack, form, change):
        if not change:
            data = _form_data(form, services.PACK_FIELDS)
            _adopt(obj, services.coupon_pack_create(total_stock=form.cleaned_data["total_stock"], items=[], **data))
            return
        # The form's `remaining` is never written (a claim may land while the form is open).
        data = {f: form.cleaned_data[f] for f in form.changed_data if f in (*services.PACK_FIELDS, "total_stock")}
        try:
            services.coupon_pack_update(pack=obj, **data)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            obj.refresh_from_db()

    def save_formset(self, request, form, formset, change):
        """The pack's coupons, through coupons.services (the inline only collects them)."""
        items = [
            (f.cleaned_data["template"], f.cleaned_data["quantity"])
            for f in formset.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE") and f.cleaned_data.get("template")
        ]
        try:
            services.coupon_pack_items_set(pack=form.instance, items=items)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(description=_("Disable selected packs (claims stop at once)"), permissions=["change"])
    def disable_packs(self, request, queryset):
        count = services.coupon_packs_enable(pack_ids=list(queryset.values_list("pk", flat=True)), enabled=False)
        self.message_user(request, f"{count} pack(s) disabled.", messages.SUCCESS)

    @admin.action(description=_("Enable selected packs"), permissions=["change"])
    def enable_packs(self, request, queryset):
        count = services.coupon_packs_enable(pack_ids=list(queryset.values_list("pk", flat=True)), enabled=True)
        self.message_user(request, f"{count} pack(s) enabled.", messages.SUCCESS)

    @admin.action(description=_("Generate redeem codes for the selected pack…"), permissions=["change"])
    def generate_codes(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one pack to generate codes for.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:coupons_couponpack_generate_codes", args=[queryset.get().pk]))

    def get_urls(self):
        custom = [
            path(
                "<int:pack_id>/generate-codes/",
                self.admin_site.admin_view(self.generate_codes_view),
                name="coupons_couponpack_generate_codes",
            )
        ]
        return custom + super().get_urls()

    def generate_codes_view(self, request: HttpRequest, pack_id: int):
        pack = get_object_or_404(CouponPack, pk=pack_id)
        if not self.has_change_permission(request, pack):
            raise PermissionDenied
        form = GenerateCodesForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            batch = form.cleaned_data["batch"] or timezone.localtime().strftime("batch-%Y%m%d-%H%M%S")
            try:
                codes = services.redeem_codes_generate(
                    pack=pack,
                    count=form.cleaned_data["count"],
                    batch=batch,
                    expires_at=form.cleaned_data["expires_at"],
                )
            except DomainError as exc:
                form.add_error("count", exc.message)
            else:
                self.message_user(
                    request,
                    f"{len(codes)} codes generated in batch “{batch}”; export them from this list.",
                    messages.SUCCESS,
                )
                url = reverse("admin:coupons_redeemcode_changelist") + f"?pack__id__exact={pack.pk}&batch={batch}"
                return HttpResponseRedirect(url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "pack": pack,
            "form": form,
            "title": _("Generate redeem codes: %(name)s") % {"name": pack.name},
        }
        return TemplateResponse(request, "coupons/admin/generate_codes.html", context)


def _form_data(form, fields: tuple[str, ...]) -> dict:
    return {field: form.cleaned_data[field] for field in fields if field in form.cleaned_data}


def _adopt(obj, saved) -> None:
    """Make the admin's unsaved form object the row the service created (the
    inlines and the change message refer to it)."""
    for field in obj._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


class ClaimResource(SafeExportResource):
    pack = fields.Field(attribute="pack__name", column_name="pack")
    activity = fields.Field(column_name="activity")
    redeem_code = fields.Field(attribute="redeem_code__code", column_name="redeem_code")
    coupon_codes = fields.Field(column_name="coupon_codes")

    class Meta:
        model = Claim
        fields = (
            "id",
            "pack",
            "activity",
            "user_id",
            "source",
            "sequence",
            "redeem_code",
            "coupon_codes",
            "claimed_at",
        )
        export_order = fields

    def dehydrate_activity(self, claim: Claim) -> str:
        component = claim.pack.component
        return component.activity.slug if component is not None else ""

    def dehydrate_coupon_codes(self, claim: Claim) -> str:
        return " ".join(c.code for c in claim.coupons.all())


@admin.register(Claim)
class ClaimAdmin(LedgerSearchMixin, ExportMixin, ReadOnlyAdmin):
    resource_classes = [ClaimResource]
    list_display = ("id", "pack", "user_id", "source", "sequence", "claimed_at")
    # No date_hierarchy: it needs MySQL's time zone tables; a date range filter does not.
    list_filter = ("source", "claimed_at", ("pack", admin.RelatedOnlyFieldListFilter))
    ledger_search_fields = ("user_id", "coupons__code", "redeem_code__code")
    list_select_related = ("pack",)

    def get_export_queryset(self, request):
        return (
            super()
            .get_export_queryset(request)
            .select_related("pack__component__activity", "redeem_code")
            .prefetch_related("coupons")
        )


@admin.register(Coupon)
class CouponAdmin(LedgerSearchMixin, ReadOnlyAdmin):
    list_display = ("code", "template", "user_id", "status", "valid_from", "valid_until", "order_id", "used_at")
    # every pack (a small table), not only those a DISTINCT over every coupon finds
    list_filter = ("status", "template", ("claim__pack", admin.RelatedFieldListFilter))
    ledger_search_fields = ("code", "user_id")
    list_select_related = ("template",)


class RedeemCodeResource(SafeExportResource):
    pack = fields.Field(attribute="pack__name", column_name="pack")

    class Meta:
        model = RedeemCode
        fields = ("code", "pack", "batch", "expires_at", "redeemed_by", "redeemed_at", "created_at")
        export_order = fields


@admin.register(RedeemCode)
class RedeemCodeAdmin(LedgerSearchMixin, ExportMixin, ReadOnlyAdmin):
    resource_classes = [RedeemCodeResource]
    list_display = ("code", "pack", "batch", "expires_at", "redeemed_by", "redeemed_at", "created_at")
    list_filter = (("pack", admin.RelatedOnlyFieldListFilter),)  # (pack, batch) leads: one index entry a pack
    ledger_search_fields = ("code", "batch")  # a batch label: typed, not picked from a DISTINCT over every code
    ledger_search_enumerate = ("pack",)  # (pack, batch): one lookup per pack
    list_select_related = ("pack",)
