"""Admin of the daily report: the archive (read-only, files downloadable by anyone who
may view it, analysts included), the report subscriptions (recipients), and, when mail
is not sent (no EMAIL_HOST: development), the local mail folder."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from analytics import report_subscriptions, selectors
from analytics.models import DailyReport, ReportSubscription
from core.admin_kit import ReadOnlyAdmin

FILE_COLUMNS = {"xlsx": "xlsx_file", "csv": "csv_file", "html": "html_file"}


@admin.register(DailyReport)
class DailyReportAdmin(ReadOnlyAdmin):
    list_display = ("date", "status", "attempts", "sent_at", "recipient_list", "downloads", "error_short")
    list_filter = ("status",)
    date_hierarchy = "date"
    readonly_fields = (
        "date",
        "status",
        "subject",
        "recipients",
        "attempts",
        "error",
        "built_at",
        "sent_at",
        "downloads",
    )
    exclude = ("xlsx_file", "csv_file", "html_file")
    change_list_template = "admin/analytics/dailyreport/change_list.html"

    def changelist_view(self, request, extra_context=None):
        extra = {"local_mail_folder": selectors.local_mail_folder() is not None, **(extra_context or {})}
        return super().changelist_view(request, extra)

    @admin.display(description=_("recipients"))
    def recipient_list(self, obj: DailyReport) -> str:
        return ", ".join(obj.recipients)

    @admin.display(description=_("error"))
    def error_short(self, obj: DailyReport) -> str:
        return obj.error[:120]

    @admin.display(description=_("files"))
    def downloads(self, obj: DailyReport):
        links = [
            (reverse("admin:analytics_dailyreport_download", args=[obj.pk, kind]), kind)
            for kind, column in FILE_COLUMNS.items()
            if getattr(obj, column)
        ]
        return format_html_join(" ", '<a href="{}">{}</a>', links) or "-"

    def get_urls(self):
        return [
            path("mail/", self.admin_site.admin_view(self.mail_folder), name="analytics_dailyreport_mail"),
            path(
                "mail/<str:name>/",
                self.admin_site.admin_view(self.mail_file),
                name="analytics_dailyreport_mail_file",
            ),
            path(
                "<int:pk>/download/<str:kind>/",
                self.admin_site.admin_view(self.download),
                name="analytics_dailyreport_download",
            ),
            *super().get_urls(),
        ]

    def mail_folder(self, request: HttpRequest):
        """Development: the mails written under EMAIL_FILE_PATH instead of being sent."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        folder = selectors.local_mail_folder()
        if folder is None:
            raise Http404("mail is sent by SMTP here (EMAIL_HOST is set)")
        context = {
            **self.admin_site.each_context(request),
            "title": "Local mail folder (not sent)",
            "folder": folder,
            "mails": selectors.local_mails(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/analytics/dailyreport/mail_folder.html", context)

    def mail_file(self, request: HttpRequest, name: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        text = selectors.local_mail_text(name=name)
        if text is None:
            raise Http404("no such mail file")
        response = HttpResponse(text, content_type="text/plain; charset=utf-8")
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def download(self, request: HttpRequest, pk: int, kind: str):
        if not self.has_view_permission(request):
            raise PermissionDenied
        archive = DailyReport.objects.filter(pk=pk).first()
        column = FILE_COLUMNS.get(kind)
        if archive is None or column is None or not getattr(archive, column):
            raise Http404("no such file")
        stored = getattr(archive, column)
        name = f"huodong-daily-{archive.date:%Y-%m-%d}.{kind}"
        return FileResponse(stored.open("rb"), as_attachment=kind != "html", filename=name)


@admin.register(ReportSubscription)
class ReportSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("email", "name", "active", "created_at")
    list_filter = ("active",)
    fields = ("email", "name", "active")

    def save_model(self, request, obj, form, change):
        report_subscriptions.report_subscription_save(
            subscription=obj if change else None,
            email=form.cleaned_data["email"],
            name=form.cleaned_data.get("name", ""),
            active=form.cleaned_data.get("active", True),
        )

    def delete_model(self, request, obj):
        report_subscriptions.report_subscription_delete(subscription=obj)

    def delete_queryset(self, request, queryset):
        for item in queryset:
            report_subscriptions.report_subscription_delete(subscription=item)
