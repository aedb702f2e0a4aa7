"""A component's one settings screen: title, enabled, the config form generated
from its type's schema, and whatever its type declares in its admin extension
(components/admin_extensions.py: a coupon pack's stock and coupon templates, a
product's price and stock...), created and edited together in one transaction.
Components are added from their activity's page ("Add component" links), at the
position the operator picks. Writes go through the services."""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from activities import services
from activities.models import Activity
from components import registry
from components.admin_extensions import ComponentAdminExtension, admin_extension, component_remove
from components.forms import config_errors_to_fields, config_fields, config_from_cleaned, config_initial
from components.models import Component
from core.errors import ApiError, DomainError

POSITION_END = "end"
POSITION_TOP = "top"


def error_text(exc: Exception) -> str:
    """What an operator reads of a refused write."""
    if isinstance(exc, ApiError):
        return str(exc.detail)
    return getattr(exc, "message", "") or str(exc)


def component_label(component: Component) -> str:
    try:
        label = registry.get(component.type).label
    except registry.UnknownComponentType:
        label = component.type
    return f"{label} · {component.title}" if component.title else str(label)


def _extension_field_names() -> set[str]:
    names: set[str] = set()
    for ctype in registry.all_types():
        names |= set(admin_extension(ctype.key).form_fields(None))
    return names


def _field_label(name: str) -> str:
    for ctype in registry.all_types():
        field = {**config_fields(ctype.key), **admin_extension(ctype.key).form_fields(None)}.get(name)
        if field is not None:
            return str(field.label or name)
    return name


