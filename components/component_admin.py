"""The banner's settings screen: upload an image (or keep typing its URL)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from components.admin_extensions import CheckItem, ComponentAdminExtension, register_admin
from components.images import image_store
from core.errors import DomainError


class BannerComponentAdmin(ComponentAdminExtension):
    fieldset_title = _("Upload the banner image")

    def form_fields(self, component) -> dict[str, forms.Field]:
        return {
            "banner_upload": forms.FileField(
                label=_("Image file"),
                required=False,
                help_text=_("JPEG, PNG, WebP or GIF, at most 2 MB. Replaces the image URL above."),
                widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp,image/gif"}),
            )
        }

    def adjust_fields(self, form) -> None:
        if "cfg_image" in form.fields:
            form.fields["cfg_image"].required = False
            form.fields["cfg_image"].help_text = _("Or upload a file below.")

    def clean_config(self, form, config: dict) -> dict:
        upload = form.cleaned_data.get("banner_upload")
        if not upload:
            return config
        try:
            return {**config, "image": image_store(upload, folder="banners")}
        except DomainError as exc:
            form.add_error("banner_upload", exc.message)
            return config

    def checklist(self, component) -> list[CheckItem]:
        return []


register_admin("banner", BannerComponentAdmin())
