"""Database helpers shared by the apps."""

from __future__ import annotations

import inspect
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson
from django.db import NotSupportedError, OperationalError, connection, models
from django.db.models import signals
from django.db.models.base import ModelState
from django.db.models.constants import OnConflict
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query_utils import DeferredAttribute
from django.utils import timezone

logger = logging.getLogger("huodong.db")

T = TypeVar("T")
M = TypeVar("M", bound=models.Model)

# MySQL/MariaDB: deadlock victim, lock wait timeout. InnoDB rolls back the whole
# transaction for these, so the whole request is safe to run again.
_RETRYABLE_MYSQL_ERRORS = {1213, 1205}


def db_retry(fn: Callable[[], T], *, attempts: int = 5) -> T:
    """Run a whole transaction again when the database killed it as a deadlock
    victim or on a lock timeout. Only outside any atomic block (the transaction
    must be ours to retry)."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except OperationalError as exc:
            code = exc.args[0] if exc.args else None
            retryable = connection.vendor == "mysql" and code in _RETRYABLE_MYSQL_ERRORS
            if not retryable or attempt == attempts or connection.in_atomic_block:
                raise
            logger.warning("retrying transaction", extra={"attempt": attempt, "mysql_error": code})
            time.sleep(random.uniform(0.005, 0.05) * attempt)
    raise AssertionError("unreachable")


def sql_in(count: int) -> str:
    """`(%s, %s, ...)`: the placeholders of an IN list of `count` bound values, for plain
    SQL read on a hot path (the ORM's compilation of a long IN list costs more than the
    database's answer). Never empty: `IN ()` is not SQL, so the caller skips the query."""
    if count < 1:
        raise ValueError("an IN list needs at least one value")
    return "(" + ", ".join(["%s"] * count) + ")"


def model_field(model: type[models.Model], name: str) -> models.Field:
    """The concrete field `name` of `model` (a field name, an attname such as `link_id`,
    or `pk`), for SQL built from the models."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not isinstance(field, models.Field) or field.column is None:
        raise ValueError(f"{model.__name__}.{name} is not a column")
    return field


def sql_columns(model: type[models.Model], *fields: str) -> tuple[str, dict[str, str]]:
    """The quoted table name of `model` and the quoted columns of its `fields` (by field
    name), for plain SQL built from the models (a renamed column follows)."""
    quote = connection.ops.quote_name
    return quote(model._meta.db_table), {name: quote(str(model_field(model, name).column)) for name in fields}


def values_where(
    model: type[models.Model],
    *,
    fields: Sequence[str],
    where: str,
    params: Sequence[Any],
    order_by: Sequence[str] = (),
    for_update: bool = False,
) -> list[tuple]:
    """The values of `fields` (field names; `pk` for the primary key) of the rows of
    `model` that meet `where` (plain SQL, `%s` placeholders for `params`), as
    `values_list` gives them (each column through the backend's and the field's
    converters, as the ORM applies them), without the compilation of a filtered
    queryset. `order_by`: field names, `-` for descending. `for_update`: FOR UPDATE
    where the backend has it (as `select_for_update`: SQLite locks the database on its
    first write instead)."""
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = [model_field(model, name) for name in fields]
    cols = [field.get_col(meta.db_table) for field in columns]
    # the ORM's converters, in its order: the backend's, then the field's (from_db_value)
    converters = [[*connection.ops.get_db_converters(col), *col.get_db_converters(connection)] for col in cols]
    sql = f"SELECT {', '.join(f'{table}.{quote(str(field.column))}' for field in columns)} FROM {table} WHERE {where}"
    sql += _sql_order_by(model, order_by)
    if for_update and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not any(converters):
        return [tuple(row) for row in rows]
    out = []
    for row in rows:
        values = list(row)
        for index, chain in enumerate(converters):
            for converter in chain:
                values[index] = converter(values[index], cols[index], connection)
        out.append(tuple(values))
    return out


_BUILD_PLANS: dict[type[models.Model], tuple[list[tuple[str, models.Field]], frozenset[str], bool]] = {}


_INIT_SIGNALS = (signals.pre_init, signals.post_init)


def instance_build(model: type[M], values: dict[str, Any]) -> M:
    """An unsaved instance of `model` from its concrete fields' values by attname (a
    foreign key by `<name>_id`), the fields left out at their defaults (called per
    instance: a `dict` default is never shared): what `model(**values)` gives. For hot
    paths that build hundreds of rows a batch. A name that is not a concrete field's
    attname raises TypeError, as `model(**values)` would. The caller caches any related
    object it already holds (`field.set_cached_value`).

    Built without the constructor's per-field work where that work only stores the
    value: when every concrete field's attribute on the class is Django's plain
    `DeferredAttribute` or `ForeignKeyDeferredAttribute` (whose setter, on a new
    instance, only stores it too) and no `pre_init`/`post_init` receiver listens to
    the model, the values go into the instance's `__dict__` at once (3.4 against
    6.2 µs for a conversion; `model(**values)` 9.4); otherwise through the
    constructor's positional fast path."""
    plan = _BUILD_PLANS.get(model)
    if plan is None:
        fields = model._meta.concrete_fields
        plain = all(
            type(inspect.getattr_static(model, f.attname, None)) in (DeferredAttribute, ForeignKeyDeferredAttribute)
            for f in fields
        )
        plan = _BUILD_PLANS[model] = (
            [(f.attname, f) for f in fields],
            frozenset(f.attname for f in fields),
            plain,
        )
    fields_by_name, names, plain = plan
    if not names.issuperset(values):
        raise TypeError(f"{model.__name__} got unexpected field(s) {sorted(set(values) - names)}")
    if plain and not any(signal.receivers and signal.has_listeners(model) for signal in _INIT_SIGNALS):
        instance = model.__new__(model)
        instance._state = ModelState()
        instance.__dict__.update(
            {name: values[name] if name in values else field.get_default() for name, field in fields_by_name}
        )
        return instance
    return model(*[values[name] if name in values else field.get_default() for name, field in fields_by_name])


