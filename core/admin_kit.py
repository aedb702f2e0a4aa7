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
- `LedgerSearchMixin`: search for the admins of tables that grow with traffic
  (orders, payment results, claims, coupons, conversions, traces, postbacks,
  processed events): exact matches that an index serves, never a scan of the table;
  `values_list_filter`: a list filter whose choices come from code, not from the ledger;
  `LedgerPaginator`: the unfiltered list of a large ledger is counted from the
  table's statistics, not row by row.

Admins write only through services: `save_model`, `delete_model` and actions are a
few lines that call one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.filters import AllValuesFieldListFilter, FieldListFilter, RelatedOnlyFieldListFilter
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.http import HttpResponseRedirect
from django.utils.functional import cached_property
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext

from core.db import table_rows_estimate
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


# The rows one lookup (a term in a field) may give a ledger search, and the terms one search takes.
LEDGER_SEARCH_MAX_ROWS = 1000
LEDGER_SEARCH_MAX_TERMS = 20
# Past this many rows (by the table's statistics) an unfiltered ledger list is not counted row by row.
LEDGER_EXACT_COUNT_MAX = 100_000


class LedgerPaginator(Paginator):
    """The admin's paginator for a ledger. Django counts the list it pages with
    `COUNT(*)` on every page view; unfiltered, that reads the whole table (InnoDB
    keeps no row count: seconds on tens of millions of rows, on the primary, at the
    peak). Here an unfiltered list is counted from the table's statistics where the
    backend keeps them (MySQL/MariaDB: `core.db.table_rows_estimate`) once they put
    the table past LEDGER_EXACT_COUNT_MAX rows; `estimated` says so and the page
    shows the figure as approximate ("≈"). A filtered or searched list, a smaller
    table and SQLite are counted exactly. The estimate may be off by a few tenths:
    the last pages it offers may be empty, or the rows past its end reachable only
    by a filter, a search or the other order (nobody pages through millions of rows;
    an OFFSET that deep is slow however the list is counted)."""

    estimated = False

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, models.QuerySet):
            return super().count
        query = queryset.query
        unfiltered = (
            not query.where
            and not query.distinct
            and query.group_by is None
            and query.combinator is None
            and not query.is_sliced
        )
        if unfiltered:
            estimate = table_rows_estimate(queryset.model)
            if estimate is not None and estimate > LEDGER_EXACT_COUNT_MAX:
                self.estimated = True
                return estimate
        return super().count


