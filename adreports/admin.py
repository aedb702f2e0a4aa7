from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from adreports import crypto, selectors, services
from adreports.alerting import ad_alert_resolve
from adreports.models import AdAccount, AdDiscrepancy, AdManualCost, AdPull, AdReportRow, AdWarning
from components.forms import CostInYuanForm
from core.admin_kit import ReadOnlyAdmin
from core.admin_site import read_only_view
from core.errors import DomainError
from core.money import yuan_text

SECRET_HELP = "Stored encrypted; never shown again. Leave empty to keep the stored value."


class AdAccountForm(forms.ModelForm):
    app_secret = forms.CharField(
        label="app secret", required=False, widget=forms.PasswordInput(render_value=False), help_text=SECRET_HELP
    )
    access_token = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text=SECRET_HELP
    )
    refresh_token = forms.CharField(
        required=False, widget=forms.PasswordInput(render_value=False), help_text=SECRET_HELP
    )

    class Meta:
        model = AdAccount
        fields = (
            "platform",
            "account_id",
            "name",
            "app_id",
            "active",
            "access_token_expires_at",
            "refresh_token_expires_at",
        )


class WarningBanner:
    """Open ad-report warnings as a banner on the app's list pages."""

    def changelist_view(self, request, extra_context=None):
        for warning in selectors.open_warnings()[:5]:
            messages.warning(request, f"⚠ {warning.title} (×{warning.times})")
        return super().changelist_view(request, extra_context)


@admin.register(AdAccount)
class AdAccountAdmin(WarningBanner, admin.ModelAdmin):
    form = AdAccountForm
    list_display = (
        "__str__",
        "platform",
        "account_id",
        "active",
        "access_token_expires_at",
        "last_pull_at",
        "last_error",
    )
    list_filter = ("platform", "active")
    search_fields = ("account_id", "name")
    readonly_fields = (
        "app_secret_stored",
        "access_token_stored",
        "refresh_token_stored",
        "last_pull_at",
        "last_error",
        "authorise",
    )
    actions = ["pull_now"]

    @admin.display(description=_("app secret (stored)"))
    def app_secret_stored(self, obj):
        return crypto.mask(obj.app_secret_enc)

    @admin.display(description=_("access token (stored)"))
    def access_token_stored(self, obj):
        return crypto.mask(obj.access_token_enc)

    @admin.display(description=_("refresh token (stored)"))
    def refresh_token_stored(self, obj):
        return crypto.mask(obj.refresh_token_enc)

    @admin.display(description=_("authorise on the platform"))
    def authorise(self, obj):
        if not obj or not obj.pk:
            return "Save the account (app id and secret) first."
        url = reverse("adreports-oauth-start", args=[obj.pk])
        return format_html('<a class="button" href="{}">Authorise with {}</a>', url, obj.get_platform_display())

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return (*fields, "platform") if obj else fields

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {name: data[name] for name in AdAccountForm.Meta.fields if name in data}
        if change:
            fields.pop("platform", None)  # rows are the platform's: an account never changes platform
        secrets = {name: data.get(name, "") for name in services.SECRET_FIELDS}
        try:
            if change:
                account = AdAccount.objects.get(pk=obj.pk)
                saved = services.ad_account_update(account=account, **fields, **secrets)
            else:
                saved = services.ad_account_create(**fields, **secrets)
        except DomainError as exc:
            raise PermissionDenied(exc.message) from None
        obj.pk = saved.pk

    @admin.action(description=_("Pull the last days' reports now"), permissions=["change"])
    def pull_now(self, request, queryset):
        try:
            pulls = services.ad_reports_pull(account_ids=list(queryset.values_list("pk", flat=True)))
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        failed = [p for p in pulls if p.status != "succeeded"]
        changed = sum(1 for p in pulls if p.changed)
        self.message_user(
            request,
            f"{len(pulls)} account-days pulled: {changed} changed, {len(failed)} failed.",
            messages.WARNING if failed else messages.SUCCESS,
        )


# The performance page's levels as the operator reads them (the query keeps the English value).
LEVEL_LABELS = {"account": _("account"), "campaign": _("campaign"), "ad": _("ad"), "link": _("link")}


def _day(value: str | None, default: date) -> date:
    try:
        return date.fromisoformat(value) if value else default
    except ValueError:
        return default


