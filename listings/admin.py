"""Operators' screens: listing groups, listings, and the bulk upload (上传房源)
with a dry-run preview, a live progress bar and a template download."""

from __future__ import annotations

import tempfile

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export import fields
from import_export.admin import ExportMixin

from components.images import image_check
from components.models import Component
from core.admin_site import read_only_view
from core.errors import DomainError
from core.money import yuan_text
from core.spreadsheets import SafeExportResource
from listings import importing, services
from listings import progress as import_progress
from listings.importing import COLUMN_BY_KEY, TEMPLATE_COLUMNS, column_label, template_file
from listings.models import ImportJob, ImportStatus, Listing, ListingGroup
from listings.selectors import listing_cover_url


def _column(key: str, attribute: str | None = "") -> fields.Field:
    """An export column under the importer's own header (attribute None: dehydrated)."""
    return fields.Field(attribute=key if attribute == "" else attribute, column_name=COLUMN_BY_KEY[key].label)


def _change_label(field: str) -> str:
    """An import preview's changed field as the operator knows its column."""
    if field == "price_fen":
        return column_label("price_yuan")
    return column_label(field) if field in COLUMN_BY_KEY else field


def _change_text(field: str, pair: list) -> tuple[object, object]:
    """(old, new) of a changed field as the operator reads it (prices in yuan)."""
    old, new = pair
    if field == "price_fen":
        return yuan_text(old), yuan_text(new)
    return old, new


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
        return yuan_text(listing.price_fen, grouping=False)

    def dehydrate_tags(self, listing: Listing) -> str:
        return "|".join(listing.tags or [])

    def dehydrate_is_active(self, listing: Listing) -> str:
        return "是" if listing.is_active else "否"


class ListingGroupForm(forms.ModelForm):
    class Meta:
        model = ListingGroup
        fields = ("component", "city", "position")

    def clean(self):
        data = super().clean()
        if self.instance.pk and data.get("city") is not None:
            for field, message in services.listing_group_update_check(
                group=self.instance, city=data["city"], position=data.get("position") or 0
            ).items():
                self.add_error(field if field in self.fields else None, message)
        return data


@admin.register(ListingGroup)
class ListingGroupAdmin(admin.ModelAdmin):
    """Cities are created by uploads and listing saves; here they are renamed,
    reordered or deleted (through listings.services)."""

    form = ListingGroupForm
    list_display = ("city", "component", "position", "listing_count", "created_at")
    list_filter = ("component__activity",)
    search_fields = ("city",)
    raw_id_fields = ("component",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_count=Count("listings"))

    def has_add_permission(self, request) -> bool:
        return False  # a city comes with its first listing (upload or listing form)

    def get_readonly_fields(self, request, obj=None):
        return ("component",) if obj is not None else ()

    @admin.display(description=_("listings"), ordering="_count")
    def listing_count(self, obj) -> int:
        return obj._count

    def save_model(self, request, obj, form, change) -> None:
        services.listing_group_update(group=obj, city=obj.city, position=obj.position)

    def delete_model(self, request, obj) -> None:
        services.listing_groups_delete(group_ids=[obj.pk])

    def delete_queryset(self, request, queryset) -> None:
        services.listing_groups_delete(group_ids=list(queryset.values_list("pk", flat=True)))


class ListingForm(forms.ModelForm):
    """The rules are listings.services.listing_write_check's (the upload's own,
    listings.importing.check): shown beside the fields, nothing copied here."""

    cover_fields: tuple[str, ...] = ()  # form-only fields (the cover upload), not listing fields

    class Meta:
        model = Listing
        fields = ("component", "group", "external_id", *services.CONTENT_FIELDS)

    def clean(self):
        data = super().clean()
        names = [name for name in self.fields if name not in self.cover_fields]
        fields = {name: data[name] for name in names if name in data}
        if len(fields) == len(names):  # every field read: the service's rules apply to the whole
            listing = Listing.objects.get(pk=self.instance.pk) if self.instance.pk else Listing()
            for field, message in services.listing_write_check(listing=listing, fields=fields).items():
                self.add_error(field if field in self.fields else None, message)
        return data