def instances_where(model: type[M], *, where: str, params: Sequence[Any]) -> list[M]:
    """The instances of `model` whose rows meet `where` (plain SQL, `%s` placeholders for
    `params`; `sql_columns` and `sql_in` build it), in the model's default ordering:
    `Model.objects.raw`, the ORM's own row-to-instance path (its converters), without
    the compilation of a filtered queryset. For reads on a hot path, where building a
    two-row query through the ORM cost three times what running it does."""
    ordering = [item for item in model._meta.ordering or () if isinstance(item, str)]
    if len(ordering) != len(model._meta.ordering or ()):
        raise TypeError(f"{model.__name__}'s ordering {model._meta.ordering!r} is not field names")
    sql = f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)} WHERE {where}"
    return list(model._default_manager.raw(sql + _sql_order_by(model, ordering), params))


def _sql_order_by(model: type[models.Model], names: Sequence[str]) -> str:
    """` ORDER BY` the columns of `names` (field names, `-` for descending), or ""."""
    if not names:
        return ""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    return " ORDER BY " + ", ".join(
        f"{table}.{quote(str(model_field(model, name.lstrip('-')).column))}{' DESC' if name.startswith('-') else ''}"
        for name in names
    )


def table_rows_estimate(model: type[models.Model]) -> int | None:
    """The rows of `model`'s table by the storage engine's statistics (MySQL/MariaDB:
    `information_schema.TABLES.TABLE_ROWS`, InnoDB's sampled estimate, refreshed as
    the table changes and by ANALYZE TABLE: off by up to a few tenths), read in a
    millisecond where `COUNT(*)` reads every row. None where the backend keeps no such
    figure (SQLite) or has none for the table."""
    if connection.vendor != "mysql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            [model._meta.db_table],
        )
        row = cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def rows_insert(
    model: type[models.Model],
    *,
    fields: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning_pk: bool = False,
    update_on_conflict: Sequence[str] = (),
    unique_fields: Sequence[str] = (),
) -> list[int]:
    """Insert `rows` of `model` in multi-row INSERTs: what `bulk_create` writes, without
    its per-object cost (model instances, the insert compiler's per-value preparation).
    Each row is a tuple of Python values of `fields` (attnames, e.g. `link_id`), in that
    order; a concrete field left out gets its default (`auto_now` / `auto_now_add`: one
    `timezone.now()` for the call), as `bulk_create` would give it. Values are adapted
    as the ORM adapts them: datetimes by the backend, JSON with `field.encoder`, plain
    text, number and boolean columns as they are, any other field by `get_db_prep_save`.

    `returning_pk`: the new primary keys, in row order (INSERT ... RETURNING: MariaDB >=
    10.5, SQLite >= 3.35, as `bulk_create` needs). `update_on_conflict`: an upsert of
    those fields when a row clashes with a unique key (`unique_fields` is the conflict
    target SQLite needs; MySQL's ON DUPLICATE KEY takes none), as
    `bulk_create(update_conflicts=True)`. Statements are split as `bulk_create` splits
    them (`bulk_batch_size`: SQLite's limit on parameters)."""
    if not rows:
        return []
    if returning_pk and not connection.features.can_return_rows_from_bulk_insert:
        raise NotSupportedError("rows_insert(returning_pk=True) needs INSERT ... RETURNING")
    meta = model._meta
    given = {name: index for index, name in enumerate(fields)}
    concrete = [f for f in meta.concrete_fields if f.attname in given or not f.primary_key]
    unknown = set(given) - {f.attname for f in concrete}
    if unknown:
        raise ValueError(f"{model.__name__} has no column for {sorted(unknown)}")
    now = timezone.now()
    ops = connection.ops
    # per column: (index in the row or -1, adapter, the left-out field's adapted value)
    plan: list[tuple[int, Callable[[Any], Any], Any]] = []
    for field in concrete:
        adapt = db_value_adapter(field)
        if field.attname in given:
            plan.append((given[field.attname], adapt, None))
        else:
            auto = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
            value = now if auto else field.get_default()
            plan.append((-1, adapt, adapt(value)))
    suffix = ""
    column = {f.attname: str(f.column) for f in meta.concrete_fields}
    column.update({f.name: str(f.column) for f in meta.concrete_fields})
    if update_on_conflict:
        suffix = " " + ops.on_conflict_suffix_sql(
            concrete,
            OnConflict.UPDATE,
            [column[name] for name in update_on_conflict],
            [column[name] for name in unique_fields],
        )
    if returning_pk:
        suffix += " RETURNING " + ops.quote_name(column[meta.pk.attname])
    placeholder = "(" + ", ".join(["%s"] * len(plan)) + ")"
    columns = ", ".join(ops.quote_name(column[f.attname]) for f in concrete)
    head = f"INSERT INTO {ops.quote_name(meta.db_table)} ({columns}) VALUES "
    per_statement = max(1, ops.bulk_batch_size(concrete, rows))
    pks: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            adapted = [
                [constant if index < 0 else adapt(row[index]) for index, adapt, constant in plan] for row in chunk
            ]
            values = mysql_rows_literal(adapted) if connection.vendor == "mysql" else None
            if values is not None:  # the statement's text, escaped in one call: nothing left to bind
                cursor.execute(head + values + suffix)
            else:
                cursor.execute(
                    head + ", ".join([placeholder] * len(chunk)) + suffix, [value for row in adapted for value in row]
                )
            if returning_pk:
                pks.extend(pk for (pk,) in cursor.fetchall())
    return pks


