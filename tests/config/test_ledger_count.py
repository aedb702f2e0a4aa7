"""The admin's count of a large ledger (core.admin_kit.LedgerPaginator): an unfiltered
list of a table past LEDGER_EXACT_COUNT_MAX rows is counted from the table's
statistics on MySQL/MariaDB, never row by row; everything else is counted exactly."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core import admin_kit
from core.db import table_rows_estimate
from core.models import ProcessedEvent

ROWS = 1500


def _changelist(client, query: str = ""):
    opts = ProcessedEvent._meta
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist") + query)
    assert response.status_code == 200
    table = opts.db_table
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"] and table in q["sql"]]
    return response, counts


@pytest.fixture
def ledger(db):
    ProcessedEvent.objects.bulk_create(
        ProcessedEvent(source=("user_center", "payment")[n % 2], event_id=f"ev{n}", event_type="x") for n in range(ROWS)
    )
    if connection.vendor == "mysql":  # the statistics a live server keeps as the table grows
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE TABLE {connection.ops.quote_name(ProcessedEvent._meta.db_table)}")
            cursor.fetchall()


@pytest.mark.django_db(transaction=True)  # ANALYZE TABLE commits
def test_the_unfiltered_list_of_a_large_ledger_is_counted_from_the_statistics_not_row_by_row(
    admin_client, ledger, monkeypatch
):
    monkeypatch.setattr(admin_kit, "LEDGER_EXACT_COUNT_MAX", 1000)
    response, counts = _changelist(admin_client)
    cl = response.context["cl"]
    if connection.vendor != "mysql":  # SQLite keeps no row estimate: counted exactly
        assert table_rows_estimate(ProcessedEvent) is None
        assert not cl.paginator.estimated and cl.result_count == ROWS and counts
        assert "≈" not in response.content.decode()
        return
    estimate = table_rows_estimate(ProcessedEvent)
    assert estimate is not None and estimate > 1000
    assert cl.paginator.estimated and cl.result_count == estimate
    assert counts == []  # no COUNT(*) of the ledger
    assert f"≈ {estimate}" in response.content.decode()
    assert len(cl.result_list) == cl.list_per_page  # the page itself is read as ever


@pytest.mark.django_db(transaction=True)
def test_a_searched_or_filtered_ledger_list_and_a_small_ledger_are_counted_exactly(admin_client, ledger, monkeypatch):
    monkeypatch.setattr(admin_kit, "LEDGER_EXACT_COUNT_MAX", 1000)
    response, counts = _changelist(admin_client, "?q=ev1+ev2+ev3")
    cl = response.context["cl"]
    assert not cl.paginator.estimated and cl.result_count == 3 and counts
    response, counts = _changelist(admin_client, "?event_type=x")
    cl = response.context["cl"]
    assert not cl.paginator.estimated and cl.result_count == ROWS and counts

    monkeypatch.setattr(admin_kit, "LEDGER_EXACT_COUNT_MAX", ROWS * 10)  # a table below the line
    response, counts = _changelist(admin_client)
    cl = response.context["cl"]
    assert not cl.paginator.estimated and cl.result_count == ROWS and counts
    assert "≈" not in response.content.decode()
