"""Extension point of the component registry for the admin: what a component
type adds to its one settings screen.

A type's app declares it in `<app>/component_admin.py` (autodiscovered when
Django starts, like `component_types.py`):

    from components.admin_extensions import ComponentAdminExtension, register_admin

    class CouponPackAdmin(ComponentAdminExtension):
        fieldset_title = _("Coupon pack")
        def form_fields(self, component): ...      # extra form fields, named "<prefix>_..."
        def initial(self, component): ...          # their values for an existing component
        def formsets(self, component, data=None): ...  # optional row editors (coupon templates)
        def write(self, *, component, cleaned, editors, actor): ...  # calls the app's services

    register_admin("coupon_pack", CouponPackAdmin())

The component admin (components/admin.py) renders the extra fields and row
editors under the component's own settings, validates them together, and after
the component itself is written calls `save` in the same transaction. It never
names a type: everything type-specific is here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django import forms
from django.db import transaction
from django.utils.functional import Promise


@dataclass(frozen=True)
class CheckItem:
    """One line of the publish checklist: `level` is "ok", "warning" or "error"
    (an error blocks publishing)."""

    level: str
    message: str


@dataclass
class RowEditor:
    """A formset shown under the settings (e.g. a pack's coupon templates)."""

    title: str
    formset: forms.BaseFormSet
    help_text: str = ""


class ComponentAdminExtension:
    """Defaults: nothing added. Override what the type needs."""

    fieldset_title: str | Promise = ""  # a lazy translation is fine
    fieldset_description: str = ""

    def form_fields(self, component) -> dict[str, forms.Field]:
        """Extra form fields (unique names, e.g. `pack_total_stock`)."""
        return {}

    def adjust_fields(self, form: forms.Form) -> None:
        """Change the generated fields (e.g. an upload makes the URL optional)."""

    def clean_config(self, form: forms.Form, config: dict) -> dict:
        """The config about to be validated, from the cleaned fields (e.g. the URL
        of an uploaded image put in)."""
        return config

    def initial(self, component) -> dict:
        """Initial values of the extra fields for an existing component (its pk is set)."""
        return {}

    def formsets(self, component, data=None) -> list[RowEditor]:
        """Row editors, bound to `data` when given (the POST)."""
        return []

    def clean(self, form: forms.Form, editors: list[RowEditor]) -> None:
        """Cross-field checks: call `form.add_error(field, message)`."""

    def write(self, *, component, cleaned: dict, editors: list[RowEditor], actor) -> None:
        """Write the component's data through the app's services (runs in the
        admin's transaction, after the component row is written)."""

    def readonly_summary(self, component) -> list[tuple[str, str]]:
        """(label, value) pairs shown read-only at the top (live figures: stock left, sold)."""
        return []

    def links(self, component) -> Sequence[tuple[str, ...]]:
        """(label, url) pairs: related screens reached from the component. A screen
        that writes adds the permission it needs, `(label, url, "app.codename")`:
        users without it (analysts) do not see the link."""
        return []

    def delete_refusal(self, component) -> str | None:
        """Why this component may not be deleted (it has claims, orders...), in
        words with the way out; None when it may."""
        return None

    def before_delete(self, *, component, actor) -> None:
        """Remove the component's own data that would block the deletion."""

    def checklist(self, component) -> list[CheckItem]:
        """What publishing needs of this component, in words."""
        return []


_EXTENSIONS: dict[str, ComponentAdminExtension] = {}
_DEFAULT = ComponentAdminExtension()


def register_admin(key: str, extension: ComponentAdminExtension) -> ComponentAdminExtension:
    if key in _EXTENSIONS:
        raise ValueError(f"component type {key!r} already has an admin extension")
    _EXTENSIONS[key] = extension
    return extension


def admin_extension(key: str) -> ComponentAdminExtension:
    """The type's extension, or one that adds nothing."""
    return _EXTENSIONS.get(key, _DEFAULT)


@transaction.atomic
def component_remove(*, component, actor) -> None:
    """Delete a component from the admin: refused in words (DomainError
    `component_in_use`) when its type says users hold something of it; otherwise
    its own blocking data goes first, then the component (activities service)."""
    from activities import services
    from core.errors import DomainError

    extension = admin_extension(component.type)
    refusal = extension.delete_refusal(component)
    if refusal:
        raise DomainError(refusal, code="component_in_use")
    extension.before_delete(component=component, actor=actor)
    services.component_delete(component=component, actor=actor)
