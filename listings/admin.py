"""Operators' screens: listing groups, listings, and the bulk upload (上传房源)
with a dry-run preview, a live progress bar and a template download."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from import_export import fields
from import_export.admin import ExportMixin

from components.models import Component
from core.admin_site import read_only_view
from core.spreadsheets import SafeExportResource, formula_like
from listings import progress as import_progress
from listings import services
from listings.importing import COLUMN_BY_KEY, TEMPLATE_COLUMNS, column_label, template_file
from listings.models import ImportJob, ImportStatus, Listing, ListingGroup


def _column(key: str, attribute: str | None = "") -> fields.Field:
    """An export column under the importer's own header (attribute None: dehydrated)."""
    return fields.Field(attribute=key if attribute == "" else attribute, column_name=COLUMN_BY_KEY[key].label)


class ListingResource(SafeExportResource):
    """Export in the import's own columns, so an exported file can be edited and
    uploaded again (the upload itself is the streaming importer, not this)."""

    external_id = _column("external_id")
    city = _column("city", attribute="group__city")
    title = _column("title")
    district = _column("district")
    address = _column("address")
    price_yuan = _column("price_yuan", attribute=None)
    area_m2 = _column("area_m2")
    layout = _column("layout")
    cover_image_url = _column("cover_image_url")
    detail_url = _column("detail_url")
    tags = _column("tags", attribute=None)
    sort_order = _column("sort_order")
    is_active = _column("is_active", attribute=None)

    class Meta:
        model = Listing
        fields = tuple(column.key for column in TEMPLATE_COLUMNS)  # the template's columns, in its order
        export_order = fields

    def dehydrate_price_yuan(self, listing: Listing) -> str:
        return f"{listing.price_fen // 100}.{listing.price_fen % 100:02d}"

    def dehydrate_tags(self, listing: Listing) -> str:
        return "|".join(listing.tags or [])

    def dehydrate_is_active(self, listing: Listing) -> str:
        return "是" if listing.is_active else "否"


@admin.register(ListingGroup)
class ListingGroupAdmin(admin.ModelAdmin):
    list_display = ("city", "component", "position", "listing_count", "created_at")
    list_filter = ("component__activity",)
    search_fields = ("city",)
    raw_id_fields = ("component",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_count=Count("listings"))

    @admin.display(description="listings", ordering="_count")
    def listing_count(self, obj) -> int:
        return obj._count


class ListingForm(forms.ModelForm):
    class Meta:
        model = Listing
        fields = ("component", "group", "external_id", *services.CONTENT_FIELDS)

    def clean(self):
        data = super().clean()
        group, component = data.get("group"), data.get("component")
        if group is not None and component is not None and group.component_id != component.pk:
            self.add_error(
                "group", f"The city {group.city!r} belongs to another listing component (#{group.component_id})."
            )
        if data.get("price_fen") is not None and data["price_fen"] < 0:
            self.add_error("price_fen", "A price cannot be negative.")
        for name in ("external_id", "title", "district", "address", "layout", "tags"):
            values = data.get(name) if name == "tags" else [data.get(name)]
            if any(isinstance(v, str) and formula_like(v) for v in values or []):
                # As in the upload: a formula would run when the export is opened in Excel.
                self.add_error(name, "Text starting with = + - @, a tab or a line break is not allowed (formulas).")
        return data


@admin.register(Listing)
class ListingAdmin(ExportMixin, admin.ModelAdmin):
    form = ListingForm
    resource_classes = [ListingResource]
    list_display = ("external_id", "title", "city", "price_yuan", "area_m2", "layout", "sort_order", "is_active")
    list_filter = ("is_active", "group__city", "component")
    list_editable = ("sort_order", "is_active")
    search_fields = ("external_id", "title", "address")
    raw_id_fields = ("component", "group")
    readonly_fields = ("import_job", "import_line", "created_at", "updated_at")
    list_select_related = ("group",)

    @admin.display(description="city", ordering="group__city")
    def city(self, obj) -> str:
        return obj.group.city

    @admin.display(description="price (元)", ordering="price_fen")
    def price_yuan(self, obj) -> str:
        return f"{obj.price_fen / 100:,.2f}"


class ListingComponentChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"#{obj.pk} {obj.title or 'listings'} · {obj.activity.name} ({obj.activity.slug})"