# MySQL/MariaDB: stand-ins for a string literal's quotes and for the gap between two
# pieces while many values are escaped in one call (`mysql_escape_marked`): control
# characters the escaping leaves as they are (counted before use: a value holding one
# makes the caller escape or bind value by value).
MYSQL_QUOTE, MYSQL_GAP = "\x1f", "\x1e"


def mysql_escape_marked(text: str, *, quotes: int, gaps: int) -> bytes | None:
    """MySQL/MariaDB: `text`, built with MYSQL_QUOTE wherever a string literal's quote
    goes and MYSQL_GAP between pieces, escaped by the connection's own escaping
    (`string_literal`, i.e. mysql_real_escape_string for the connection's character
    set, what mysqlclient applies to each bound str) in ONE call, the quote stand-ins
    then replaced: escaping works character by character, so this is byte for byte
    what escaping each string alone gives. The pieces are still separated by
    MYSQL_GAP. None when the text holds other than exactly `quotes` quote and `gaps`
    gap stand-ins (a value holds one): the caller escapes value by value."""
    if text.count(MYSQL_QUOTE) != quotes or text.count(MYSQL_GAP) != gaps:
        return None
    raw = connection.connection
    return raw.string_literal(text.encode(raw.encoding))[1:-1].replace(MYSQL_QUOTE.encode(), b"'")


