"""Admin doors of alerts: channels, rules, alerts (acknowledge), deliveries (read),
fraud rules (every change audited through `fraud_rule_set`)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from alerts import fraud, services
from alerts.models import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertRule,
    AlertState,
    BeatJobRun,
    ClickOutage,
    FraudRule,
    FraudRuleChange,
)
from core.admin_kit import ReadOnlyAdmin
from core.errors import DomainError


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "min_severity", "app_id", "platform", "cooldown_minutes", "active")
    list_filter = ("kind", "active", "min_severity")
    actions = ["send_test"]

    def save_model(self, request, obj, form, change):
        services.alert_channel_save(channel=obj)

    def delete_model(self, request, obj):
        services.alert_channel_delete(channel=obj)

    @admin.action(description=_("Send a test alert to the selected channels"), permissions=["change"])
    def send_test(self, request, queryset):
        alert = services.alert_test_send(channels=list(queryset))
        self.message_user(request, f"Test alert {alert.pk} queued to {queryset.count()} channels (see deliveries).")


@admin.register(AlertRule)
class AlertRuleAdmin(admin.ModelAdmin):
    list_display = ("key", "name", "severity", "enabled", "params")
    list_filter = ("enabled", "severity")

    def save_model(self, request, obj, form, change):
        services.alert_rule_save(rule=obj)

    def delete_model(self, request, obj):
        services.alert_rule_delete(rule=obj)


class DeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    can_delete = False
    fields = ("channel", "state", "status", "attempts", "sent_at", "next_attempt_at", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("starts_at", "state", "severity", "rule", "title", "detections", "acknowledged_by", "ends_at")
    list_filter = ("state", "severity", "rule")
    search_fields = ("title", "fingerprint")
    inlines = [DeliveryInline]
    actions = ["acknowledge"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        pass  # read-only

    @admin.action(description=_("Acknowledge (stop re-sending while it fires)"), permissions=["change"])
    def acknowledge(self, request, queryset):
        done = 0
        for alert in queryset.filter(state=AlertState.FIRING):
            services.alert_acknowledge(alert=alert, user=request.user)
            done += 1
        self.message_user(request, f"{done} alerts acknowledged.")


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "alert", "channel", "state", "status", "attempts", "sent_at", "next_attempt_at")
    list_filter = ("status", "state", "channel")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class FraudRuleForm(forms.ModelForm):
    class Meta:
        model = FraudRule
        fields = ("kind", "app_id", "mode", "params")

    def clean(self):
        data = super().clean()
        if data.get("kind"):
            try:
                data["params"] = fraud._params_clean(data["kind"], data.get("params") or {})
            except DomainError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return data


@admin.register(FraudRule)
class FraudRuleAdmin(admin.ModelAdmin):
    form = FraudRuleForm
    list_display = ("kind", "app_id", "mode", "params", "updated_at")
    list_filter = ("kind", "mode")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fraud.fraud_rule_set(
            kind=data["kind"],
            app_id=data.get("app_id") or "",
            mode=data["mode"],
            params=data["params"],
            user=request.user,
        )

    def has_delete_permission(self, request, obj=None):
        return False  # set the mode to "off" instead: the audit keeps the rule


@admin.register(FraudRuleChange)
class FraudRuleChangeAdmin(ReadOnlyAdmin):
    list_display = ("changed_at", "kind", "app_id", "changed_by", "before", "after")
    list_filter = ("kind",)


@admin.register(ClickOutage)
class ClickOutageAdmin(ReadOnlyAdmin):
    list_display = ("bucket_start", "count")


@admin.register(BeatJobRun)
class BeatJobRunAdmin(ReadOnlyAdmin):
    list_display = ("job", "task", "last_run_at")