@admin.register(AdReportRow)
class AdReportRowAdmin(WarningBanner, ReadOnlyAdmin):
    change_list_template = "adreports/admin/reportrow_change_list.html"

    def get_urls(self):
        return [
            path("performance/", self.admin_site.admin_view(self.performance_view), name="adreports_performance"),
            *super().get_urls(),
        ]

    @read_only_view
    def performance_view(self, request):
        """Per account, campaign, ad or tracking link: their figures beside ours."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.localdate()
        end = _day(request.GET.get("to"), today)
        start = _day(request.GET.get("from"), end - timedelta(days=6))
        if start > end or (end - start).days > 92:
            start = end - timedelta(days=6)
        level = request.GET.get("level", "campaign")
        if level not in (*selectors.LEVELS, "link"):
            level = "campaign"
        figures = (
            selectors.link_performance(start=start, end=end)
            if level == "link"
            else selectors.ad_performance(start=start, end=end, level=level)
        )
        rows = [
            {
                "f": f,
                "label": f.label,
                "spend": yuan_text(f.spend_fen),
                "cpi": yuan_text(f.cost_per_install_fen),
                "revenue": yuan_text(f.revenue_fen),
            }
            for f in figures
        ]
        spend = sum(f.spend_fen for f in figures)
        revenue = sum(f.revenue_fen for f in figures)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Ad performance"),
            "rows": rows,
            "start": start,
            "end": end,
            "level": level,
            "level_label": LEVEL_LABELS.get(level, level),
            "levels": [(value, LEVEL_LABELS.get(value, value)) for value in (*selectors.LEVELS, "link")],
            "total_spend": yuan_text(spend),
            "total_revenue": yuan_text(revenue),
            "total_roas": f"{revenue / spend:.2f}" if spend else None,
            "total_installs": sum(f.installs for f in figures),
            "discrepancies": selectors.discrepancies(start=start, end=end)[:200],
        }
        return TemplateResponse(request, "adreports/admin/performance.html", context)

    list_display = (
        "day",
        "account",
        "campaign_id",
        "ad_id",
        "cost_yuan",
        "impressions",
        "clicks",
        "conversions",
        "pulled_at",
    )
    list_filter = ("platform", "day", "account")
    search_fields = ("campaign_id", "ad_id")
    date_hierarchy = "day"

    @admin.display(description=_("cost (¥)"), ordering="cost_fen")
    def cost_yuan(self, obj):
        return yuan_text(obj.cost_fen)


@admin.register(AdPull)
class AdPullAdmin(WarningBanner, ReadOnlyAdmin):
    list_display = (
        "started_at",
        "account",
        "day",
        "status",
        "pages",
        "requests",
        "rows",
        "created",
        "updated",
        "deleted",
        "error_kind",
        "error",
    )
    list_filter = ("status", "account", "day")


@admin.register(AdDiscrepancy)
class AdDiscrepancyAdmin(WarningBanner, ReadOnlyAdmin):
    list_display = ("day", "account", "metric", "theirs", "ours", "difference_percent", "large", "checked_at")
    list_filter = ("large", "metric", "account", "day")
    date_hierarchy = "day"


@admin.register(AdWarning)
class AdWarningAdmin(WarningBanner, ReadOnlyAdmin):
    list_display = ("title", "kind", "account", "times", "first_at", "last_at", "resolved_at")
    list_filter = ("kind", ("resolved_at", admin.EmptyFieldListFilter))
    actions = ["resolve"]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("adreports.change_adwarning")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in AdWarning._meta.fields]

    def save_model(self, request, obj, form, change):
        pass  # every field is read-only

    @admin.action(description=_("Mark resolved"), permissions=["change"])
    def resolve(self, request, queryset):
        done = sum(ad_alert_resolve(key=key) for key in queryset.values_list("key", flat=True))
        self.message_user(request, f"{done} warnings resolved.")


class AdManualCostForm(CostInYuanForm):
    class Meta:
        model = AdManualCost
        fields = ("link", "day", "cost_yuan", "note")


@admin.register(AdManualCost)
class AdManualCostAdmin(WarningBanner, admin.ModelAdmin):
    form = AdManualCostForm
    list_display = ("day", "link", "cost_yuan", "note")
    list_filter = ("day",)

    @admin.display(description=_("cost (yuan)"), ordering="cost_fen")
    def cost_yuan(self, obj: AdManualCost) -> str:
        return yuan_text(obj.cost_fen)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            saved = services.ad_manual_cost_set(
                link=data["link"], day=data["day"], cost_fen=data["cost_fen"], note=data.get("note", "")
            )
        except DomainError as exc:
            raise PermissionDenied(exc.message) from None
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.ad_manual_cost_delete(cost=obj)

    def delete_queryset(self, request, queryset):
        for cost in queryset:
            services.ad_manual_cost_delete(cost=cost)
