"""The admin site every app registers on (`django.contrib.admin.site` is an instance
of this class through `core.apps.HuodongAdminConfig.default_site`).

Read-only accounts (the `analyst` group) may look at everything and change nothing:
- every list action declares the permissions it needs (`@admin.action(permissions=[...])`;
  a system check, `core.checks.admin_actions_declare_permissions`, refuses an action
  without them), and Django offers an action only to users holding one of them;
- a POST that names an action the user is not offered is refused with a 403 here,
  before the change list runs (Django alone would answer "no action selected");
- custom admin views (`get_urls`) check their own permission, and every one of them
  is walked by tests/config/test_admin_permissions.py.
"""

from __future__ import annotations

from functools import wraps

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _


def read_only_view(view):
    """Marks a custom admin view that writes nothing and calls nothing outside (a
    page, a download, a progress poll): the permission walk lets a read-only account
    use it. Every other custom view must refuse a read-only account's POST."""
    view.admin_read_only = True
    return view


def _refuse_actions_not_offered(model_admin: admin.ModelAdmin, view):
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if request.method == "POST":
            named = [name for name in request.POST.getlist("action") if name]
            if named:
                offered = model_admin.get_actions(request)
                if any(name not in offered for name in named):
                    raise PermissionDenied
        return view(request, *args, **kwargs)

    return guarded


class HuodongAdminSite(admin.AdminSite):
    site_header = _("Huodong campaign platform")
    site_title = _("Huodong")
    index_title = _("Operations")

    def admin_view(self, view, cacheable=False):
        model_admin = getattr(view, "__self__", None)
        if isinstance(model_admin, admin.ModelAdmin) and getattr(view, "__name__", "") == "changelist_view":
            view = _refuse_actions_not_offered(model_admin, view)
        return super().admin_view(view, cacheable)


class HuodongAdminConfig(AdminConfig):
    """django.contrib.admin on our site class (listed in INSTALLED_APPS instead of it)."""

    default_site = "core.admin_site.HuodongAdminSite"

    def ready(self) -> None:
        from import_export.admin import ExportMixin

        # django-import-export's export page (a form, then a file of the rows shown) writes nothing.
        read_only_view(ExportMixin.export_action)
        super().ready()
        from axes.admin import AccessAttemptAdmin

        from core import checks  # noqa: F401  (registers huodong.E001)

        # axes' own list action deletes expired lock-out records: it needs the delete permission.
        AccessAttemptAdmin.cleanup_expired_attempts.allowed_permissions = ("delete",)
