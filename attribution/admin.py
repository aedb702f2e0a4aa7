"""Operators' screens for attribution. Writes go through attribution.services."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from alerts.models import FraudRuleKind
from attribution import devices, platforms, selectors, services
from attribution.models import (
    CandidateVerdict,
    Conversion,
    ConversionEvent,
    MatchOutcome,
    MatchTrace,
    PendingEvent,
    Postback,
    PostbackAttempt,
    PostbackStatus,
    TestDevice,
    TrackingLink,
)
from attribution.sandbox.models import SandboxPostback
from core.admin_kit import DomainErrorMixin, LedgerSearchMixin, NoWriteBackMixin, ReadOnlyInline, values_list_filter
from core.admin_site import read_only_view


@admin.register(TrackingLink)
class TrackingLinkAdmin(DomainErrorMixin, admin.ModelAdmin):
    list_display = (
        "campaign_name",
        "platform",
        "app_id",
        "os",
        "device_window_days",
        "ipua_window_hours",
        "postbacks",
        "enabled",
        "clicks_24h",
    )
    list_filter = ("platform", "os", "enabled")
    search_fields = ("campaign_name", "app_id", "token")
    readonly_fields = ("token", "click_url_template", "click_stats", "created_at", "updated_at")
    actions = ("enable_links", "disable_links", "resync_links")
    fieldsets = (
        (None, {"fields": ("platform", "app_id", "os", "campaign_name", "enabled")}),
        (_("Matching"), {"fields": ("device_window_days", "ipua_window_hours")}),
        (_("Postbacks"), {"fields": ("postback_activate", "postback_register", "postback_pay", "callback_hosts")}),
        (_("Protection"), {"fields": ("rate_limit_per_second",)}),
        (_("Click URL"), {"fields": ("token", "click_url_template", "click_stats", "created_at", "updated_at")}),
    )

    @admin.display(description=_("posts back"))
    def postbacks(self, obj: TrackingLink) -> str:
        return ", ".join(e for e in platforms.EVENT_TYPES if obj.postback_enabled(e)) or "—"

    @admin.display(description=_("clicks (24 h)"))
    def clicks_24h(self, obj: TrackingLink) -> int | str:
        try:
            return sum(row.get("clicks", 0) for row in selectors.link_click_stats(link_id=obj.pk, hours=24))
        except Exception:
            return "redis unavailable"

    @admin.display(description=_("click-URL template"))
    def click_url_template(self, obj: TrackingLink) -> str:
        if not obj.pk:
            return "Save the link to get its click URL."
        url = platforms.click_url_template(
            site_url=settings.SITE_URL, platform=obj.platform, token=obj.token, os=obj.os
        )
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
            platforms.macros(obj.platform, obj.os).items(),
        )
        return format_html(
            '<textarea readonly rows="4" style="width:100%;font-family:monospace" onclick="this.select()">{}</textarea>'
            "<p>{}</p>"
            "<table><tr><th>{}</th><th>{}</th></tr>{}</table>",
            url,
            _("Paste into the ad platform's click-monitoring (点击监测) field."),
            _("our parameter"),
            _("platform macro"),
            rows,
        )

    @admin.display(description=_("clicks by hour (UTC, from Redis)"))
    def click_stats(self, obj: TrackingLink) -> str:
        if not obj.pk:
            return "—"
        try:
            rows = [r for r in selectors.link_click_stats(link_id=obj.pk, hours=48) if len(r) > 1]
        except Exception:
            return str(_("Redis unavailable"))
        if not rows:
            return str(_("No clicks in the last 48 hours."))
        return format_html(
            "<table><tr><th>{}</th><th>{}</th></tr>{}</table>",
            _("hour"),
            _("counters"),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td></tr>",
                ((r["hour"], ", ".join(f"{k}={v}" for k, v in sorted(r.items()) if k != "hour")) for r in rows),
            ),
        )

    def save_model(self, request, obj: TrackingLink, form, change: bool) -> None:
        values = {name: form.cleaned_data[name] for name in services.LINK_FIELDS if name in form.cleaned_data}
        if change:
            saved = services.tracking_link_update(link=obj, **values)
        else:
            saved = services.tracking_link_create(**values)
        obj.pk, obj.token = saved.pk, saved.token

    def delete_model(self, request, obj: TrackingLink) -> None:
        services.tracking_link_delete(link=obj)

    def delete_queryset(self, request, queryset: QuerySet[TrackingLink]) -> None:
        for link in queryset:
            services.tracking_link_delete(link=link)

    @admin.action(description=_("Enable selected links"), permissions=["change"])
    def enable_links(self, request, queryset: QuerySet[TrackingLink]) -> None:
        for link in queryset:
            services.tracking_link_update(link=link, enabled=True)

    @admin.action(description=_("Disable selected links"), permissions=["change"])
    def disable_links(self, request, queryset: QuerySet[TrackingLink]) -> None:
        for link in queryset:
            services.tracking_link_update(link=link, enabled=False)

    @admin.action(description=_("Re-replicate all links to Redis"), permissions=["change"])
    def resync_links(self, request, queryset) -> None:
        result = services.tracking_links_resync()
        self.message_user(request, f"Synced {result['synced']} link(s), removed {result['removed']} stale replica(s).")


class PostbackInline(ReadOnlyInline):
    model = Postback
    fields = ("event_type", "status", "attempt_count", "succeeded_at", "next_attempt_at", "last_error")
    readonly_fields = fields
    show_change_link = True


class ConversionEventInline(ReadOnlyInline):
    model = ConversionEvent
    fields = ("event_type", "event_id", "occurred_at", "amount_fen", "user_id", "arrived_early")
    readonly_fields = fields


@admin.register(Conversion)
class ConversionAdmin(LedgerSearchMixin, NoWriteBackMixin, DomainErrorMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "activated_at",
        "platform",
        "link",
        "match_method",
        "seconds_to_install",
        "clicks_before_conversion",
        "user_id",
        "is_test",
        "fraud_status",
        "fraud_rule",
    )
    list_filter = (
        "fraud_status",
        values_list_filter("fraud_rule", _("fraud rule"), lambda: FraudRuleKind.choices),  # not a DISTINCT
        "platform",
        "match_method",
        "is_test",
        "app_id",
    )
    ledger_search_fields = ("user_id", "activation_event_id", "click_id")
    inlines = [ConversionEventInline, PostbackInline]
    actions = ["release"]

    @admin.action(description=_("Release rejected installs (post them back once)"), permissions=["change"])
    def release(self, request, queryset):
        released = services.conversions_release(
            conversion_ids=list(queryset.values_list("pk", flat=True)), released_by=request.user.get_username()
        )
        self.message_user(request, f"{released} rejected installs released and queued for postback.")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


def _candidates_table(candidates: list[dict]) -> str:
    if not candidates:
        return str(_("No click was stored under any of the device's keys."))
    colour: dict[str, str] = {
        CandidateVerdict.MATCHED: "#1a7f37",
        CandidateVerdict.ELIGIBLE: "#9a6700",
        CandidateVerdict.REJECTED: "#8a8f99",
    }
    return format_html(
        "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
        _("verdict"),
        _("link"),
        _("platform"),
        _("key"),
        _("click time"),
        _("click id"),
        _("why"),
        format_html_join(
            "",
            '<tr><td style="color:{}"><b>{}</b></td><td>{}</td><td>{}</td><td><code>{}:{}…</code></td>'
            "<td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            (
                (
                    colour.get(str(c.get("verdict")), "#000"),
                    c.get("verdict"),
                    c.get("link_id"),
                    c.get("platform"),
                    c.get("kind"),
                    (c.get("key") or "")[:10],
                    c.get("click_at") or "—",
                    c.get("click_id") or "—",
                    c.get("reason"),
                )
                for c in candidates
            ),
        ),
    )


class DeviceLookupForm(forms.Form):
    app_id = forms.CharField(max_length=128, label=_("App id"))
    os = forms.ChoiceField(
        choices=[("", _("any")), ("ios", "iOS"), ("android", "Android")], required=False, label=_("OS")
    )
    idfa = forms.CharField(required=False, label="IDFA")
    caid = forms.CharField(required=False, label="CAID")
    imei = forms.CharField(required=False, label="IMEI")
    oaid = forms.CharField(required=False, label="OAID")
    android_id = forms.CharField(required=False, label="Android ID")
    ip = forms.CharField(required=False, label="IP")
    ua = forms.CharField(required=False, label=_("User agent"))


@admin.register(MatchTrace)
class MatchTraceAdmin(LedgerSearchMixin, admin.ModelAdmin):
    list_display = ("event_id", "activated_at", "app_id", "os", "outcome", "reason", "is_test", "conversion")
    list_filter = ("outcome", "is_test", "app_id")
    list_select_related = ("conversion",)
    ledger_search_fields = ("event_id", "conversion__user_id")
    change_list_template = "attribution/admin/matchtrace_change_list.html"
    fields = (
        "event_id",
        "app_id",
        "os",
        "user_id",
        "activated_at",
        "outcome",
        "reason",
        "is_test",
        "conversion",
        "device_keys",
        "considered_clicks",
    )

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("clicks considered"))
    def considered_clicks(self, obj: MatchTrace) -> str:
        return _candidates_table(obj.candidates)

    def get_urls(self):
        return [
            path("device/", self.admin_site.admin_view(self.device_view), name="attribution_device_trace"),
            *super().get_urls(),
        ]

    @read_only_view
    def device_view(self, request: HttpRequest):
        """Trace a device now: which stored clicks would match an activation at this moment, and why."""
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        form = DeviceLookupForm(request.GET or None)
        context = {**self.admin_site.each_context(request), "form": form, "title": _("Match trace for a device")}
        if form.is_valid():
            data = form.cleaned_data
            keys = devices.activation_keys(
                {k: data[k] for k in ("idfa", "caid", "imei", "oaid", "android_id")}, ip=data["ip"], ua=data["ua"]
            )
            app_id = data["app_id"]
            # the matcher's own decision (selectors.activation_explain), for an activation now
            explained = selectors.activation_explain(
                app_id=app_id, os=data["os"] or None, keys=keys, activated_at=timezone.now()
            )
            verdict = explained.reason
            if explained.outcome == MatchOutcome.REINSTALL:
                verdict = f"reinstall: {verdict}"
            if explained.test_device is not None:
                verdict += selectors.test_device_note(explained.test_device)
            flat = devices.flat_keys(keys, with_ipua=True)
            context.update(
                keys=flat,
                verdict=verdict,
                table=_candidates_table([c.as_dict() for c in explained.candidates]),
                conversions=selectors.device_conversions(app_id=app_id, keys=flat),
                traces=selectors.device_traces(app_id=app_id, keys=flat),
            )
        return TemplateResponse(request, "attribution/admin/device_trace.html", context)


@admin.register(TestDevice)
class TestDeviceAdmin(DomainErrorMixin, admin.ModelAdmin):
    list_display = ("label", "app_id", "ids", "created_at")
    search_fields = ("label", "idfa", "imei", "oaid", "android_id")
    readonly_fields = ("keys", "created_at")
    actions = ("forget_devices",)

    @admin.display(description=_("ids"))
    def ids(self, obj: TestDevice) -> str:
        return ", ".join(
            f"{n}={getattr(obj, n)}" for n in ("idfa", "caid", "imei", "oaid", "android_id") if getattr(obj, n)
        )

    def save_model(self, request, obj: TestDevice, form, change: bool) -> None:
        services.test_device_save(device=obj)

    def delete_model(self, request, obj: TestDevice) -> None:
        services.test_device_delete(device=obj)

    def delete_queryset(self, request, queryset: QuerySet[TestDevice]) -> None:
        for device in queryset:
            services.test_device_delete(device=device)

    def has_forget_permission(self, request) -> bool:
        """Forgetting deletes the device's conversions, traces and stored clicks."""
        return request.user.has_perm("attribution.delete_conversion")

    @admin.action(description=_("Forget this device (conversions, traces, stored clicks)"), permissions=["forget"])
    def forget_devices(self, request, queryset: QuerySet[TestDevice]) -> None:
        for device in queryset:
            result = services.test_device_forget(device=device)
            self.message_user(
                request,
                f"{device.label}: forgot {result['conversions']} conversion(s), {result['traces']} trace(s), "
                f"{result['pending_events']} waiting event(s) and its stored clicks.",
                messages.SUCCESS,
            )