def _setting_text(obj: Component, name: str) -> str:
    """A setting of a component as an analyst reads it."""
    try:
        registry.get(obj.type)
    except registry.UnknownComponentType:
        return "-"
    extension = admin_extension(obj.type)
    values = {**config_initial(obj.type, obj.config), **extension.initial(obj)}
    value = values.get(name)
    field = {**config_fields(obj.type), **extension.form_fields(obj)}.get(name)
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if value in (None, ""):
        return "-"
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    choices = getattr(field, "choices", None)
    if choices:
        return str(dict(choices).get(value, value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def component_links(request, component: Component) -> list[tuple[str, str]]:
    """The related screens of the component's type the user may use: a link that
    writes (an upload, generating codes) names its permission and shows only to
    users holding it."""
    out = []
    for label, url, *permission in admin_extension(component.type).links(component):
        if permission and not request.user.has_perm(permission[0]):
            continue
        out.append((str(label), url))
    return out


class ComponentSettingsForm(forms.ModelForm):
    """title, enabled, one field per config key of the component's type, and the
    fields and row editors of the type's admin extension."""

    type_key: str = ""
    activity: Activity | None = None

    class Meta:
        model = Component
        fields = ["title", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cleaned_config = self.instance.config
        self.extension: ComponentAdminExtension = admin_extension(self.type_key)
        self.editors = []
        if not self.type_key:  # a type whose app is gone: nothing to generate
            return
        self.fields |= config_fields(self.type_key)
        self.fields |= self.extension.form_fields(self.instance)
        self.extension.adjust_fields(self)
        if self.instance.pk is None and self.activity is not None:
            self.fields["insert_at"] = forms.ChoiceField(
                label=_("Insert at"),
                choices=self.position_choices(),
                initial=POSITION_END,
                required=False,
                help_text=_("Where the new component goes on the page."),
            )
        if not self.is_bound:
            self.initial |= config_initial(self.type_key, self.instance.config if self.instance.pk else {})
            if self.instance.pk:
                self.initial |= self.extension.initial(self.instance)
        self.editors = self.extension.formsets(self.instance, self.data if self.is_bound else None)

    def position_choices(self) -> list[tuple[str, str]]:
        choices = [(POSITION_END, gettext("At the end")), (POSITION_TOP, gettext("At the top"))]
        for component in Component.objects.filter(activity=self.activity).order_by("position", "id"):
            choices.append((str(component.pk), gettext("After “%s”") % component_label(component)))
        return choices

    def clean(self):
        cleaned = super().clean()
        if not self.type_key:
            return cleaned
        config = self.extension.clean_config(self, config_from_cleaned(self.type_key, cleaned))
        try:
            self.cleaned_config = registry.config_validate(self.type_key, config)
        except registry.ConfigInvalid as exc:
            config_errors_to_fields(self, exc.errors)
        editors_valid = all(editor.formset.is_valid() for editor in self.editors)
        if not editors_valid:
            self.add_error(None, gettext("Fix the rows marked below."))
        else:
            self.extension.clean(self, self.editors)
        return cleaned


@admin.register(Component)
class ComponentAdmin(admin.ModelAdmin):
    list_display = ("__str__", "activity_link", "type", "position", "enabled", "title", "updated_at")
    list_filter = ("type", "enabled")
    search_fields = ("title", "activity__name", "activity__slug")
    list_select_related = ("activity",)
    change_form_template = "admin/components/component/change_form.html"

    @admin.display(description=_("Activity"), ordering="activity__name")
    def activity_link(self, obj):
        url = reverse("admin:activities_activity_change", args=[obj.activity_id])
        return format_html('<a href="{}">{}</a>', url, obj.activity)

    @admin.display(description=_("Now"))
    def live_figures(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        rows = admin_extension(obj.type).readonly_summary(obj)
        if not rows:
            return "-"
        return format_html(
            '<table class="hd-figures">{}</table>', format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        )

    # -- read-only screens (analysts): every setting shown as text -----------------
    def __getattr__(self, name):
        # Django shows a read-only field through a same-named attribute of the
        # ModelAdmin: config keys and the types' extension fields have none.
        if name.startswith("cfg_") or name in _extension_field_names():

            def display(obj):
                return _setting_text(obj, name)

            display.short_description = _field_label(name)
            return display
        raise AttributeError(name)

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
            self.message_user(request, gettext("Add a component from its activity's page."), messages.WARNING)
            return HttpResponseRedirect(reverse("admin:activities_activity_changelist"))
        activity = self._activity(request)
        extra = {
            "title": gettext("Add %(type)s to “%(activity)s”")
            % {"type": registry.get(self._type_key(request)).label, "activity": activity},
            **(extra_context or {}),
        }
        return super().add_view(request, form_url, extra)

    def get_form(self, request, obj=None, change=False, **kwargs):
        key = self._type_key(request, obj)
        activity = obj.activity if obj is not None else self._activity(request)
        return type(
            "ComponentSettingsForm_" + (key or "x"),
            (ComponentSettingsForm,),
            {"type_key": key or "", "activity": activity},
        )

    def get_fieldsets(self, request, obj=None):
        key = self._type_key(request, obj)
        names = list(config_fields(key)) if key else []
        ctype = registry.get(key) if key else None
        top = ["title", "enabled"]
        if obj is None and key and self._activity(request) is not None:
            top.append("insert_at")
        fieldsets = [(None, {"fields": top})]
        if names:
            fieldsets.append((gettext("Display · %s") % (ctype.label if ctype else ""), {"fields": names}))
        if key:
            extension = admin_extension(key)
            extra = list(extension.form_fields(obj))
            if extra:
                fieldsets.append(
                    (
                        extension.fieldset_title or ctype.label,
                        {"fields": extra, "description": extension.fieldset_description},
                    )
                )
        if obj is not None:
            fieldsets.append((gettext("Figures"), {"fields": ["live_figures"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return ["live_figures"] if obj is not None else []

    def has_change_permission(self, request, obj=None):
        if obj is not None and self._type_key(request, obj) is None:
            return False  # unknown type (its app was removed): view only
        return super().has_change_permission(request, obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        context["row_editors"] = form.editors
        context["read_only"] = obj is not None and not self.has_change_permission(request, obj)
        context["component_links"] = component_links(request, obj) if obj is not None else []
        return super().render_change_form(request, context, add, change, form_url, obj)

    # -- writes go through the services -------------------------------------------
    def save_model(self, request, obj, form, change):
        if change:
            component = services.component_update(
                component=obj,
                actor=request.user,
                title=form.cleaned_data["title"],
                enabled=form.cleaned_data["enabled"],
                config=form.cleaned_config,
            )
        else:
            activity = self._activity(request)
            component = services.component_create(
                activity=activity,
                actor=request.user,
                type=self._type_key(request),
                title=form.cleaned_data["title"],
                enabled=form.cleaned_data["enabled"],
                config=form.cleaned_config,
            )
            self._insert(request, activity, component, form.cleaned_data.get("insert_at") or POSITION_END)
        form.extension.write(component=component, cleaned=form.cleaned_data, editors=form.editors, actor=request.user)
        obj.pk = component.pk
        obj.refresh_from_db()

    def _insert(self, request, activity, component, where: str) -> None:
        """Move a new component (created last) to the chosen place."""
        if where == POSITION_END:
            return
        order = list(
            Component.objects.filter(activity=activity)
            .exclude(pk=component.pk)
            .order_by("position", "id")
            .values_list("pk", flat=True)
        )
        if where == POSITION_TOP:
            order.insert(0, component.pk)
        else:
            try:
                index = order.index(int(where)) + 1
            except ValueError:
                index = len(order)
            order.insert(index, component.pk)
        services.components_reorder(activity=activity, actor=request.user, component_ids=order)

    def save_related(self, request, form, formsets, change):
        pass  # the extension's rows were written in save_model, through the services

    # -- deleting: refused in words when users hold claims or orders ----------------
    def get_deleted_objects(self, objs, request):
        # The component's own data goes with it (or is refused before, in words):
        # never Django's protected-objects page.
        return [format_html("{}", component_label(o)) for o in objs], {}, set(), []

    def delete_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None and self.has_delete_permission(request, obj):
            refusal = admin_extension(obj.type).delete_refusal(obj)
            if refusal:
                self.message_user(request, refusal, messages.ERROR)
                return HttpResponseRedirect(reverse("admin:components_component_change", args=[obj.pk]))
        try:
            return super().delete_view(request, object_id, extra_context)
        except (ApiError, DomainError) as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:components_component_change", args=[object_id]))

    def response_delete(self, request, obj_display, obj_id):
        activity_id = getattr(self, "_deleted_activity_id", None)
        if activity_id:
            return HttpResponseRedirect(reverse("admin:activities_activity_change", args=[activity_id]))
        return super().response_delete(request, obj_display, obj_id)

    def delete_model(self, request, obj):
        self._deleted_activity_id = obj.activity_id
        component_remove(component=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for component in queryset:
            component_remove(component=component, actor=request.user)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (ApiError, DomainError) as exc:
            self.message_user(request, error_text(exc), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def _back_to_activity(self, request, obj, default):
        if "_continue" in request.POST or "_addanother" in request.POST:
            return default
        return HttpResponseRedirect(reverse("admin:activities_activity_change", args=[obj.activity_id]))

    def response_add(self, request, obj, post_url_continue=None):
        return self._back_to_activity(request, obj, super().response_add(request, obj, post_url_continue))

    def response_change(self, request, obj):
        return self._back_to_activity(request, obj, super().response_change(request, obj))