def mysql_rows_literal(rows: Iterable[Iterable[Any]]) -> str | None:
    """MySQL/MariaDB: the VALUES list `(v, v, …),(v, …)` of `rows` (values already
    adapted: None, bool, int or str, or their subclasses, as `db_value_adapter` gives
    them), every string escaped in ONE call for the whole text (`mysql_escape_marked`:
    the separators and NULL/number literals are characters the escaping leaves alone).
    What binding them costs per value (a literal() dispatch, an encode and an escape
    call each) was most of a multi-row insert's client-side time. The text is built in
    one pass (no list of literals split at gap stand-ins and joined again: ~5% less
    for fifty conversion rows). None when a value is of another type or a string holds
    a stand-in: the caller binds them as usual."""
    quote = MYSQL_QUOTE
    texts: list[str] = []
    strings = 0
    for row in rows:
        parts: list[str] = []
        append = parts.append
        for value in row:
            kind = type(value)
            if kind is str:
                append(quote + value + quote)
                strings += 1
            elif value is None:
                append("NULL")
            elif kind is int:
                append(str(value))
            elif kind is bool:
                append("1" if value else "0")
            elif isinstance(value, str):  # a TextChoices member: its text, as mysqlclient binds it
                append(quote + value + quote)
                strings += 1
            elif isinstance(value, int):  # an IntegerChoices member
                append(str(int(value)))
            else:
                return None
        texts.append("(" + ",".join(parts) + ")")
    escaped = mysql_escape_marked(",".join(texts), quotes=2 * strings, gaps=0)
    return None if escaped is None else escaped.decode(connection.connection.encoding)


# orjson options that keep to what json.dumps accepts: a datetime or dataclass raises
# (json.dumps has no default for them) instead of being serialized; int keys become
# strings as json.dumps makes them.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def json_text(value: Any) -> str:
    """A JSONField value (no custom encoder) as the text to store: orjson's, 3-5x faster
    than json.dumps (the activation batch handler writes four JSON values an event:
    ~5% of its time, per-batch A/B). The same JSON value as the ORM writes (read back,
    equal); the text is compact and UTF-8 where json.dumps spaces it and escapes to
    ASCII. What orjson refuses (an integer beyond 64 bits, a type it passes through)
    goes to json.dumps, so what json.dumps refuses still raises TypeError. Unlike
    json.dumps, a NaN or infinite float is written as null (json.dumps writes NaN,
    which is not JSON: MySQL's JSON check refuses it) and a UUID as its text."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS).decode()
    except TypeError:
        return json.dumps(value)


_TEXT = frozenset({models.CharField, models.TextField})
_INTEGER = frozenset(
    {
        models.IntegerField,
        models.SmallIntegerField,
        models.BigIntegerField,
        models.PositiveIntegerField,
        models.PositiveSmallIntegerField,
        models.PositiveBigIntegerField,
        models.AutoField,
        models.BigAutoField,
    }
)


def db_value_adapter(field: models.Field) -> Callable[[Any], Any]:
    """How `rows_insert` (and any plain-SQL write of model values, e.g. the payment
    results' orders UPDATE) adapts a value of `field` as the ORM would: the driver gets what
    `get_db_prep_save` would give it. The common cases skip the ORM's layers (exact field
    types: a subclass may prepare its values); anything else goes through them."""
    ops = connection.ops

    def prepared(value: Any) -> Any:
        return field.get_db_prep_save(value, connection)

    kind = type(field)
    if kind is models.ForeignKey or kind is models.OneToOneField:
        kind = type(field.target_field)  # type: ignore[attr-defined]
    if kind is models.DateTimeField:
        adapt = ops.adapt_datetimefield_value
        seen: dict[datetime, Any] = {}  # rows of a batch share moments (the time zone conversion is the cost)

        def adapt_datetime(value: Any) -> Any:
            if value is None:
                return None
            if timezone.is_naive(value):
                return prepared(value)  # the ORM's way: made aware, with its warning
            adapted = seen.get(value)
            if adapted is None:
                adapted = seen[value] = adapt(value)
            return adapted

        return adapt_datetime
    if kind is models.JSONField:
        encoder = field.encoder  # type: ignore[attr-defined]
        if encoder is None:
            return lambda value: prepared(value) if value is None else json_text(value)
        return lambda value: prepared(value) if value is None else ops.adapt_json_value(value, encoder)
    if kind in _TEXT:
        return lambda value: value if value is None or isinstance(value, str) else prepared(value)
    if kind in _INTEGER:
        return lambda value: value if value is None or type(value) is int else prepared(value)
    if kind is models.BooleanField:
        return lambda value: value if value is None or value is True or value is False else prepared(value)
    return prepared
