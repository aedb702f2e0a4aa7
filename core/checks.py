"""System checks of the platform's own rules."""

from __future__ import annotations

from django.core.checks import Error, Tags, register


def _admin_error(model_admin, problem: str, *, hint: str, id: str) -> Error:
    return Error(f"{type(model_admin).__name__}: {problem}.", hint=hint, obj=type(model_admin), id=id)


@register(Tags.admin)
def admin_actions_declare_permissions(app_configs=None, **kwargs) -> list[Error]:
    """Every admin list action says which permission it needs: an action without
    `allowed_permissions` is offered to anyone who may view the list (analysts too)."""
    from django.contrib import admin

    errors = []
    for model_admin in admin.site._registry.values():
        for func, name, _description in model_admin._get_base_actions():  # type: ignore[attr-defined]
            if not getattr(func, "allowed_permissions", None):
                errors.append(
                    _admin_error(
                        model_admin,
                        f"the admin action {name!r} declares no permission",
                        hint="Use @admin.action(permissions=[...]) with a has_<perm>_permission method.",
                        id="huodong.E001",
                    )
                )
    return errors


@register(Tags.admin)
def ledger_searches_use_indexes(app_configs=None, **kwargs) -> list[Error]:
    """Every ledger admin's search is served by indexes (core.admin_kit.LedgerSearchMixin),
    and no list filter of it reads the whole table to list its choices: a field added
    without one would make each search, or each page view, read the whole ledger."""
    from django.contrib import admin

    from core.admin_kit import LedgerSearchMixin, ledger_filters_unserved, ledger_search_unserved

    errors = []
    for model_admin in admin.site._registry.values():
        if not isinstance(model_admin, LedgerSearchMixin):
            continue
        errors += [
            _admin_error(
                model_admin,
                f"the ledger search {problem}",
                hint="Search only columns an index leads (or add the index), or list its leading columns "
                "of few values in ledger_search_enumerate.",
                id="huodong.E002",
            )
            for problem in ledger_search_unserved(model_admin)
        ]
        errors += [
            _admin_error(
                model_admin,
                f"the list filter {problem}",
                hint="Give the field choices, filter it with core.admin_kit.values_list_filter, or index it.",
                id="huodong.E003",
            )
            for problem in ledger_filters_unserved(model_admin)
        ]
    return errors
