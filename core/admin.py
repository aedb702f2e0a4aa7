from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from core.admin_kit import LedgerSearchMixin, values_list_filter
from core.events import registry
from core.models import DeadLetter, ProcessedEvent, Profile


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(LedgerSearchMixin, admin.ModelAdmin):
    list_display = ("event_id", "source", "event_type", "processed_at")
    # the event types the consumer handles (its registry), not a DISTINCT over every event applied
    list_filter = (
        "source",
        values_list_filter(
            "event_type", _("event type"), lambda: [(key, key) for key in sorted(registry.registered())]
        ),
        "processed_at",
    )
    ledger_search_fields = ("event_id",)
    ledger_search_enumerate = ("source",)  # unique (source, event_id): one lookup per source

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DeadLetter)
class DeadLetterAdmin(admin.ModelAdmin):
    list_display = ("created_at", "source", "routing_key", "event_id", "reason")
    list_filter = ("source", "routing_key", "created_at")
    search_fields = ("event_id", "reason", "body")
    readonly_fields = ("source", "routing_key", "event_id", "reason", "body", "created_at")

    def has_add_permission(self, request):
        return False


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    """Profiles of requests and tasks (core/profiling.py): read-only; the changelist
    links to "Profile a request", which mints the signed token."""

    list_display = ("created_at", "kind", "trigger", "name", "duration_ms", "requested_by", "report")
    list_filter = ("kind", "trigger", "created_at")
    search_fields = ("name", "requested_by", "trace_id")
    fields = ("created_at", "kind", "trigger", "name", "duration_ms", "requested_by", "trace_id", "report", "text")
    readonly_fields = fields
    change_list_template = "admin/config/profile/change_list.html"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("report"))
    def report(self, obj):
        return format_html(
            '<a href="{}" target="_blank">HTML report</a>', reverse("admin:config_profile_html", args=[obj.pk])
        )

    def get_urls(self):
        own = [
            path("token/", self.admin_site.admin_view(self.token_view), name="config_profile_token"),
            path("<int:pk>/html/", self.admin_site.admin_view(self.html_view), name="config_profile_html"),
        ]
        return own + super().get_urls()

    def html_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        profile = get_object_or_404(Profile, pk=pk)
        response = HttpResponse(profile.html)
        # pyinstrument's report is a self-contained page with inline script: let it run, sandboxed.
        response["Content-Security-Policy"] = "sandbox allow-scripts"
        return response

    def token_view(self, request):
        from core import profiling

        if not request.user.has_perm(profiling.PERMISSION):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Profile a request",
            "token": profiling.profile_token_mint(user=request.user),
            "param": profiling.PARAM,
            "header": profiling.HEADER,
            "ttl": settings.PROFILE_TOKEN_TTL_SECONDS,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/config/profile/token.html", context)
