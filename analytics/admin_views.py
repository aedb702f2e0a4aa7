"""The analytics dashboard in the admin (read-only): the page, its data as JSON and
table exports (CSV/XLSX). Figures come from analytics.dashboard."""

from __future__ import annotations

import csv
import io

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from analytics import dashboard
from core.admin_site import read_only_view
from core.spreadsheets import formula_neutralise

FILTER_NAMES = ("from", "to", "app", "platform", "link", "os", "activity", "granularity")


def urls(model_admin) -> list:
    site = model_admin.admin_site

    @read_only_view
    def page(request):
        return dashboard_page(model_admin, request)

    @read_only_view
    def data(request):
        return dashboard_json(model_admin, request)

    @read_only_view
    def export(request, table: str, file_format: str):
        return dashboard_export(model_admin, request, table, file_format)

    return [
        path("dashboard/", site.admin_view(page), name="analytics_dashboard"),
        path("dashboard/data.json", site.admin_view(data), name="analytics_dashboard_data"),
        path(
            "dashboard/export/<slug:table>.<slug:file_format>",
            site.admin_view(export),
            name="analytics_dashboard_export",
        ),
    ]


def _allowed(model_admin, request) -> None:
    if not model_admin.has_view_permission(request):
        raise PermissionDenied


def _choices():
    from activities.models import Activity
    from analytics.models import LinkCampaign
    from attribution.models import TrackingLink

    advertised = LinkCampaign.objects.values_list("activity_id", flat=True)
    return {
        "apps": sorted(set(TrackingLink.objects.values_list("app_id", flat=True))),
        "platforms": sorted(set(TrackingLink.objects.values_list("platform", flat=True))),
        "links": list(TrackingLink.objects.order_by("id").values_list("id", "campaign_name")[:500]),
        "activities": list(Activity.objects.filter(id__in=advertised).order_by("id").values_list("id", "name")),
    }


def _chart_labels() -> dict[str, str]:
    """The charts' series names and funnel steps in the active language (dashboard.js
    reads them from the page; the data keys stay English)."""
    return {
        "clicks": _("clicks"),
        "activations": _("activations"),
        "attributed": _("attributed"),
        "attribution_rate": _("attribution rate"),
        "registers": _("registers"),
        "pays": _("pays"),
        "attributed_installs": _("attributed installs"),
        "visitors": _("visitors"),
        "claims": _("claims"),
        "orders_paid": _("orders paid"),
        "revenue_yuan": _("revenue (yuan)"),
    }


def dashboard_page(model_admin, request):
    _allowed(model_admin, request)
    filters = dashboard.filters_parse(request.GET)
    data = dashboard.dashboard_data(filters=filters)
    query = urlencode({name: request.GET[name] for name in FILTER_NAMES if request.GET.get(name)})
    tables = [
        {
            "key": key,
            "title": title,
            "headings": dashboard.table_rows(data=data, table=key)[0],
            "rows": dashboard.table_rows(data=data, table=key)[1],
            "csv": reverse("admin:analytics_dashboard_export", args=[key, "csv"]) + (f"?{query}" if query else ""),
            "xlsx": reverse("admin:analytics_dashboard_export", args=[key, "xlsx"]) + (f"?{query}" if query else ""),
        }
        for key, (title, _columns) in dashboard.TABLES.items()
    ]
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Analytics dashboard"),
        "filters": filters,
        "data": data,
        "tables": tables,
        "chart_labels": _chart_labels(),
        "choices": _choices(),
        "os_choices": ("ios", "android"),
        "performance_url": reverse("admin:adreports_performance")
        if request.user.has_perm("adreports.view_adreportrow")
        else None,
    }
    return TemplateResponse(request, "admin/analytics/dashboard.html", context)


def dashboard_json(model_admin, request):
    _allowed(model_admin, request)
    return JsonResponse(dashboard.dashboard_data(filters=dashboard.filters_parse(request.GET)))


def dashboard_export(model_admin, request, table: str, file_format: str):
    _allowed(model_admin, request)
    if table not in dashboard.TABLES or file_format not in ("csv", "xlsx"):
        raise Http404("No such table or format.")
    filters = dashboard.filters_parse(request.GET)
    headings, rows = dashboard.table_rows(data=dashboard.dashboard_data(filters=filters), table=table)
    cells = [[formula_neutralise(value) for value in row] for row in [headings, *rows]]
    name = f"analytics-{table}-{filters.start}-{filters.end}"
    if file_format == "csv":
        buffer = io.StringIO()
        csv.writer(buffer).writerows(cells)
        response = HttpResponse("\ufeff" + buffer.getvalue(), content_type="text/csv; charset=utf-8")
    else:
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(table)
        for row in cells:
            sheet.append(row)
        output = io.BytesIO()
        book.save(output)
        response = HttpResponse(
            output.getvalue(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
    response["Content-Disposition"] = f'attachment; filename="{name}.{file_format}"'
    return response
