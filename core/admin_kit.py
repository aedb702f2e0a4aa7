"""Shared admin pieces: every admin.py builds from these instead of its own copy.

- `ReadOnlyInline`: a tabular inline that shows rows and changes nothing.
- `ReadOnlyAdmin`: a model admin that lists and shows rows and adds, changes and
  deletes nothing (records written by services and jobs: audit, rollups, pulls).
- `NoWriteBackMixin`: for admins whose every field is read-only; Save on the change
  page writes nothing (Django would write back the whole row as read at the start of
  the request, undoing a state move, a revocation or a payment made meanwhile).
- `DomainErrorMixin`: a `DomainError` raised by a service during a save, a delete or
  an action becomes an error message on the page the operator was on (the
  transaction is rolled back, nothing is half-written).
- `form_domain_errors`: a service check called from a form's `clean()` turns its
  `DomainError` into a form error (on `details["field"]` when it names one).

Admins write only through services: `save_model`, `delete_model` and actions are a
few lines that call one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect

from core.errors import DomainError

if TYPE_CHECKING:  # the mixin is always combined with a ModelAdmin: type-check it as one
    _ModelAdminBase = admin.ModelAdmin[Any]
else:
    _ModelAdminBase = object


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class NoWriteBackMixin:
    """Save on a read-only change page writes nothing; nothing is added by hand."""

    def has_add_permission(self, request, *args) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        return None

    def save_related(self, request, form, formsets, change) -> None:
        return None


class DomainErrorMixin(_ModelAdminBase):
    """Turn a service's `DomainError` into an admin error message, in the operator's words."""

    def _domain_error(self, request, exc: DomainError) -> HttpResponseRedirect:
        self.message_user(request, exc.message, messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request, *args, **kwargs):
        try:
            return super().changeform_view(request, *args, **kwargs)
        except DomainError as exc:
            return self._domain_error(request, exc)

    def delete_view(self, request, *args, **kwargs):
        try:
            return super().delete_view(request, *args, **kwargs)
        except DomainError as exc:
            return self._domain_error(request, exc)

    def response_action(self, request, queryset):
        try:
            return super().response_action(request, queryset)
        except DomainError as exc:
            return self._domain_error(request, exc)


@contextmanager
def form_domain_errors(form: forms.BaseForm) -> Iterator[None]:
    """In a form's clean(): `with form_domain_errors(self): services.x_check(...)`."""
    try:
        yield
    except DomainError as exc:
        field = (exc.details or {}).get("field") if isinstance(exc.details, dict) else None
        form.add_error(field if field in form.fields else None, exc.message)
