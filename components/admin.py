"""Component settings in the admin: a form generated from the type's schema.
Components are added from their activity's page ("Add component" links)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from activities import services
from activities.models import Activity
from components import registry
from components.forms import config_errors_to_fields, config_fields, config_from_cleaned, config_initial
from components.models import Component
from core.errors import ApiError


class ComponentSettingsForm(forms.ModelForm):
    """title, enabled and one field per config key of the component's type."""

    type_key: str = ""

    class Meta:
        model = Component
        fields = ["title", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cleaned_config = self.instance.config
        if not self.type_key:  # a type whose app is gone: nothing to generate
            return
        self.fields.update(config_fields(self.type_key))
        if not self.is_bound:
            self.initial.update(config_initial(self.type_key, self.instance.config if self.instance.pk else {}))

    def clean(self):
        cleaned = super().clean()
        if not self.type_key:
            return cleaned
        config = config_from_cleaned(self.type_key, cleaned)
        try:
            self.cleaned_config = registry.config_validate(self.type_key, config)
        except registry.ConfigInvalid as exc:
            config_errors_to_fields(self, exc.errors)
        return cleaned


@admin.register(Component)
class ComponentAdmin(admin.ModelAdmin):
    list_display = ("__str__", "activity_link", "type", "position", "enabled", "title", "updated_at")
    list_filter = ("type", "enabled")
    search_fields = ("title", "activity__name", "activity__slug")
    list_select_related = ("activity",)

    @admin.display(description="Activity", ordering="activity__name")
    def activity_link(self, obj):
        url = reverse("admin:activities_activity_change", args=[obj.activity_id])
        return format_html('<a href="{}">{}</a>', url, obj.activity)

    # -- which type and activity are we editing ---------------------------------
    def _type_key(self, request, obj=None) -> str | None:
        key = obj.type if obj is not None else request.GET.get("type")
        try:
            registry.get(key)
        except registry.UnknownComponentType:
            return None
        return key

    def _activity(self, request) -> Activity | None:
        try:
            return Activity.objects.filter(pk=int(request.GET.get("activity", ""))).first()
        except ValueError:
            return None

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if self._type_key(request) is None or self._activity(request) is None:
            self.message_user(request, "Add a component from its activity's page.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:activities_activity_changelist"))
        activity = self._activity(request)
        extra = {
            "title": f"Add {registry.get(self._type_key(request)).label} to “{activity}”",
            **(extra_context or {}),
        }
        return super().add_view(request, form_url, extra)

    def get_form(self, request, obj=None, change=False, **kwargs):
        key = self._type_key(request, obj)
        return type("ComponentSettingsForm_" + (key or "x"), (ComponentSettingsForm,), {"type_key": key or ""})

    def get_fieldsets(self, request, obj=None):
        key = self._type_key(request, obj)
        names = list(config_fields(key)) if key else []
        ctype = registry.get(key) if key else None
        return [
            (None, {"fields": ["title", "enabled"]}),
            (f"Settings · {ctype.label if ctype else ''}", {"fields": names}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return []

    def has_change_permission(self, request, obj=None):
        if obj is not None and self._type_key(request, obj) is None:
            return False  # unknown type (its app was removed): view only
        return super().has_change_permission(request, obj)

    # -- writes go through the services -------------------------------------------
    def save_model(self, request, obj, form, change):
        if change:
            services.component_update(
                component=obj,
                actor=request.user,
                title=form.cleaned_data["title"],
                enabled=form.cleaned_data["enabled"],
                config=form.cleaned_config,
            )
        else:
            created = services.component_create(
                activity=self._activity(request),
                actor=request.user,
                type=self._type_key(request),
                title=form.cleaned_data["title"],
                enabled=form.cleaned_data["enabled"],
                config=form.cleaned_config,
            )
            obj.pk = created.pk
            obj.refresh_from_db()

    def delete_model(self, request, obj):
        services.component_delete(component=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for component in queryset:
            services.component_delete(component=component, actor=request.user)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApiError as exc:
            self.message_user(request, str(exc.detail), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def _back_to_activity(self, request, obj, default):
        if "_continue" in request.POST or "_addanother" in request.POST:
            return default
        return HttpResponseRedirect(reverse("admin:activities_activity_change", args=[obj.activity_id]))

    def response_add(self, request, obj, post_url_continue=None):
        return self._back_to_activity(request, obj, super().response_add(request, obj, post_url_continue))

    def response_change(self, request, obj):
        return self._back_to_activity(request, obj, super().response_change(request, obj))