class PostbackAttemptInline(ReadOnlyInline):
    model = PostbackAttempt
    fields = (
        "number",
        "created_at",
        "method",
        "url",
        "request_body",
        "status_code",
        "response_body",
        "latency_ms",
        "refused",
        "error",
    )
    readonly_fields = fields


class FailedFilter(admin.SimpleListFilter):
    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [
            (PostbackStatus.FAILED, "failed or retrying"),
            (PostbackStatus.REFUSED, PostbackStatus.REFUSED.label),
            (PostbackStatus.SUCCEEDED, PostbackStatus.SUCCEEDED.label),
        ]

    def queryset(self, request, queryset):
        if self.value() == PostbackStatus.FAILED:
            return queryset.filter(status__in=[PostbackStatus.FAILED, PostbackStatus.RETRYING])
        if self.value() in (PostbackStatus.REFUSED, PostbackStatus.SUCCEEDED):
            return queryset.filter(status=self.value())
        return queryset


@admin.register(Postback)
class PostbackAdmin(LedgerSearchMixin, NoWriteBackMixin, DomainErrorMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "conversion_link",
        "platform",
        "event_type",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_error",
    )
    list_filter = (FailedFilter, "status", "event_type", "conversion__platform")
    list_select_related = ("conversion",)
    ledger_search_fields = ("conversion_id",)
    inlines = [PostbackAttemptInline]
    actions = ("retry_postbacks",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    @admin.display(description=_("platform"))
    def platform(self, obj: Postback) -> str:
        return obj.conversion.platform

    @admin.display(description=_("conversion"))
    def conversion_link(self, obj: Postback) -> str:
        url = reverse("admin:attribution_conversion_change", args=[obj.conversion_id])
        return format_html('<a href="{}">{}</a>', url, obj.conversion_id)

    def has_retry_permission(self, request) -> bool:
        """A retry sends the postback to the ad platform again."""
        return request.user.has_perm("attribution.change_postback")

    @admin.action(description=_("Retry the selected failed postbacks now"), permissions=["retry"])
    def retry_postbacks(self, request, queryset: QuerySet[Postback]) -> None:
        retried = services.postbacks_retry(postback_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Queued {retried} postback(s) for another attempt.", messages.SUCCESS)


@admin.register(PendingEvent)
class PendingEventAdmin(LedgerSearchMixin, NoWriteBackMixin, admin.ModelAdmin):
    list_display = ("event_id", "event_type", "app_id", "user_id", "occurred_at", "status", "resolution")
    list_filter = ("status", "event_type")
    ledger_search_fields = ("event_id", "user_id")
    ledger_search_enumerate = ("app_id",)  # (app_id, user_id): one lookup per app

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(SandboxPostback)
class SandboxPostbackAdmin(admin.ModelAdmin):
    """What the sandbox ad platform received (development and the demo; off in production)."""

    list_display = ("received_at", "platform", "method", "event_type", "path")
    list_filter = ("platform", "event_type")
    search_fields = ("path", "body")
    readonly_fields = [f.name for f in SandboxPostback._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
