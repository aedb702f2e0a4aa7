"""`core.db.rows_insert` writes what `bulk_create` writes (defaults, auto_now_add, JSON,
aware datetimes, foreign keys), returns the new primary keys in row order, upserts like
`bulk_create(update_conflicts=True)` and splits a large insert as `bulk_create` does."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from attribution import services
from attribution.models import Conversion, DeviceLock, Postback, PostbackStatus
from core.db import rows_insert
from tests.attribution.factories import ConversionFactory

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")
SKIP = {"id", "created_at", "activation_event_id", "click_id"}


def _link():
    return services.tracking_link_create(
        platform="oceanengine", app_id="com.rows.app", os="ios", campaign_name="rows", postback_activate=True
    )


def _conversion(link, n: int) -> Conversion:
    return ConversionFactory.build(link=link, activation_event_id=f"ev-{n}", click_id=f"click-{n}")


def _columns(conversion: Conversion) -> list[str]:
    return [f.attname for f in Conversion._meta.concrete_fields if f.attname not in ("id", "created_at")]


def test_rows_insert_writes_what_bulk_create_writes():
    link = _link()
    by_orm = _conversion(link, 1)
    Conversion.objects.bulk_create([by_orm])
    raw = _conversion(link, 2)
    fields = _columns(raw)
    before = timezone.now()
    [pk] = rows_insert(Conversion, fields=fields, rows=[[getattr(raw, name) for name in fields]], returning_pk=True)
    orm_row, raw_row = (
        Conversion.objects.filter(pk=pk_).values().get() for pk_ in (by_orm.pk, pk)
    )  # read back through the ORM: the same Python values
    assert {k: v for k, v in raw_row.items() if k not in SKIP} == {k: v for k, v in orm_row.items() if k not in SKIP}
    assert raw_row["released_by"] == "" and raw_row["released_at"] is None  # left out: the field's default
    assert before <= raw_row["created_at"] <= timezone.now()  # auto_now_add
    assert raw_row["activated_at"] == datetime(2026, 11, 30, 21, 15, 7, 123456, tzinfo=SHANGHAI)


def test_rows_insert_returns_the_primary_keys_in_row_order_and_splits_like_bulk_create():
    link = _link()
    conversions = [_conversion(link, n) for n in range(120)]  # SQLite: more parameters than one statement takes
    fields = _columns(conversions[0])
    pks = rows_insert(
        Conversion, fields=fields, rows=[[getattr(c, name) for name in fields] for c in conversions], returning_pk=True
    )
    assert len(set(pks)) == 120
    assert dict(Conversion.objects.values_list("pk", "activation_event_id")) == {
        pk: f"ev-{n}" for n, pk in enumerate(pks)
    }


def _postback_insert(**given) -> tuple[Postback, datetime]:
    """A postback of a saved conversion written by `rows_insert` with the fields it
    needs and `given` ones; read back."""
    conversion = _conversion(_link(), 1)
    conversion.save()
    at = timezone.now()
    [pk] = rows_insert(
        Postback,
        fields=("conversion_id", "event_type", "source_event_id", "event_time", "next_attempt_at", *given),
        rows=[(conversion.pk, "activate", "ev-1", at, at, *given.values())],
        returning_pk=True,
    )
    return Postback.objects.get(pk=pk), at


def test_left_out_fields_take_their_defaults():
    postback, at = _postback_insert()
    assert (postback.status, postback.attempt_count, postback.amount_fen, postback.claimed_until) == (
        "pending",
        0,
        None,
        None,
    )
    assert postback.last_error == "" and postback.event_time == at and postback.created_at is not None


def test_an_upsert_updates_the_clashing_rows_and_inserts_the_others():
    first, later = timezone.now() - timedelta(hours=1), timezone.now()
    fields = ("app_id", "key", "last_activation_at")

    def upsert(rows):
        rows_insert(
            DeviceLock,
            fields=fields,
            rows=rows,
            update_on_conflict=["last_activation_at"],
            unique_fields=["app_id", "key"],
        )

    upsert([("app", "idfa:A", first), ("app", "idfa:B", first)])
    upsert([("app", "idfa:B", later), ("app", "idfa:C", later)])
    assert dict(DeviceLock.objects.values_list("key", "last_activation_at")) == {
        "idfa:A": first,
        "idfa:B": later,
        "idfa:C": later,
    }


def test_an_unknown_field_is_refused():
    with pytest.raises(ValueError, match="no column"):
        rows_insert(DeviceLock, fields=("app_id", "nope"), rows=[("app", "x")])


# Text that escaping must get right: quotes, backslashes, NUL and the other characters
# mysql_real_escape_string escapes, percent signs (nothing is %-formatted), the control
# characters `core.db.mysql_rows_literal` uses as stand-ins (those rows are bound value by
# value instead), Chinese and a 4-byte emoji.
HOSTILE = [
    'it\'s "quoted"',
    "back\\slash\\",
    "nul\x00byte",
    "line\nfeed\rreturn\x1aeof",
    "100% %s %(x)s",
    "stand-in \x1f quote",
    "stand-in \x1e gap",
    "中文 🎉",
    "'); DROP TABLE attribution_devicelock; --",
    "",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_written_exactly(text):
    at = timezone.now()
    rows_insert(DeviceLock, fields=("app_id", "key", "last_activation_at"), rows=[(text, "k", at), ("a", text, at)])
    assert set(DeviceLock.objects.values_list("app_id", "key")) == {(text, "k"), ("a", text)}


def test_choices_members_are_written_as_their_values():
    postback, _ = _postback_insert(status=PostbackStatus.SUCCEEDED)
    assert Postback.objects.values_list("status", flat=True).get(pk=postback.pk) == "succeeded"


def test_mysql_rows_literal_escapes_as_the_driver_binds_each_value():
    from django.db import connection

    from core.db import mysql_rows_literal

    if connection.vendor != "mysql":
        pytest.skip("MySQL/MariaDB only")
    connection.ensure_connection()
    raw = connection.connection
    values = [*(t for t in HOSTILE if "\x1e" not in t and "\x1f" not in t), None, 0, -7, 2**62, True, False]
    rows = [values[:5], values[5:], [PostbackStatus.SUCCEEDED]]
    text = mysql_rows_literal(rows)
    assert text is not None
    expected = b",".join(b"(" + b",".join(raw.literal(v) for v in row) + b")" for row in rows)
    assert text.encode(raw.encoding) == expected
    # a stand-in inside a value, or a value of another type: bound value by value instead
    assert mysql_rows_literal([["ok", "has \x1f"]]) is None and mysql_rows_literal([["has \x1e"]]) is None
    assert mysql_rows_literal([[1.5]]) is None and mysql_rows_literal([[b"bytes"]]) is None


@pytest.mark.parametrize(
    "value",
    [
        {"中文": "🎉 emoji", "quote": 'it\'s "x"', "nested": [1, -2, 2**62, 1.5, None, True, {}]},
        {1: "int key", "big": 2**70},  # json.dumps's way: int keys as text; past 64 bits too
        [],
        "plain",
    ],
)
def test_json_text_reads_back_as_what_the_orm_writes(value):
    from core.db import json_text

    assert json.loads(json_text(value)) == json.loads(json.dumps(value))


def test_json_text_refuses_what_json_dumps_refuses():
    from core.db import json_text

    for value in ({"at": timezone.now()}, {"s": {1, 2}}):
        with pytest.raises(TypeError):
            json_text(value)


def test_a_json_field_written_by_rows_insert_reads_back_equal():
    link = _link()
    conversion = _conversion(link, 1)
    conversion.click = {"ua": "Mozilla 中文 \\ 'quote'", "n": 2**62, "list": [1, None, "x"]}
    fields = _columns(conversion)
    [pk] = rows_insert(
        Conversion, fields=fields, rows=[[getattr(conversion, name) for name in fields]], returning_pk=True
    )
    assert Conversion.objects.get(pk=pk).click == conversion.click


def test_instance_build_gives_what_the_model_constructor_gives():
    from core.db import instance_build

    link = _link()
    at = timezone.now()
    values = {"link_id": link.id, "platform": "oceanengine", "app_id": "a", "activated_at": at, "click_at": at}
    built, by_kwargs = instance_build(Conversion, values), Conversion(**values)
    columns = [f.attname for f in Conversion._meta.concrete_fields]
    assert [getattr(built, c) for c in columns] == [getattr(by_kwargs, c) for c in columns]
    assert vars(built).keys() == vars(by_kwargs).keys()  # nothing more, nothing less on the instance
    assert built.device_keys == {} and built.device_keys is not instance_build(Conversion, values).device_keys
    assert built._state.adding and built.pk is None and built._state.db is None
    assert built.link == link  # the foreign key's object, read when asked as ever
    with pytest.raises(TypeError, match="nope"):
        instance_build(Conversion, {**values, "nope": 1})


def test_instance_build_runs_the_init_signals_when_someone_listens():
    from django.db.models.signals import post_init

    from core.db import instance_build

    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance)

    post_init.connect(receiver, sender=Conversion)
    try:
        built = instance_build(Conversion, {"app_id": "a"})
    finally:
        post_init.disconnect(receiver, sender=Conversion)
    assert seen == [built]  # the constructor's path (the direct one would skip the receiver)
    assert instance_build(Conversion, {"app_id": "a"}).app_id == "a" and seen == [built]
