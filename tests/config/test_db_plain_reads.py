"""The hot paths' plain-SQL reads (`core.db.values_where`, `instances_where`, `sql_in`,
`sql_columns`) give what the ORM's querysets give: the same values through the same
converters (aware datetimes, JSON, booleans, hostile text), the model's ordering, FOR
UPDATE where the backend locks rows; and they refuse what they cannot build."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction

from attribution import services
from attribution.models import Conversion, TrackingLink
from attribution.models import TestDevice as QaDevice  # not a test class
from core.db import instances_where, sql_columns, sql_in, values_where
from tests.attribution.factories import ACTIVATED_AT, ConversionFactory

pytestmark = pytest.mark.django_db
HOSTILE = ["用户'; DROP TABLE x; --", 'quote " and \\ backslash', "\x00nul", "emoji 🧧", "%s %(x)s"]


def _link(app_id: str = "com.plain.app", os: str = "ios") -> TrackingLink:
    return services.tracking_link_create(platform="oceanengine", app_id=app_id, os=os, campaign_name="plain")


def _conversion(link: TrackingLink, n: int, user_id: str) -> Conversion:
    return ConversionFactory(
        link=link, user_id=user_id, activated_at=ACTIVATED_AT + timedelta(minutes=n), is_test=n % 2 == 0
    )


FIELDS = ["pk", "link_id", "user_id", "activated_at", "click", "device_keys", "is_test", "released_at"]


def test_values_where_gives_what_values_list_gives():
    link = _link()
    made = [_conversion(link, n, user) for n, user in enumerate(HOSTILE)]
    _, col = sql_columns(Conversion, "user_id")
    plain = values_where(
        Conversion,
        fields=FIELDS,
        where=f"{col['user_id']} IN {sql_in(len(HOSTILE))}",
        params=HOSTILE,
        order_by=["-activated_at"],
    )
    orm = list(Conversion.objects.filter(user_id__in=HOSTILE).order_by("-activated_at").values_list(*FIELDS))
    assert plain == orm
    assert [row[0] for row in plain] == [c.pk for c in reversed(made)]
    assert plain[0][3].tzinfo is not None  # aware, as the ORM gives it
    assert plain[0][4]["nested"] == {"a": [1, 2.5, None, True]}  # JSON decoded
    assert {row[6] for row in plain} == {True, False}  # booleans, not 0/1


def test_values_where_binds_values_and_reads_nothing_for_no_match():
    link = _link()
    _conversion(link, 1, "someone")
    _, col = sql_columns(Conversion, "user_id")
    assert values_where(Conversion, fields=["pk"], where=f"{col['user_id']} = %s", params=["x' OR '1'='1"]) == []


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "mysql", reason="row locks: InnoDB")
@pytest.mark.parametrize("for_update", [True, False])
def test_values_where_for_update_locks_the_rows_until_commit(for_update):
    from django.db import connections

    link = _link()
    conversion = _conversion(link, 1, "locked")  # committed: another connection sees it
    _, col = sql_columns(Conversion, "id")
    table = connection.ops.quote_name(Conversion._meta.db_table)
    other = connections.create_connection("default")
    try:
        with transaction.atomic():
            values_where(
                Conversion, fields=["pk"], where=f"{col['id']} = %s", params=[conversion.pk], for_update=for_update
            )
            with other.cursor() as cursor:
                cursor.execute("SET SESSION innodb_lock_wait_timeout = 1")
                if for_update:
                    with pytest.raises(OperationalError):  # held by the first connection
                        cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [conversion.pk])
                else:
                    cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE", [conversion.pk])
                    assert cursor.fetchone() == (conversion.pk,)
    finally:
        other.close()


def test_instances_where_gives_model_instances_in_the_model_order():
    older, newer = _link(), _link()
    other = _link(app_id="com.other.app")
    _, col = sql_columns(TrackingLink, "app_id")
    found = instances_where(TrackingLink, where=f"{col['app_id']} IN {sql_in(1)}", params=["com.plain.app"])
    assert [link.pk for link in found] == [newer.pk, older.pk]  # the model's ordering: -id
    assert found == list(TrackingLink.objects.filter(app_id="com.plain.app"))
    assert other.pk not in {link.pk for link in found}
    assert found[0].created_at == TrackingLink.objects.get(pk=newer.pk).created_at  # converters applied


def test_instances_where_orders_test_devices_by_label():
    for n, label in enumerate(["zeta", "alpha", "中文"]):
        services.test_device_save(
            device=QaDevice(label=label, app_id="", idfa=f"C000000{n}-0000-4000-8000-00000000000C")
        )
    _, col = sql_columns(QaDevice, "app_id")
    found = instances_where(QaDevice, where=f"{col['app_id']} = %s", params=[""])
    assert [d.label for d in found] == [d.label for d in QaDevice.objects.filter(app_id="")]


def test_sql_in_refuses_an_empty_list():
    assert sql_in(3) == "(%s, %s, %s)"
    with pytest.raises(ValueError):
        sql_in(0)