class LedgerSearchMixin(_ModelAdminBase):
    """Search for the admin of a table that grows with traffic: each term is matched
    exactly, field by field, against columns an index serves, so a search reads a few
    index entries however long the table is. Django's own search (`icontains` on every
    search field, OR'd, with joins) reads every row of the table on each search,
    however many millions it holds, on the primary, at the peak when support searches
    most.

    - `ledger_search_fields`: field paths (`order_no`, `order__paycode`,
      `coupons__code`). The last column of each must lead an index (primary key,
      unique, `db_index`, a foreign key, or the first column of a `Meta.indexes` /
      unique constraint), and every relation it crosses must be a foreign key or
      one-to-one with an index on its column. The system check huodong.E002 refuses
      anything else at start-up (`ledger_search_unserved`).
    - `ledger_search_enumerate`: columns of few values that come before the searched
      column in a composite index (ProcessedEvent's `source`, before `event_id` in its
      unique key): the search names every value present (read from the index with
      DISTINCT), so the index serves the lookup.

    The search box takes one or more identifiers separated by spaces (at most
    LEDGER_SEARCH_MAX_TERMS). Each term and field is looked up on its own with an
    equality (no OR across columns, which MariaDB serves only with an index merge
    when every column has an index), at most LEDGER_SEARCH_MAX_ROWS rows each (the
    operator is told when a lookup had more); the list shows their union, with the
    filters and order chosen. A term that cannot be a value of a field (too long, not
    a number, beyond the column's integer range) skips it. The box's help text names
    the fields (`search_help_text`)."""

    ledger_search_fields: tuple[str, ...] = ()
    ledger_search_enumerate: tuple[str, ...] = ()
    # A filtered list counts its own rows only; "N results (M total)" would count the
    # whole ledger again on every page view of a filter (Django offers "Show all").
    show_full_result_count = False
    paginator = LedgerPaginator  # the unfiltered list of a large ledger: counted from the statistics

    def get_search_fields(self, request) -> tuple[str, ...]:
        return self.ledger_search_fields  # Django shows the search box when this is not empty

    @property
    def search_help_text(self) -> str:  # type: ignore[override]
        names = ", ".join(str(ledger_search_label(self.model, path)) for path in self.ledger_search_fields)
        return gettext("Exact match, one or more separated by spaces: %(fields)s") % {"fields": names}

    def get_search_results(self, request, queryset, search_term):
        terms = list(dict.fromkeys(search_term.split()))[:LEDGER_SEARCH_MAX_TERMS]
        if not terms:
            return queryset, False
        enumerated = self.ledger_enumerated()
        found: set[Any] = set()
        for path in self.ledger_search_fields:
            for term in terms:
                lookup = self.ledger_lookup(path, term, enumerated=enumerated)
                if lookup is None:
                    continue
                pks = list(lookup[: LEDGER_SEARCH_MAX_ROWS + 1])
                if len(pks) > LEDGER_SEARCH_MAX_ROWS:
                    self.message_user(
                        request,
                        ngettext(
                            "More than %(count)d row matches %(field)s %(term)s: the first %(count)d are listed; "
                            "narrow the list with a filter.",
                            "More than %(count)d rows match %(field)s %(term)s: the first %(count)d are listed; "
                            "narrow the list with a filter.",
                            LEDGER_SEARCH_MAX_ROWS,
                        )
                        % {
                            "count": LEDGER_SEARCH_MAX_ROWS,
                            "field": ledger_search_label(self.model, path),
                            "term": term,
                        },
                        messages.WARNING,
                    )
                    pks = pks[:LEDGER_SEARCH_MAX_ROWS]
                found.update(pks)
        return queryset.filter(pk__in=found), False

    def ledger_enumerated(self) -> dict[str, list[Any]]:
        """The values present of each `ledger_search_enumerate` column (DISTINCT of an
        index's leading column: MariaDB reads one entry per value)."""
        manager = self.model._default_manager
        return {
            column: list(manager.order_by().values_list(column, flat=True).distinct())
            for column in self.ledger_search_enumerate
        }

    def ledger_lookup(
        self, path: str, term: str, *, enumerated: dict[str, list[Any]] | None = None
    ) -> models.QuerySet | None:
        """The primary keys of the rows whose `path` equals `term` (unordered, as the
        index gives them), or None when no row can match (`term` cannot be a value of
        that field, or an enumerated column has no value yet: an empty table). One
        term per lookup: an equality is a `const`/`ref` access whatever the table's
        size, where an `IN` of several on a small table may be planned as a scan."""
        field = ledger_search_field(self.model, path)
        column = field.target_field if isinstance(field, models.ForeignKey) else field  # a key: the key's range
        try:
            value = column.to_python(term)
            if value is None:
                return None
            column.run_validators(value)  # its length, or the backend's integer range
        except ValidationError:
            return None
        filters: dict[str, Any] = {path: value}
        if "__" not in path:
            for leading, present in (self.ledger_enumerated() if enumerated is None else enumerated).items():
                if not present:
                    return None
                filters[f"{leading}__in"] = present
        return self.model._default_manager.filter(**filters).order_by().values_list("pk", flat=True)


def values_list_filter(
    field: str, title: Any, values: Callable[[], Iterable[tuple[str, Any]]]
) -> type[admin.SimpleListFilter]:
    """A list filter on `field` whose choices are `values()` ([(value, label)], from
    code: the registered event types, the fraud rules), where Django's filter for a
    column without choices lists them with a DISTINCT over the whole table on every
    page view of the list."""

    def lookups(self, request, model_admin):
        return list(values())

    def queryset(self, request, queryset):
        return queryset if self.value() is None else queryset.filter(**{field: self.value()})

    return type(
        f"{field.title().replace('_', '')}Filter",
        (admin.SimpleListFilter,),
        {"title": title, "parameter_name": field, "lookups": lookups, "queryset": queryset},
    )