class UploadForm(forms.Form):
    component = ListingComponentChoice(
        queryset=Component.objects.filter(type=services.LISTING_TYPE).select_related("activity"),
        help_text="The listing component the file goes into.",
    )
    file = forms.FileField(help_text="CSV (UTF-8) or XLSX, first row = header; at most 50 MB.")
    dry_run = forms.BooleanField(
        required=False, initial=True, help_text="Preview what would be created, updated and rejected; change nothing."
    )
    all_or_nothing = forms.BooleanField(
        required=False,
        initial=True,
        help_text="Import nothing if any row has an error. Untick to import the good rows and skip the bad ones.",
    )


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "original_name", "component", "mode", "status", "summary", "created_by", "created_at")
    list_filter = ("status", "dry_run")
    raw_id_fields = ("component",)
    change_form_template = "listings/admin/import_job.html"
    # Errors, preview and counts are laid out by the template above.
    fields = (
        "component", "file", "original_name", "file_size", "dry_run", "all_or_nothing", "status", "message",
        "created_by", "created_at", "started_at", "finished_at",
    )  # fmt: skip

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a job is a record: operators view it, the importer writes it

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, unquote(object_id))  # None for a malformed or unknown id
        if job is None:  # Django's own answer: 403 for a refused POST, else "does not exist"
            return super().change_view(request, object_id, form_url, extra_context)
        extra = {
            "job": job,
            "progress_url": reverse("admin:listings_importjob_progress", args=[job.pk]),
            "apply_url": reverse("admin:listings_importjob_apply", args=[job.pk]),
            "can_apply": job.status == ImportStatus.PREVIEWED and self.has_add_permission(request),
            "live": import_progress.progress_get(job_id=job.pk),
            "errors_display": [{**error, "label": column_label(error["column"] or "")} for error in job.errors],
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    @admin.display(description="mode")
    def mode(self, obj) -> str:
        return ("dry run, " if obj.dry_run else "") + ("all or nothing" if obj.all_or_nothing else "skip bad rows")

    @admin.display(description="result")
    def summary(self, obj) -> str:
        if not obj.finished:
            return "…"
        return (
            f"+{obj.created_count} new, {obj.updated_count} updated, {obj.unchanged_count} unchanged, "
            f"{obj.rejected_count} rejected"
        )

    def get_urls(self):
        opts = self.model._meta
        own = [
            path("upload/", self.admin_site.admin_view(self.upload_view), name=f"{opts.app_label}_importjob_upload"),
            path(
                "template.<str:kind>",
                self.admin_site.admin_view(self.template_view),
                name=f"{opts.app_label}_importjob_template",
            ),
            path(
                "<int:job_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name=f"{opts.app_label}_importjob_progress",
            ),
            path(
                "<int:job_id>/apply/",
                self.admin_site.admin_view(self.apply_view),
                name=f"{opts.app_label}_importjob_apply",
            ),
        ]
        return own + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        return HttpResponseRedirect(reverse("admin:listings_importjob_upload"))

    def upload_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {"component": request.GET.get("component")} if request.GET.get("component") else None
        form = UploadForm(request.POST or None, request.FILES or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = services.listing_import_start(
                    component=form.cleaned_data["component"],
                    upload=upload,
                    filename=upload.name,
                    dry_run=form.cleaned_data["dry_run"],
                    all_or_nothing=form.cleaned_data["all_or_nothing"],
                    user=request.user,
                )
            except services.ImportRefused as exc:
                form.add_error("file", str(exc))
            else:
                return HttpResponseRedirect(reverse("admin:listings_importjob_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Upload listings 上传房源",
            "form": form,
        }
        return TemplateResponse(request, "listings/admin/upload.html", context)

    @read_only_view
    def template_view(self, request, kind: str):
        if kind not in ("xlsx", "csv"):
            raise Http404("The template comes as .xlsx or .csv.")
        content_type = (
            "text/csv; charset=utf-8"
            if kind == "csv"
            else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        response = HttpResponse(template_file(kind), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="listings-template.{kind}"'
        return response

    @read_only_view
    def progress_view(self, request, job_id: int):
        job = get_object_or_404(ImportJob, pk=job_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        live = import_progress.progress_get(job_id=job.pk)
        processed, total = live if live and not job.finished else (job.processed_rows, job.total_rows)
        return JsonResponse(
            {
                "status": job.status,
                "status_label": job.get_status_display(),
                "finished": job.finished,
                "processed": processed,
                "total": total,
            }
        )

    def apply_view(self, request, job_id: int):
        job = get_object_or_404(ImportJob, pk=job_id)
        if request.method != "POST" or not self.has_add_permission(request):
            raise PermissionDenied
        try:
            new = services.listing_import_apply(job=job, user=request.user)
        except services.ImportRefused as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("admin:listings_importjob_change", args=[job.pk]))
        messages.success(request, format_html("Importing {} for real (job #{}).", job.original_name, new.pk))
        return HttpResponseRedirect(reverse("admin:listings_importjob_change", args=[new.pk]))
