"""The operators' screens: activity list with status badges, filters and search; the
activity page with its components inline (reorderable), revisions with rollback,
recent audit entries, a signed preview link and the publish/status/template
actions. Every write goes through activities.services."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from activities import services
from activities.checklist import checklist_blocks, publish_checklist
from activities.models import Activity, ActivityRevision, ActivityStatus, AuditEntry
from activities.views import preview_token_make
from components import registry
from components.admin_extensions import admin_extension, component_remove
from components.forms import config_summary
from components.models import Component
from core.admin_kit import ReadOnlyAdmin
from core.errors import ApiError, DomainError

BADGE_COLOURS = {
    "draft": "#8a8f99",
    "scheduled": "#3370ff",
    "online": "#34c724",
    "offline": "#ff8800",
    "ended": "#646a73",
    "archived": "#bbbfc4",
}


def _status_label(value: str) -> str:
    """A status as the operator reads it (its translated label)."""
    try:
        return str(ActivityStatus(value).label)
    except ValueError:
        return value


# Operator status buttons on the activity page: (target status, label).
STATUS_ACTIONS = (
    (ActivityStatus.OFFLINE, _("Take offline")),
    (ActivityStatus.ONLINE, _("Bring back online")),
    (ActivityStatus.DRAFT, _("Un-schedule")),
    (ActivityStatus.ENDED, _("End now")),
    (ActivityStatus.ARCHIVED, _("Archive")),
)


def status_badge(status: str) -> str:
    return format_html(
        '<span class="hd-badge" data-status="{}" style="background:{};color:#fff;border-radius:10px;'
        'padding:2px 8px;font-size:11px;white-space:nowrap;">{}</span>',
        status,
        BADGE_COLOURS.get(status, "#8a8f99"),
        ActivityStatus(status).label,
    )


class ActivityForm(forms.ModelForm):
    class Meta:
        model = Activity
        fields = list(services.EDITABLE_FIELDS)
        widgets = {"theme_background_color": forms.TextInput(attrs={"type": "color"})}

    def clean(self):
        cleaned = super().clean()
        values = {f: cleaned.get(f) for f in services.EDITABLE_FIELDS if f in cleaned}
        for field, messages_ in services.activity_values_errors(values).items():
            for message in messages_:
                self.add_error(field if field in self.fields else None, message)
        slug = cleaned.get("slug")
        instance = self.instance
        if (
            instance.pk
            and slug
            and slug != Activity.objects.get(pk=instance.pk).slug
            and instance.published_revision_id
        ):
            self.add_error("slug", "The slug of a published activity cannot change (its links are out).")
        return cleaned


class ComponentRowForm(forms.ModelForm):
    class Meta:
        model = Component
        fields = ["position", "title", "enabled"]
        widgets = {"position": forms.NumberInput(attrs={"class": "hd-position", "style": "width:4em"})}


class ComponentInline(admin.TabularInline):
    model = Component
    form = ComponentRowForm
    fields = ("move", "position", "type_label", "title", "enabled", "settings")
    readonly_fields = ("move", "type_label", "settings")
    extra = 0
    ordering = ("position", "id")
    verbose_name = _("component")
    verbose_name_plural = _("Components (drag ☰ or use ↑ ↓ to reorder; disabled ones stay off the page)")
    classes = ("hd-components",)

    def has_add_permission(self, request, obj=None):
        return False  # added through "Add component", which asks for the type's settings

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # inline instances are made per request: remember whether this user may change
        self.can_change = self.has_change_permission(request, obj)
        if self.can_change:
            return fields
        return [f for f in fields if f != "move"]  # readers reorder nothing

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)

        class RowForm(formset.form):
            def hand_clean_DELETE(self):  # noqa: N802 (Django's name)
                # In words with the way out, never Django's protected-objects list.
                if self.cleaned_data.get("DELETE") and self.instance.pk:
                    refusal = admin_extension(self.instance.type).delete_refusal(self.instance)
                    if refusal:
                        self.add_error(None, refusal)

        class Rows(formset):
            def clean(self):
                super().clean()
                for form in self.deleted_forms:
                    if form.instance.pk:
                        refusal = admin_extension(form.instance.type).delete_refusal(form.instance)
                        if refusal:
                            raise forms.ValidationError(refusal)

        formset.form = RowForm
        Rows.form = RowForm
        return Rows

    @admin.display(description="")
    def move(self, obj):
        return format_html(
            '<span class="hd-drag" title="{}" style="cursor:move">☰</span> '
            '<button type="button" class="hd-up" title="{}">↑</button>'
            '<button type="button" class="hd-down" title="{}">↓</button>',
            gettext("Drag to reorder"),
            gettext("Move up"),
            gettext("Move down"),
        )

    @admin.display(description=_("Type"))
    def type_label(self, obj):
        try:
            return registry.get(obj.type).label
        except registry.UnknownComponentType:
            return gettext("%(type)s (unknown type)") % {"type": obj.type}

    @admin.display(description=_("Settings"))
    def settings(self, obj):
        if not obj.pk:
            return "-"
        url = reverse("admin:components_component_change", args=[obj.pk])
        return format_html(
            '<a class="hd-edit-settings" data-type="{}" href="{}">{}</a> <small style="color:#8a8f99">{}</small>',
            obj.type,
            url,
            gettext("Edit settings") if getattr(self, "can_change", True) else gettext("View settings"),
            config_summary(obj.config, 80),
        )


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    form = ActivityForm
    inlines = [ComponentInline]
    change_form_template = "admin/activities/activity/change_form.html"
    list_display = (
        "name",
        "slug",
        "badge",
        "is_template",
        "starts_at",
        "ends_at",
        "serving",
        "created_by",
        "updated_at",
        "public_link",
    )
    list_filter = (
        "status",
        "is_template",
        ("created_by", admin.RelatedOnlyFieldListFilter),
        "created_at",
        "starts_at",
    )
    search_fields = ("name", "slug", "description")
    list_select_related = ("created_by", "published_revision")
    # No date_hierarchy: it needs the database's time-zone tables (MariaDB often has
    # none); the date list filters cover it.
    actions = ["action_publish", "action_take_offline", "action_save_as_template", "action_create_from_template"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "description", "status_badge", "published"]}),
        (_("Schedule"), {"fields": ["starts_at", "ends_at"]}),
        (
            _("Theme"),
            {"fields": ["theme_background_color", "theme_header_image", "theme_share_title", "theme_share_image"]},
        ),
        (_("Preview"), {"fields": ["preview_link"]}),
        (_("Revisions"), {"fields": ["revisions_table"]}),
        (_("Recent changes"), {"fields": ["audit_table"], "classes": ["collapse"]}),
    ]

    class Media:
        js = ("activities/admin-reorder.js",)

    # -- list ----------------------------------------------------------------------
    @admin.display(description=_("Status"), ordering="status")
    def badge(self, obj):
        return status_badge(obj.status)

    @admin.display(description=_("Status"))
    def status_badge(self, obj):
        return status_badge(obj.status) if obj.pk else "-"

    @admin.display(description=_("Serving"), ordering="published_at")
    def serving(self, obj):
        return f"r{obj.published_revision.number}" if obj.published_revision_id else "-"

    @admin.display(description=_("Page"))
    def public_link(self, obj):
        if obj.is_template or obj.status != ActivityStatus.ONLINE:
            return "-"
        return format_html('<a href="/a/{}/" target="_blank">/a/{}/</a>', obj.slug, obj.slug)

    # -- change page read-only parts ----------------------------------------------
    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (name, {"fields": [f for f in opts["fields"] if f in self.form.Meta.fields]})
                for name, opts in self.fieldsets[:3]
            ]
        if self.has_change_permission(request, obj):
            return self.fieldsets
        # Readers: the revisions without their roll-back buttons.
        return [
            (name, {**opts, "fields": ["revisions_read" if f == "revisions_table" else f for f in opts["fields"]]})
            for name, opts in self.fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        return ["status_badge", "published", "preview_link", "revisions_table", "revisions_read", "audit_table"]

    @admin.display(description=_("Published"))
    def published(self, obj):
        if not obj.published_revision_id:
            return gettext("never")
        return format_html(
            '{} · <a href="/a/{}/" target="_blank">{}</a>',
            gettext("revision r%(number)s at %(time)s")
            % {
                "number": obj.published_revision.number,
                "time": timezone.localtime(obj.published_at).strftime("%Y-%m-%d %H:%M"),
            },
            obj.slug,
            gettext("public page"),
        )

    @admin.display(description=_("Preview link"))
    def preview_link(self, obj):
        url = reverse("activity-preview", args=[preview_token_make(obj)])
        hours = settings.ACTIVITY_PREVIEW_TTL_SECONDS // 3600
        return format_html(
            '<a class="hd-preview-link" href="{}" target="_blank">{}</a><br><small>{}</small>',
            url,
            url,
            gettext("Shows the current draft to anyone with the link, no login needed; expires after %(hours)s hours.")
            % {"hours": hours},
        )

    @admin.display(description=_("Revisions"))
    def revisions_table(self, obj):
        return self._revisions(obj, rollback=True)

    @admin.display(description=_("Revisions"))
    def revisions_read(self, obj):
        return self._revisions(obj, rollback=False)

    def _revisions(self, obj, *, rollback: bool):
        revisions = ActivityRevision.objects.filter(activity=obj).select_related("created_by")[:30]
        if not revisions:
            return gettext("No revision yet: publish to create one.")
        rows = []
        for rev in revisions:
            serving = rev.pk == obj.published_revision_id
            url = reverse("admin:activities_activity_rollback", args=[obj.pk, rev.pk])
            button = (
                format_html("<strong>{}</strong>", gettext("serving"))
                if serving
                else ""
                if not rollback
                else format_html(
                    '<button type="submit" class="button hd-rollback" formaction="{}" formmethod="post" '
                    "formnovalidate>{}</button>",
                    url,
                    gettext("Roll back to r%(number)s") % {"number": rev.number},
                )
            )
            rows.append(
                (
                    rev.number,
                    timezone.localtime(rev.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                    rev.created_by or gettext("system"),
                    rev.note,
                    len(rev.snapshot.get("components", [])),
                    button,
                )
            )
        body = format_html_join(
            "", "<tr><td>r{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        )
        return format_html(
            '<table class="hd-revisions"><thead><tr>{}<th></th></tr></thead><tbody>{}</tbody></table>',
            format_html_join(
                "",
                "<th>{}</th>",
                (
                    (h,)
                    for h in (
                        gettext("Revision"),
                        gettext("Published at"),
                        gettext("By"),
                        gettext("Note"),
                        gettext("Components"),
                    )
                ),
            ),
            body,
        )

    @admin.display(description=_("Recent changes"))
    def audit_table(self, obj):
        entries = AuditEntry.objects.filter(activity=obj)[:20]
        rows = [
            (
                timezone.localtime(e.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                e.actor_label,
                e.get_action_display(),
                f"{e.object_type} #{e.object_id}",
                config_summary(e.changes, 160),
            )
            for e in entries
        ]
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
        full = reverse("admin:activities_auditentry_changelist") + f"?activity__id__exact={obj.pk}"
        return format_html(
            '<table class="hd-audit"><tbody>{}</tbody></table><a href="{}">{}</a>',
            body,
            full,
            gettext("Full audit log"),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if obj is not None:
            allowed = services.TRANSITIONS.get(obj.status, frozenset())
            extra |= dict(
                component_types=[(t.key, t.label) for t in registry.all_types()],
                status_actions=[
                    (s.value, label) for s, label in STATUS_ACTIONS if s in allowed and not obj.is_template
                ],
                can_publish=not obj.is_template and obj.status not in (ActivityStatus.ENDED, ActivityStatus.ARCHIVED),
                can_change=self.has_change_permission(request, obj),
            )
        return super().change_view(request, object_id, form_url, extra)

    # -- writes through the services ----------------------------------------------
    def save_model(self, request, obj, form, change):
        values = {f: form.cleaned_data[f] for f in services.EDITABLE_FIELDS if f in form.cleaned_data}
        if change:
            services.activity_update(
                activity=obj, actor=request.user, **{k: v for k, v in values.items() if k in form.changed_data}
            )
            obj.refresh_from_db()
        else:
            created = services.activity_create(actor=request.user, **values)
            obj.pk = created.pk
            obj.refresh_from_db()
            obj._state.adding = False

    def save_formset(self, request, form, formset, change):
        if formset.model is not Component:
            return super().save_formset(request, form, formset, change)
        activity = form.instance
        deleted = [f for f in formset.deleted_forms if f.instance.pk]
        for f in deleted:
            component_remove(component=f.instance, actor=request.user)
        kept = [f for f in formset.forms if f.instance.pk and f not in deleted]
        for f in kept:
            if {"title", "enabled"} & set(f.changed_data):
                services.component_update(
                    component=f.instance,
                    actor=request.user,
                    title=f.cleaned_data["title"],
                    enabled=f.cleaned_data["enabled"],
                )
        order = sorted(kept, key=lambda f: (f.cleaned_data.get("position") or 0, f.instance.pk))
        ids = [f.instance.pk for f in order]
        if ids:
            services.components_reorder(activity=activity, actor=request.user, component_ids=ids)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    def delete_model(self, request, obj):
        services.activity_delete(activity=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for activity in queryset:
            services.activity_delete(activity=activity, actor=request.user)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApiError as exc:
            self.message_user(request, str(exc.detail), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except (ApiError, DomainError) as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:activities_activity_change", args=[object_id]))

    # -- object buttons ----------------------------------------------------------------
    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/publish/", wrap(self.publish_view), name="activities_activity_publish"),
            path("<int:pk>/status/<str:to>/", wrap(self.status_view), name="activities_activity_status"),
            path("<int:pk>/rollback/<int:rev>/", wrap(self.rollback_view), name="activities_activity_rollback"),
            path("<int:pk>/save-as-template/", wrap(self.template_view), name="activities_activity_save_template"),
            path(
                "<int:pk>/create-from-template/",
                wrap(self.from_template_view),
                name="activities_activity_from_template",
            ),
            *super().get_urls(),
        ]

    def _object_post(self, request, pk, do):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        activity = get_object_or_404(Activity, pk=pk)
        if not self.has_change_permission(request, activity):
            raise PermissionDenied
        target = reverse("admin:activities_activity_change", args=[pk])
        try:
            message, target = do(activity) or (gettext("Done."), target)
        except (ApiError, DomainError) as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(target)

    def publish_view(self, request, pk):
        """GET: the checklist (problems block or warn, in words). POST with
        `confirm` (and `confirm_warnings` when there are warnings): publish."""
        activity = get_object_or_404(Activity, pk=pk)
        if not self.has_change_permission(request, activity):
            raise PermissionDenied
        items = publish_checklist(activity)
        blocked = checklist_blocks(items)
        warnings = any(item.level == "warning" for item in items)
        if request.method == "POST" and request.POST.get("confirm") and not blocked:
            if warnings and not request.POST.get("confirm_warnings"):
                self.message_user(
                    request, gettext("Tick that you have read the warnings, then publish."), messages.WARNING
                )
            else:
                return self._object_post(request, pk, lambda a: self._publish(a, request.user))
        elif request.method not in ("GET", "POST"):
            return HttpResponseNotAllowed(["GET", "POST"])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "activity": activity,
            "items": items,
            "blocked": blocked,
            "warnings": warnings,
            "preview_url": reverse("activity-preview", args=[preview_token_make(activity)]),
            "title": gettext("Publish “%s”") % activity.name,
        }
        return TemplateResponse(request, "admin/activities/activity/publish_checklist.html", context)

    def _publish(self, activity, user):
        before = (activity.published_revision_id, activity.status)
        revision = services.activity_publish(activity=activity, actor=user)
        activity.refresh_from_db()
        target = reverse("admin:activities_activity_change", args=[activity.pk])
        if (revision.pk, activity.status) == before:
            return gettext("Nothing changed since the last publish; still serving r%(number)s.") % {
                "number": revision.number
            }, target
        return gettext("Published revision r%(number)s; the activity is %(status)s.") % {
            "number": revision.number,
            "status": _status_label(activity.status),
        }, target

    def status_view(self, request, pk, to):
        def do(activity):
            services.activity_transition(activity=activity, to=to, actor=request.user, reason="operator")
            return gettext("The activity is now %(status)s.") % {"status": _status_label(to)}, reverse(
                "admin:activities_activity_change", args=[activity.pk]
            )

        return self._object_post(request, pk, do)

    def rollback_view(self, request, pk, rev):
        def do(activity):
            revision = get_object_or_404(ActivityRevision, pk=rev, activity=activity)
            new = services.activity_rollback(activity=activity, revision=revision, actor=request.user)
            return gettext("Now serving r%(new)s, a copy of r%(old)s.") % {
                "new": new.number,
                "old": revision.number,
            }, reverse("admin:activities_activity_change", args=[activity.pk])

        return self._object_post(request, pk, do)

    def template_view(self, request, pk):
        def do(activity):
            template = services.activity_save_as_template(activity=activity, actor=request.user)
            return gettext("Saved as template “%(name)s”.") % {"name": template.name}, reverse(
                "admin:activities_activity_change", args=[template.pk]
            )

        return self._object_post(request, pk, do)

    def from_template_view(self, request, pk):
        def do(template):
            activity = services.activity_create_from_template(template=template, actor=request.user)
            return gettext("Created draft “%(name)s” from the template; set its name, slug and dates.") % {
                "name": activity.name
            }, reverse("admin:activities_activity_change", args=[activity.pk])

        return self._object_post(request, pk, do)

    # -- list actions --------------------------------------------------------------------
    def _each(self, request, queryset, do, done: str):
        ok = 0
        for activity in queryset:
            try:
                do(activity)
                ok += 1
            except ApiError as exc:
                self.message_user(request, f"{activity}: {exc.detail}", messages.ERROR)
            except DomainError as exc:
                self.message_user(request, f"{activity}: {exc.message}", messages.ERROR)
        if ok:
            self.message_user(request, gettext("%(done)s: %(count)s.") % {"done": done, "count": ok}, messages.SUCCESS)

    @admin.action(description=_("Publish selected activities"), permissions=["change"])
    def action_publish(self, request, queryset):
        def do(activity):
            problems = [item.message for item in publish_checklist(activity) if item.level == "error"]
            if problems:
                raise DomainError(" ".join(problems))
            services.activity_publish(activity=activity, actor=request.user)

        self._each(request, queryset, do, gettext("Published"))

    @admin.action(description=_("Take selected activities offline"), permissions=["change"])
    def action_take_offline(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda a: services.activity_transition(activity=a, to="offline", actor=request.user, reason="operator"),
            gettext("Taken offline"),
        )

    @admin.action(description=_("Save selected activities as templates"), permissions=["add"])
    def action_save_as_template(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda a: services.activity_save_as_template(activity=a, actor=request.user),
            gettext("Templates saved"),
        )

    @admin.action(description=_("Create activities from selected templates"), permissions=["add"])
    def action_create_from_template(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda a: services.activity_create_from_template(template=a, actor=request.user),
            gettext("Drafts created"),
        )


@admin.register(ActivityRevision)
class ActivityRevisionAdmin(ReadOnlyAdmin):
    """Read-only: what each revision froze (roll back from the activity's page)."""

    list_display = ("activity", "number", "note", "created_by", "created_at", "serving")
    list_filter = ("created_at",)
    search_fields = ("activity__name", "activity__slug", "note")
    list_select_related = ("activity", "created_by")
    fields = ("activity", "number", "note", "rolled_back_from", "created_by", "created_at", "snapshot_pretty")
    readonly_fields = fields

    @admin.display(boolean=True, description=_("Serving"))
    def serving(self, obj):
        return obj.activity.published_revision_id == obj.pk

    @admin.display(description=_("Snapshot"))
    def snapshot_pretty(self, obj):
        import json

        return format_html(
            "<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(obj.snapshot, ensure_ascii=False, indent=2)
        )


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "activity_label",
        "changes_short",
    )
    list_filter = ("action", "object_type", ("actor", admin.RelatedOnlyFieldListFilter), "created_at")
    search_fields = ("activity_label", "actor_label", "object_id")
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    @admin.display(description=_("Changes"))
    def changes_short(self, obj):
        return config_summary(obj.changes, 160)
