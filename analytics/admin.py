"""Rollups (read-only), which activity a link advertises, daily cost per link (entered
or uploaded as CSV). Writes go through analytics.campaigns."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from analytics import admin_views, campaigns
from analytics.models import CampaignRollup, LinkCampaign, LinkCost, LinkOutcomeRollup, LinkRollup, RollupRun
from components.forms import CostInYuanForm
from core.admin_kit import ReadOnlyAdmin
from core.errors import DomainError
from core.money import yuan_text


@admin.register(LinkRollup)
class LinkRollupAdmin(ReadOnlyAdmin):
    list_display = (
        "bucket_start",
        "bucket_minutes",
        "app_id",
        "platform",
        "link_id",
        "os",
        "clicks",
        "unique_devices",
        "rejected_clicks",
        "activations",
        "attributed",
        "organic",
        "reinstalls",
        "pays",
        "pay_amount_fen",
        "postbacks_failed",
    )
    list_filter = ("bucket_minutes", "platform", "os", "app_id")
    date_hierarchy = "bucket_start"
    search_fields = ("=link_id",)

    def get_urls(self):
        return [*admin_views.urls(self), *super().get_urls()]


@admin.display(description=_("revenue (yuan)"), ordering="revenue_fen")
def revenue_yuan(obj: CampaignRollup | LinkOutcomeRollup) -> str:
    return yuan_text(obj.revenue_fen)


@admin.register(CampaignRollup)
class CampaignRollupAdmin(ReadOnlyAdmin):
    list_display = (
        "bucket_start",
        "activity_id",
        "component_id",
        "page_views",
        "unique_visitors",
        "claims",
        "redemptions",
        "orders_placed",
        "orders_paid",
        revenue_yuan,
        "refunds",
    )
    date_hierarchy = "bucket_start"
    search_fields = ("=activity_id",)


@admin.register(LinkOutcomeRollup)
class LinkOutcomeRollupAdmin(ReadOnlyAdmin):
    list_display = ("bucket_start", "link_id", "platform", "activity_id", "claims", "orders_paid", revenue_yuan)
    date_hierarchy = "bucket_start"


@admin.register(RollupRun)
class RollupRunAdmin(ReadOnlyAdmin):
    list_display = ("kind", "bucket_start", "bucket_minutes", "rows", "rolled_at", "seconds")
    list_filter = ("kind", "bucket_minutes")


@admin.register(LinkCampaign)
class LinkCampaignAdmin(admin.ModelAdmin):
    list_display = ("link", "activity", "window_days")
    autocomplete_fields = ("activity",)
    raw_id_fields = ("link",)

    def save_model(self, request, obj: LinkCampaign, form, change: bool) -> None:
        saved = campaigns.link_campaign_set(link=obj.link, activity=obj.activity, window_days=obj.window_days)
        obj.pk = saved.pk

    def delete_model(self, request, obj: LinkCampaign) -> None:
        campaigns.link_campaign_delete(item=obj)

    def delete_queryset(self, request, queryset) -> None:
        for item in queryset:
            campaigns.link_campaign_delete(item=item)


MAX_UPLOAD_BYTES = 1024 * 1024


class CostUploadForm(forms.Form):
    file = forms.FileField(
        label=_("File"), help_text=_("CSV, UTF-8: link_token,day,cost_yuan (one row per link and day)")
    )


class LinkCostForm(CostInYuanForm):
    class Meta:
        model = LinkCost
        fields = ("link", "day", "cost_yuan", "note")


@admin.register(LinkCost)
class LinkCostAdmin(admin.ModelAdmin):
    form = LinkCostForm
    list_display = ("day", "link", "cost_yuan", "note", "updated_at")
    list_filter = ("day",)
    raw_id_fields = ("link",)
    date_hierarchy = "day"
    change_list_template = "admin/analytics/linkcost/change_list.html"

    @admin.display(description=_("cost (yuan)"), ordering="cost_fen")
    def cost_yuan(self, obj: LinkCost) -> str:
        return yuan_text(obj.cost_fen)

    def save_model(self, request, obj: LinkCost, form, change: bool) -> None:
        saved = campaigns.link_cost_set(link=obj.link, day=obj.day, cost_fen=obj.cost_fen, note=obj.note)
        obj.pk = saved.pk

    def delete_model(self, request, obj: LinkCost) -> None:
        campaigns.link_cost_delete(cost=obj)

    def delete_queryset(self, request, queryset) -> None:
        for cost in queryset:
            campaigns.link_cost_delete(cost=cost)

    def get_urls(self):
        return [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="analytics_linkcost_upload"),
            *super().get_urls(),
        ]

    def upload_view(self, request: HttpRequest):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CostUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data["file"].read(MAX_UPLOAD_BYTES + 1)
            try:
                if len(data) > MAX_UPLOAD_BYTES:
                    raise DomainError(_("The file is larger than 1 MiB; split it."), code="invalid_csv")
                count = campaigns.link_costs_import(data=data)
            except DomainError as exc:
                form.add_error("file", str(exc))
            else:
                messages.success(request, f"{count} cost row(s) saved.")
                return HttpResponseRedirect(reverse("admin:analytics_linkcost_changelist"))
        context = {**self.admin_site.each_context(request), "form": form, "title": "Upload link costs (CSV)"}
        return TemplateResponse(request, "admin/analytics/linkcost/upload.html", context)


from analytics import report_admin  # noqa: E402,F401  (the daily report archive and subscriptions)