def ledger_filters_unserved(model_admin: LedgerSearchMixin) -> list[str]:
    """The list filters of a ledger admin that list their choices by reading the
    ledger (Django's `AllValuesFieldListFilter` / `RelatedOnlyFieldListFilter`: a
    DISTINCT over the column, on every page view of the list) where no index leads
    that column (the system check huodong.E003). Choices, booleans, dates, a relation's
    own table and `values_list_filter` read no ledger."""
    problems: list[str] = []
    model = model_admin.model
    for spec in model_admin.list_filter:
        chosen: Any = None
        if isinstance(spec, str):
            path = spec
        elif isinstance(spec, (tuple, list)):
            path, chosen = str(spec[0]), spec[1]
        else:
            continue  # a SimpleListFilter: its lookups are its own code
        fields = get_fields_from_path(model, path)
        field = fields[-1]
        if chosen is None:
            chosen = next(
                (kind for test, kind in FieldListFilter._field_list_filters if test(field)),  # type: ignore[attr-defined]
                AllValuesFieldListFilter,
            )
        if not issubclass(chosen, AllValuesFieldListFilter | RelatedOnlyFieldListFilter):
            continue
        if len(fields) > 1 or not _index_leads(model, field.name, ()):
            problems.append(f"{path!r} lists its choices with a DISTINCT over {model._meta.label} (no index leads it)")
    return problems


def ledger_search_field(model: type[models.Model], path: str) -> models.Field:
    """The field at the end of `path` (`order__paycode`: Order.paycode)."""
    field = get_fields_from_path(model, path)[-1]
    assert isinstance(field, models.Field)
    return field


def ledger_search_label(model: type[models.Model], path: str) -> str:
    """How the search's help text names `path`: the field's verbose name, after the
    relations' (`order__paycode`: "Order paycode")."""
    *relations, field = get_fields_from_path(model, path)
    label = str(getattr(field, "verbose_name", field.name))
    for relation in reversed(relations):
        name = getattr(relation, "verbose_name", None) or relation.related_model._meta.verbose_name
        label = gettext("%(relation)s %(field)s") % {"relation": name, "field": label}
    return capfirst(label)


def _index_leads(model: type[models.Model], column: str, skipped: tuple[str, ...]) -> bool:
    """Whether an index of `model` has `column` first, after leading columns in `skipped`."""
    meta = model._meta
    field = meta.get_field(column)
    if isinstance(field, models.Field) and (field.primary_key or field.unique or getattr(field, "db_index", False)):
        return True  # a foreign key has db_index unless it says otherwise
    orders: list[list[str]] = [list(index.fields) for index in meta.indexes]
    orders += [list(c.fields) for c in meta.constraints if isinstance(c, models.UniqueConstraint) and c.fields]
    orders += [list(fields) for fields in meta.unique_together]
    for fields in orders:
        names = [name.lstrip("-") for name in fields]
        while names and names[0] in skipped:
            names = names[1:]
        if names and meta.get_field(names[0]) == field:
            return True
    return False


def ledger_search_unserved(model_admin: LedgerSearchMixin) -> list[str]:
    """Why each of `model_admin`'s ledger search paths would not be served by an index
    (the system check huodong.E002); empty when every one is."""
    problems: list[str] = []
    if not model_admin.ledger_search_fields:
        problems.append("declares no ledger_search_fields")
    for path in model_admin.ledger_search_fields:
        try:
            *relations, last = get_fields_from_path(model_admin.model, path)
        except FieldDoesNotExist as exc:
            problems.append(f"{path!r}: {exc}")
            continue
        except NotRelationField:
            problems.append(f"{path!r}: a part before the last is not a relation")
            continue
        model: type[models.Model] = model_admin.model
        for relation in relations:
            related = relation.related_model
            assert isinstance(related, type)  # get_fields_from_path followed it
            if relation.many_to_one or (relation.one_to_one and relation.concrete):
                served = _index_leads(model, relation.name, ())  # our column, joined to their primary key
            elif relation.one_to_many or relation.one_to_one:
                remote = relation.remote_field  # their foreign key to us: its column must be indexed
                served = remote is not None and _index_leads(related, remote.name, ())
            else:
                problems.append(f"{path!r}: {relation.name!r} is not a foreign key or one-to-one")
                break
            if not served:
                problems.append(f"{path!r}: the column joining {relation.name!r} has no index")
                break
            model = related
        else:
            skipped = model_admin.ledger_search_enumerate if not relations else ()
            if not _index_leads(model, last.name, skipped):
                problems.append(f"{path!r}: no index of {model._meta.label} starts with {last.name!r}")
    return problems
