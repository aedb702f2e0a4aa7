"""The writing pass stores exactly what the checks produced, on both backends.

The upsert is assembled by hand (`write.listings_upsert`: multi-row `INSERT … ON
DUPLICATE KEY UPDATE` on MariaDB, `INSERT … ON CONFLICT DO UPDATE` on SQLite, values
through the backend's adapters): these tests read every written column back and
compare it with `row_parse`'s own values, with text that SQL, JSON or the drivers
escape, and numbers at the limits of the checks."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from listings.importing import row_parse
from listings.importing.check import MAX_PRICE_FEN, MAX_SORT_ORDER
from listings.importing.write import _mysql_stage_row, _mysql_stage_rows, spool_rows, spooled_values
from listings.models import ImportStatus, Listing
from tests.listings.files import HEADER, row, write_csv

CONTENT = ("title", "district", "address", "price_fen", "area_m2", "layout", "cover_image_url", "detail_url", "tags")

TRICKY = [
    row(1, title="引号 \"双\" '单' 反斜杠 \\ 百分号 %s %% 结尾\\", district="O'Brien \\N"),
    row(2, title="表情 🏠🚇 and 𠀋 (outside the BMP)", tags='a"b|c\\d|近地铁|{"x": 1}|[1]'),
    row(3, title="长" * 200, address="址" * 255, district="区" * 64, layout="户" * 32),
    row(4, price=f"{MAX_PRICE_FEN // 100}", area="9999999.99", order=str(-MAX_SORT_ORDER)),
    row(5, price="0", area="", order=str(MAX_SORT_ORDER), active="否", tags=""),
    row(6, price="12.3", area="0.005", cover="https://例子.cn/图?a=1&b=%E4", detail="http://x.example/\\?q='\""),
    row(7, tags="|".join(f"标签{n:02d}" + "签" * 12 for n in range(10)), id="ID with spaces & 'quotes' \\"),
    row(8, id="null", title="null", district="true", address="[]", layout="{}"),
]


def expected(rows: list[list]) -> dict[str, dict]:
    """What the checks make of each row: the values the database must hold."""
    out = {}
    for line, values in enumerate(rows, start=2):
        parsed, errors = row_parse(line, {**dict(zip(_KEYS, values, strict=True))})
        assert not errors and parsed is not None, errors
        out[parsed["external_id"]] = parsed
    return out


_KEYS = [
    "external_id",
    "city",
    "title",
    "district",
    "address",
    "price_yuan",
    "area_m2",
    "layout",
    "cover_image_url",
    "detail_url",
    "tags",
    "sort_order",
    "is_active",
]
assert len(_KEYS) == len(HEADER)


def stored(component) -> dict[str, Listing]:
    return {
        listing.external_id: listing
        for listing in Listing.objects.filter(component=component).select_related("group").order_by("id")
    }


def test_every_column_is_stored_exactly_as_checked_with_text_that_needs_escaping(component, run_import, tmp_path):
    job = run_import(component, write_csv(tmp_path / "tricky.csv", TRICKY))

    assert job.status == ImportStatus.APPLIED, (job.message, job.errors)
    assert (job.created_count, job.updated_count, job.unchanged_count, job.rejected_count) == (len(TRICKY), 0, 0, 0)
    want = expected(TRICKY)
    got = stored(component)
    assert list(got) == list(want)  # ids grow with the file's lines
    for ext, values in want.items():
        listing = got[ext]
        assert {f: getattr(listing, f) for f in CONTENT} == {f: values[f] for f in CONTENT}, ext
        assert (listing.sort_order, listing.is_active, listing.group.city) == (
            values["sort_order"],
            values["is_active"],
            values["city"],
        )
        assert listing.import_job_id == job.pk
    lines = {ext: listing.import_line for ext, listing in got.items()}
    assert sorted(lines.values()) == list(range(2, 2 + len(TRICKY)))
    assert got["SH0004"].price_fen == MAX_PRICE_FEN and got["SH0004"].area_m2 == Decimal("9999999.99")
    assert got["SH0005"].area_m2 is None and got["SH0005"].is_active is False and got["SH0005"].tags == []
    assert got["SH0006"].area_m2 == Decimal("0.01")  # 0.005 rounds half up, as checked

    again = run_import(component, write_csv(tmp_path / "tricky-again.csv", TRICKY))

    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, len(TRICKY))
    assert [(x.pk, x.updated_at, x.import_job_id) for x in stored(component).values()] == [
        (x.pk, x.updated_at, x.import_job_id) for x in got.values()
    ]


def test_an_update_writes_the_new_values_and_keeps_the_row(component, run_import, tmp_path):
    run_import(component, write_csv(tmp_path / "a.csv", TRICKY))
    first = stored(component)
    changed = [
        row(1, title='换了 "新" 标题 \\', city="北京"),
        *TRICKY[1:4],
        row(5, price="1.01", area="33", active="是", tags="新|标签"),
        *TRICKY[5:],
    ]

    job = run_import(component, write_csv(tmp_path / "b.csv", changed))

    assert (job.created_count, job.updated_count, job.unchanged_count) == (0, 2, len(TRICKY) - 2)
    want = expected(changed)
    got = stored(component)
    assert [x.pk for x in got.values()] == [x.pk for x in first.values()]  # upserted, not re-created
    for ext, values in want.items():
        assert {f: getattr(got[ext], f) for f in CONTENT} == {f: values[f] for f in CONTENT}, ext
    assert got["SH0001"].group.city == "北京" and got["SH0005"].is_active is True
    assert got["SH0001"].import_job_id == job.pk and got["SH0002"].import_job_id != job.pk  # unchanged: untouched
    assert {e["external_id"] for e in job.preview["updated"]} == {"SH0001", "SH0005"}


def test_write_batches_and_statements_split_small_store_every_row_and_count_exactly(
    component, run_import, tmp_path, monkeypatch
):
    """The writing pass in many short transactions (MariaDB: each batch's upsert sent
    while the next batch is prepared), each batch split into one statement per row:
    every row is stored as checked, and a re-import with changes counts exactly."""
    monkeypatch.setattr("listings.importing.write.WRITE_BATCH_SIZE", 3)
    monkeypatch.setattr("listings.importing.write.MYSQL_STATEMENT_MAX_BYTES", 1)
    job = run_import(component, write_csv(tmp_path / "a.csv", TRICKY))

    assert job.status == ImportStatus.APPLIED, (job.message, job.errors)
    assert (job.created_count, job.updated_count, job.unchanged_count) == (len(TRICKY), 0, 0)
    want = expected(TRICKY)
    got = stored(component)
    assert list(got) == list(want)
    for ext, values in want.items():
        assert {f: getattr(got[ext], f) for f in CONTENT} == {f: values[f] for f in CONTENT}, ext

    seventh = list(TRICKY[6])
    seventh[_KEYS.index("title")] = "新标题"
    changed = [*TRICKY[:6], seventh, TRICKY[7], row(9), row(10, city="北京")]
    again = run_import(component, write_csv(tmp_path / "b.csv", changed))

    assert (again.created_count, again.updated_count, again.unchanged_count) == (2, 1, len(TRICKY) - 1)
    assert [e["external_id"] for e in again.preview["updated"]] == [TRICKY[6][0]]
    assert again.preview["updated"][0]["changes"] == {"title": [want[TRICKY[6][0]]["title"], "新标题"]}
    assert stored(component)[TRICKY[6][0]].title == "新标题"
    assert Listing.objects.filter(component=component).count() == len(TRICKY) + 2


def test_a_spooled_row_gives_back_exactly_the_checked_values():
    """The checking pass spools plain tuples (area as its text); the writing pass
    reads back what `row_parse` produced, on either backend."""
    want = expected(TRICKY)
    batch = [(line, values) for line, values in enumerate(want.values(), start=2)]

    spooled = spool_rows(batch)

    assert [(row[0], spooled_values(row)) for row in spooled] == batch
    assert all(type(value) in (str, int, bool, list, type(None)) for row in spooled for value in row)


@pytest.mark.django_db
def test_a_batch_escaped_in_one_call_is_the_same_text_as_each_value_escaped_alone():
    """MariaDB: `_mysql_stage_rows` escapes a whole batch in one call, with control
    characters standing for quotes and row ends; the text equals escaping value by
    value, and a value holding one of those characters (refused by the checks, so only
    reachable by hand) makes the batch fall back to value by value."""
    if connection.vendor != "mysql":
        pytest.skip("the staged writing pass is MySQL/MariaDB's")
    connection.ensure_connection()
    lit = connection.connection.string_literal
    want = expected(TRICKY)
    batch = spool_rows([(line, values) for line, values in enumerate(want.values(), start=2)])
    one_by_one = [_mysql_stage_row(row, lit) for row in batch]

    assert _mysql_stage_rows(batch, lit) == one_by_one

    odd = [*batch[:2], (batch[2][0], batch[2][1], batch[2][2], "unit\x1fsep \x1e row'end", *batch[2][4:])]
    rows = _mysql_stage_rows(odd, lit)
    assert rows == [_mysql_stage_row(row, lit) for row in odd]
    assert b"unit\x1fsep \x1e row\\'end" in rows[2]


def test_an_area_written_differently_but_equal_is_unchanged_and_a_new_area_is_an_update(
    component, run_import, tmp_path
):
    run_import(component, write_csv(tmp_path / "a.csv", [row(1, area="50.5"), row(2, area="60")]))

    again = run_import(component, write_csv(tmp_path / "b.csv", [row(1, area="50.50"), row(2, area="60.01")]))

    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 1, 1)
    assert again.preview["updated"] == [
        {"line": 3, "external_id": "SH0002", "changes": {"area_m2": ["60.00", "60.01"]}}
    ]
    assert stored(component)["SH0002"].area_m2 == Decimal("60.01")


def test_cities_and_ids_that_differ_only_in_case_or_width_stay_apart(component, run_import, tmp_path):
    """Cities and external ids compare byte for byte (MariaDB: the staged rows join
    their city's group in a binary collation): rows of "Abc", "abc" and "ＡＢＣ" land in
    three groups, and ids "x1" and "X1" are two listings."""
    rows = [
        row(1, city="Abc", id="x1"),
        row(2, city="abc", id="X1"),
        row(3, city="ＡＢＣ", id="ｘ1"),
        row(4, city="Abc", id="x2"),
    ]

    job = run_import(component, write_csv(tmp_path / "case.csv", rows))

    assert job.status == ImportStatus.APPLIED, (job.message, job.errors)
    assert {ext: listing.group.city for ext, listing in stored(component).items()} == {
        "x1": "Abc",
        "X1": "abc",
        "ｘ1": "ＡＢＣ",
        "x2": "Abc",
    }


def test_an_import_after_a_rejected_one_writes_only_its_own_rows(component, run_import, tmp_path):
    """The rows a rejected all-or-nothing import checked (and, on MariaDB, staged)
    reach no listing, neither then nor with the next import."""
    rejected = run_import(component, write_csv(tmp_path / "bad.csv", [row(1), row(2), row(3, price="很贵")]))
    assert rejected.status == ImportStatus.ROLLED_BACK and not stored(component)

    job = run_import(component, write_csv(tmp_path / "good.csv", [row(7), row(8)]))

    assert job.status == ImportStatus.APPLIED and job.created_count == 2
    assert list(stored(component)) == ["SH0007", "SH0008"]
    assert [x.import_line for x in stored(component).values()] == [2, 3]


def test_without_the_stage_table_the_import_writes_the_rows_itself(component, run_import, tmp_path, monkeypatch):
    """A database user without CREATE TEMPORARY TABLES (MariaDB): the stage cannot be
    made, and the import writes the checked rows as SQLite's does, every column as checked."""
    from django.db import DatabaseError

    from listings.importing import write

    def refused(self):
        raise DatabaseError("CREATE TEMPORARY TABLES command denied")

    monkeypatch.setattr(write.MysqlStage, "__init__", refused)
    job = run_import(component, write_csv(tmp_path / "tricky.csv", TRICKY))

    assert job.status == ImportStatus.APPLIED, (job.message, job.errors)
    want = expected(TRICKY)
    got = stored(component)
    assert list(got) == list(want)
    for ext, values in want.items():
        assert {f: getattr(got[ext], f) for f in CONTENT} == {f: values[f] for f in CONTENT}, ext


def test_a_listing_written_by_another_writer_after_the_batch_read_is_updated_and_the_import_applies(
    component, run_import, tmp_path, monkeypatch
):
    """MariaDB: a listing another writer inserts between a write batch's read of the
    existing rows and its copy from the stage (played by a read that sees none) is
    updated by the copy, once, and the import applies: the copy is checked by the rows
    its SELECT gave, not by the rows it affected (an update counts twice there)."""
    if connection.vendor != "mysql":
        pytest.skip("the staged writing pass is MySQL/MariaDB's")
    from listings.importing import write

    run_import(component, write_csv(tmp_path / "a.csv", [row(1), row(2)]))
    monkeypatch.setattr(write.MysqlStage, "existing", lambda self, **kwargs: {})

    job = run_import(component, write_csv(tmp_path / "b.csv", [row(1, title="新标题"), row(2), row(3)]))

    assert job.status == ImportStatus.APPLIED, (job.message, job.errors)
    assert job.created_count == 3  # as the read saw it
    got = stored(component)
    assert list(got) == ["SH0001", "SH0002", "SH0003"] and got["SH0001"].title == "新标题"
    assert all(listing.import_job_id == job.pk for listing in got.values())


def test_a_first_import_past_the_preview_writes_every_row_from_the_spools_keys(
    component, run_import, tmp_path, monkeypatch
):
    """All or nothing, in many write batches: once the preview of new rows is full, a
    batch none of whose ids exists yet is written from its lines and cities alone (its
    rows not read back from the spool, MariaDB's staged pass); a batch with existing
    ids is classified row by row. Either way every row is stored as checked and the
    counts and preview are exact."""
    from listings.importing import write

    monkeypatch.setattr(write, "CHECK_BATCH_SIZE", 2)
    monkeypatch.setattr(write, "WRITE_BATCH_SIZE", 3)
    monkeypatch.setattr(write, "MAX_PREVIEW", 2)
    unpickled: list[int] = []
    rows_of = write.SpooledBatch.rows
    monkeypatch.setattr(write.SpooledBatch, "rows", lambda self: unpickled.append(len(self.keys)) or rows_of(self))
    first = [row(n, city=["上海", "北京", "广州"][n % 3]) for n in range(1, 12)]
    job = run_import(component, write_csv(tmp_path / "a.csv", first))

    assert job.status == ImportStatus.APPLIED, (job.message, job.errors)
    assert (job.created_count, job.updated_count, job.unchanged_count) == (11, 0, 0)
    assert [e["external_id"] for e in job.preview["created"]] == [first[0][0], first[1][0]]
    want = expected(first)
    got = stored(component)
    assert list(got) == list(want)
    for ext, values in want.items():
        assert {f: getattr(got[ext], f) for f in CONTENT} == {f: values[f] for f in CONTENT}, ext
        assert got[ext].group.city == values["city"]
    if connection.vendor == "mysql":  # staged: only the first write batch (filling the preview) was read back
        assert sum(unpickled) < len(first)

    unpickled.clear()
    second = [*first[:2], row(3, city="深圳", title="换了城市"), *first[3:], row(40), row(41)]  # row 3 moves city
    again = run_import(component, write_csv(tmp_path / "b.csv", second))

    assert again.status == ImportStatus.APPLIED, (again.message, again.errors)
    assert (again.created_count, again.updated_count, again.unchanged_count) == (2, 1, 10)
    assert stored(component)[first[2][0]].title == "换了城市"
    assert stored(component)[first[2][0]].group.city == "深圳"
    assert Listing.objects.filter(component=component).count() == 13