class ListingChangeForm(ListingForm):
    """The listing's page: its fields, plus a cover image to upload (or the linked URL
    kept). The image rules are the banner's (components.images.image_check)."""

    cover_fields = ("cover_upload", "cover_clear")

    cover_upload = forms.FileField(
        label=_("Upload a cover image"),
        required=False,
        help_text=_("JPEG, PNG, WebP or GIF, at most 2 MB. Shown instead of the cover image URL."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp,image/gif"}),
    )
    cover_clear = forms.BooleanField(
        label=_("Remove the uploaded cover"),
        required=False,
        help_text=_("Show the cover image URL again (or the placeholder when it is empty)."),
    )

    def clean_cover_upload(self):
        upload = self.cleaned_data.get("cover_upload")
        if upload:
            try:
                image_check(upload)
            except DomainError as exc:
                raise forms.ValidationError(exc.message, code=exc.code) from None
        return upload


@admin.register(Listing)
class ListingAdmin(ExportMixin, admin.ModelAdmin):
    form = ListingChangeForm
    resource_classes = [ListingResource]
    list_display = ("external_id", "title", "city", "price_yuan", "area_m2", "layout", "sort_order", "is_active")
    list_filter = ("is_active", "group__city", "component")
    list_editable = ("sort_order", "is_active")
    search_fields = ("external_id", "title", "address")
    raw_id_fields = ("component", "group")
    readonly_fields = ("cover_preview", "import_job", "import_line", "created_at", "updated_at")
    list_select_related = ("group",)

    def save_model(self, request, obj, form, change) -> None:
        """Through the service (rules, and the public city counts invalidated: a listing
        switched off in the list shows at once); list_editable saves come here too."""
        cover_fields = getattr(form, "cover_fields", ())
        if change:
            fields = {name: form.cleaned_data[name] for name in form.changed_data if name not in cover_fields}
            services.listing_update(listing_id=obj.pk, fields=fields)
        else:
            values = {name: value for name, value in form.cleaned_data.items() if name not in cover_fields}
            obj.pk = services.listing_create(fields=values).pk
        upload = form.cleaned_data.get("cover_upload")
        if upload or form.cleaned_data.get("cover_clear"):
            obj.cover_image = services.listing_cover_image_set(listing_id=obj.pk, upload=upload or None).cover_image

    @admin.display(description=_("cover as shown"))
    def cover_preview(self, obj) -> str:
        url = listing_cover_url(obj) if obj is not None and obj.pk else ""
        if not url:
            return gettext("No cover: pages show the placeholder.")
        return format_html('<img src="{}" alt="" style="max-width:240px;max-height:180px;border-radius:6px">', url)

    def delete_model(self, request, obj) -> None:
        services.listings_delete(listing_ids=[obj.pk])

    def delete_queryset(self, request, queryset) -> None:
        services.listings_delete(listing_ids=list(queryset.values_list("pk", flat=True)))

    @admin.display(description=_("city"), ordering="group__city")
    def city(self, obj) -> str:
        return obj.group.city

    @admin.display(description=_("price (元)"), ordering="price_fen")
    def price_yuan(self, obj) -> str:
        return yuan_text(obj.price_fen)


class ListingComponentChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return f"#{obj.pk} {obj.title or 'listings'} · {obj.activity.name} ({obj.activity.slug})"


class UploadForm(forms.Form):
    component = ListingComponentChoice(
        queryset=Component.objects.filter(type=services.LISTING_TYPE).select_related("activity"),
        help_text=_("The listing component the file goes into."),
    )
    file = forms.FileField(help_text=_("CSV (UTF-8) or XLSX, first row = header; at most 50 MB."))
    dry_run = forms.BooleanField(
        required=False,
        initial=True,
        help_text=_("Preview what would be created, updated and rejected; change nothing."),
    )
    all_or_nothing = forms.BooleanField(
        required=False,
        initial=True,
        help_text=_("Import nothing if any row has an error. Untick to import the good rows and skip the bad ones."),
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

    def delete_model(self, request, obj) -> None:
        services.import_jobs_delete(job_ids=[obj.pk])

    def delete_queryset(self, request, queryset) -> None:
        services.import_jobs_delete(job_ids=list(queryset.values_list("pk", flat=True)))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, unquote(object_id))  # None for a malformed or unknown id
        if job is None:  # Django's own answer: 403 for a refused POST, else "does not exist"
            return super().change_view(request, object_id, form_url, extra_context)
        extra = {
            "job": job,
            "progress_url": reverse("admin:listings_importjob_progress", args=[job.pk]),
            "apply_url": reverse("admin:listings_importjob_apply", args=[job.pk]),
            "can_apply": importing.import_apply_refusal(job) is None and self.has_add_permission(request),
            "can_apply_skipping": (
                job.all_or_nothing
                and job.rejected_count > 0
                and importing.import_apply_refusal(job, all_or_nothing=False) is None
                and self.has_add_permission(request)
            ),
            "errors_url": (
                reverse("admin:listings_importjob_errors", args=[job.pk])
                if job.rejected_count and job.file and job.status != ImportStatus.FAILED
                else ""
            ),
            "can_upload": self.has_add_permission(request),
            "live": import_progress.progress_get(job_id=job.pk),
            "errors_display": [{**error, "label": column_label(error["column"] or "")} for error in job.errors],
            "created_display": [
                {**item, "price_yuan": yuan_text(item.get("price_fen"))} for item in job.preview.get("created", [])
            ],
            "updated_display": [
                {
                    **item,
                    "changes": {
                        _change_label(field): _change_text(field, pair) for field, pair in item["changes"].items()
                    },
                }
                for item in job.preview.get("updated", [])
            ],
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    @admin.display(description=_("mode"))
    def mode(self, obj) -> str:
        rows = gettext("all or nothing") if obj.all_or_nothing else gettext("skip bad rows")
        return gettext("dry run, %(rows)s") % {"rows": rows} if obj.dry_run else rows

    @admin.display(description=_("result"))
    def summary(self, obj) -> str:
        if not obj.finished:
            return "…"
        return gettext("+%(created)s new, %(updated)s updated, %(unchanged)s unchanged, %(rejected)s rejected") % {
            "created": obj.created_count,
            "updated": obj.updated_count,
            "unchanged": obj.unchanged_count,
            "rejected": obj.rejected_count,
        }

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
                "<int:job_id>/errors/",
                self.admin_site.admin_view(self.errors_view),
                name=f"{opts.app_label}_importjob_errors",
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
                job = importing.listing_import_start(
                    component=form.cleaned_data["component"],
                    upload=upload,
                    filename=upload.name,
                    dry_run=form.cleaned_data["dry_run"],
                    all_or_nothing=form.cleaned_data["all_or_nothing"],
                    user=request.user,
                )
            except DomainError as exc:
                form.add_error("file", exc.message)
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

    @read_only_view
    def errors_view(self, request, job_id: int):
        """The job's rows with an error column, in the uploaded format (CSV or XLSX)."""
        job = get_object_or_404(ImportJob, pk=job_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        if not job.file or not job.rejected_count or job.status == ImportStatus.FAILED:
            raise Http404("This import has no rows with errors to download (or its file has been deleted).")
        out = tempfile.TemporaryFile()
        try:
            importing.errors_file_write(job=job, out=out)
        except importing.FileRefused as exc:
            out.close()
            raise Http404(str(exc)) from None
        out.seek(0)
        return FileResponse(out, as_attachment=True, filename=importing.errors_file_name(job))

    def apply_view(self, request, job_id: int):
        job = get_object_or_404(ImportJob, pk=job_id)
        if request.method != "POST" or not self.has_add_permission(request):
            raise PermissionDenied
        skip = request.POST.get("skip_bad_rows") == "1"
        try:
            new = importing.listing_import_apply(job=job, user=request.user, all_or_nothing=False if skip else None)
        except DomainError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(reverse("admin:listings_importjob_change", args=[job.pk]))
        messages.success(request, format_html("Importing {} for real (job #{}).", job.original_name, new.pk))
        return HttpResponseRedirect(reverse("admin:listings_importjob_change", args=[new.pk]))
