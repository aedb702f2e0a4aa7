from __future__ import annotations

import zipfile
from decimal import Decimal

import pytest
from django.core.files import File
from openpyxl import Workbook

from listings import importing, services
from listings.models import ImportJob, ImportStatus, Listing, ListingGroup
from tests.listings.files import HEADER, csv_bytes, row, write_csv, write_xlsx


def snapshot(component):
    return list(
        Listing.objects.filter(component=component)
        .order_by("external_id")
        .values_list("external_id", "group__city", "title", "price_fen", "area_m2", "tags", "is_active", "updated_at")
    )


def test_csv_import_creates_groups_and_listings(component, run_import, tmp_path):
    rows = [row(1), row(2), row(3, city="北京"), row(4, city="北京", active="下架", tags="学区房，地铁")]
    job = run_import(component, write_csv(tmp_path / "房源.csv", rows))

    assert job.status == ImportStatus.APPLIED, job.message
    assert (job.created_count, job.updated_count, job.unchanged_count, job.rejected_count) == (4, 0, 0, 0)
    assert job.groups_created == ["上海", "北京"]
    assert list(ListingGroup.objects.filter(component=component).values_list("city", flat=True)) == ["上海", "北京"]
    listing = Listing.objects.get(component=component, external_id="SH0001")
    assert listing.group.city == "上海"
    assert listing.price_fen == 450_150  # 4501.50 yuan, exact
    assert listing.area_m2 == Decimal("89.50")
    assert listing.tags == ["近地铁", "南北通透"]
    assert listing.cover_image_url == "https://img.example.com/1.jpg"
    four = Listing.objects.get(external_id="SH0004")
    assert four.is_active is False and four.tags == ["学区房", "地铁"]


def test_uploading_the_same_file_twice_changes_nothing(component, run_import, tmp_path):
    path = write_csv(tmp_path / "a.csv", [row(n, city=["上海", "杭州"][n % 2]) for n in range(30)])
    run_import(component, path)
    before = snapshot(component)

    again = run_import(component, path)

    assert again.status == ImportStatus.APPLIED
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, 30)
    assert again.groups_created == []
    assert snapshot(component) == before  # updated_at included


def test_an_edited_file_updates_only_the_changed_rows(component, run_import, tmp_path):
    run_import(component, write_csv(tmp_path / "a.csv", [row(1), row(2), row(3)]))
    untouched = Listing.objects.get(external_id="SH0001").updated_at

    job = run_import(
        component,
        write_csv(tmp_path / "b.csv", [row(1), row(2, price="3999"), row(3, city="苏州"), row(4)]),
    )

    assert (job.created_count, job.updated_count, job.unchanged_count) == (1, 2, 1)
    assert Listing.objects.get(external_id="SH0002").price_fen == 399_900
    assert Listing.objects.get(external_id="SH0003").group.city == "苏州"
    assert Listing.objects.get(external_id="SH0001").updated_at == untouched
    assert Listing.objects.filter(component=component).count() == 4
    changes = {u["external_id"]: u["changes"] for u in job.preview["updated"]}
    assert changes["SH0002"]["price_fen"] == [450_250, 399_900]
    assert changes["SH0003"]["city"] == ["上海", "苏州"]


def test_upsert_is_scoped_to_the_component(component, run_import, tmp_path):
    from tests.listings.factories import ListingComponentFactory

    other = ListingComponentFactory()
    path = write_csv(tmp_path / "a.csv", [row(1)])
    run_import(component, path)
    job = run_import(other, path)
    assert job.created_count == 1
    assert Listing.objects.filter(external_id="SH0001").count() == 2


def test_dry_run_previews_creates_updates_and_rejects_and_changes_nothing(component, run_import, tmp_path):
    run_import(component, write_csv(tmp_path / "a.csv", [row(1), row(2)]))
    before = snapshot(component)
    groups_before = ListingGroup.objects.count()

    job = run_import(
        component,
        write_csv(tmp_path / "b.csv", [row(1), row(2, title="新标题"), row(3, city="深圳"), row(4, price="-1")]),
        dry_run=True,
    )

    assert job.status == ImportStatus.PREVIEWED
    assert (job.created_count, job.updated_count, job.unchanged_count, job.rejected_count) == (1, 1, 1, 1)
    assert job.groups_created == ["深圳"]
    assert job.preview["created"][0]["external_id"] == "SH0003"
    assert job.preview["updated"][0]["changes"]["title"][1] == "新标题"
    assert job.errors == [{"line": 5, "column": "price_yuan", "message": "must not be negative (got -1)"}]
    assert snapshot(component) == before
    assert ListingGroup.objects.count() == groups_before


def test_applying_a_dry_run_imports_its_file(component, run_import, tmp_path, django_capture_on_commit_callbacks):
    preview = run_import(component, write_csv(tmp_path / "a.csv", [row(1), row(2)]), dry_run=True)
    assert not Listing.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        applied = importing.listing_import_apply(job=preview)
    applied.refresh_from_db()
    assert applied.status == ImportStatus.APPLIED and applied.created_count == 2
    assert Listing.objects.filter(component=component).count() == 2


def test_only_a_finished_dry_run_can_be_applied(component, run_import, tmp_path):
    applied = run_import(component, write_csv(tmp_path / "a.csv", [row(1)]))
    rolled_back = run_import(component, write_csv(tmp_path / "b.csv", [row(2, price="-1")]), dry_run=False)
    for job in (applied, rolled_back):
        with pytest.raises(services.ImportRefused, match="Only a finished dry run"):
            importing.listing_import_apply(job=job)
    assert ImportJob.objects.count() == 2


def test_xlsx_import_reads_numbers_and_text(component, run_import, tmp_path):
    header = ["external_id", "city", "title", "price_fen", "area_m2", "sort_order", "is_active"]
    path = write_xlsx(
        tmp_path / "a.xlsx",
        [[1001, "广州", "天河一居", 250000, 45.5, 2, 1], ["A-2", "广州", "海珠两居", 0, None, None, None]],
        header=header,
    )
    job = run_import(component, path)
    assert job.status == ImportStatus.APPLIED, (job.message, job.errors)
    first = Listing.objects.get(external_id="1001")
    assert (first.price_fen, first.area_m2, first.sort_order, first.is_active) == (250000, Decimal("45.50"), 2, True)
    assert Listing.objects.get(external_id="A-2").price_fen == 0


def test_all_or_nothing_rejects_the_whole_file_on_one_bad_row(component, run_import, tmp_path):
    run_import(component, write_csv(tmp_path / "a.csv", [row(1)]))
    before = snapshot(component)
    job = run_import(component, write_csv(tmp_path / "b.csv", [row(1, title="改"), row(2), row(3, area="-5")]))
    assert job.status == ImportStatus.ROLLED_BACK
    assert "nothing was imported" in job.message
    assert job.errors == [{"line": 4, "column": "area_m2", "message": "must be greater than 0 (got -5)"}]
    assert snapshot(component) == before
    assert list(ListingGroup.objects.values_list("city", flat=True)) == ["上海"]


def test_partial_mode_applies_the_good_rows_and_lists_the_bad(component, run_import, tmp_path):
    job = run_import(
        component,
        write_csv(tmp_path / "b.csv", [row(1), row(2, cover="ftp://x"), row(3, title=""), row(4)]),
        all_or_nothing=False,
    )
    assert job.status == ImportStatus.APPLIED
    assert (job.created_count, job.rejected_count) == (2, 2)
    assert "2 row(s) with errors were skipped" in job.message
    assert {(e["line"], e["column"]) for e in job.errors} == {(3, "cover_image_url"), (4, "title")}
    assert sorted(Listing.objects.values_list("external_id", flat=True)) == ["SH0001", "SH0004"]


def test_row_errors_name_line_column_and_problem(component, run_import, tmp_path):
    rows = [
        row(1, price="abc"),
        row(2, price="12.345"),
        row(3, order="1.5"),
        row(4, active="maybe"),
        row(5, tags="|".join(f"t{i}" for i in range(11))),
        row(6, id=""),
        row(7, detail="not a url"),
    ]
    job = run_import(component, write_csv(tmp_path / "bad.csv", rows), all_or_nothing=False)
    by_line = {e["line"]: (e["column"], e["message"]) for e in job.errors}
    assert by_line[2] == ("price_yuan", "is not a number (got 'abc')")
    assert by_line[3] == ("price_yuan", "must be in at most 2 decimals (fen) (got 12.345)")
    assert by_line[4][0] == "sort_order"
    assert by_line[5][0] == "is_active" and "yes or no" in by_line[5][1]
    assert by_line[6] == ("tags", "has 11 tags; at most 10")
    assert by_line[7] == ("external_id", "is empty; every listing needs one")
    assert by_line[8][0] == "detail_url" and "http://" in by_line[8][1]
    assert job.rejected_count == 7 and not Listing.objects.exists()


def test_a_repeated_external_id_in_one_file_is_rejected(component, run_import, tmp_path, monkeypatch):
    monkeypatch.setattr("listings.importing.write.BATCH_SIZE", 2)  # the repeat lands in a later batch
    rows = [row(1), row(2), row(3), row(1, title="again"), row(2)]
    job = run_import(component, write_csv(tmp_path / "dup.csv", rows), all_or_nothing=False)
    messages = {e["line"]: e["message"] for e in job.errors}
    assert messages == {
        5: "'SH0001' already appears on row 2 of this file",
        6: "'SH0002' already appears on row 3 of this file",
    }
    assert Listing.objects.get(external_id="SH0001").title == "上海精装两居 1"


def test_a_repeat_of_an_unchanged_row_in_a_later_batch_is_rejected(component, run_import, tmp_path, monkeypatch):
    run_import(component, write_csv(tmp_path / "a.csv", [row(1), row(2)]))
    monkeypatch.setattr("listings.importing.write.BATCH_SIZE", 2)
    job = run_import(component, write_csv(tmp_path / "b.csv", [row(1), row(2), row(3), row(1, title="again")]))
    assert job.status == ImportStatus.ROLLED_BACK
    assert job.errors == [
        {"line": 5, "column": "external_id", "message": "'SH0001' already appears on row 2 of this file"}
    ]
    assert Listing.objects.get(external_id="SH0001").title == "上海精装两居 1"


def test_a_repeat_within_one_batch_is_rejected_too(component, run_import, tmp_path):
    job = run_import(component, write_csv(tmp_path / "dup.csv", [row(1), row(1)]))
    assert job.status == ImportStatus.ROLLED_BACK
    assert job.errors[0]["line"] == 3 and "row 2" in job.errors[0]["message"]


def test_price_fen_column_is_accepted_instead_of_yuan(component, run_import, tmp_path):
    header = ["external_id", "city", "title", "price_fen"]
    job = run_import(
        component,
        write_csv(tmp_path / "fen.csv", [["X1", "上海", "t", "123456"], ["X2", "上海", "t", "1.5"]], header=header),
        all_or_nothing=False,
    )
    assert Listing.objects.get(external_id="X1").price_fen == 123456
    assert job.errors == [{"line": 3, "column": "price_fen", "message": "must be in whole fen (got 1.5)"}]


def test_extreme_numbers_are_row_errors_never_rounded_or_crashing(component, run_import, tmp_path):
    rows = [
        row(1, price="1e999999"),  # overflows any arithmetic
        row(2, price="1e-999999999"),  # would underflow to 0 fen
        row(3, price="100.000000000000000000000000001"),  # would round to 10000 fen
        row(4, area="0.004"),  # 0.00 once stored with 2 decimals: the CHECK would refuse it
        row(5, order="1e999999999"),
        row(6),
    ]
    job = run_import(component, write_csv(tmp_path / "extreme.csv", rows), all_or_nothing=False)
    assert job.status == ImportStatus.APPLIED, job.message
    assert [(e["line"], e["column"]) for e in job.errors] == [
        (2, "price_yuan"),
        (3, "price_yuan"),
        (4, "price_yuan"),
        (5, "area_m2"),
        (6, "sort_order"),
    ]
    assert job.errors[3]["message"] == "must be greater than 0 (got 0.004)"
    assert list(Listing.objects.values_list("external_id", flat=True)) == ["SH0006"]


def test_full_width_and_no_break_spaces_are_text_but_control_characters_are_not(component, run_import, tmp_path):
    rows = [row(1, title="浦东\u3000精装两居"), row(2, address="世纪大道\xa0100 号"), row(3, title="a\tb")]
    job = run_import(component, write_csv(tmp_path / "spaces.csv", rows), all_or_nothing=False)
    assert job.errors == [{"line": 4, "column": "title", "message": "contains line breaks or control characters"}]
    assert Listing.objects.get(external_id="SH0001").title == "浦东\u3000精装两居"
    assert Listing.objects.get(external_id="SH0002").address == "世纪大道\xa0100 号"


# --- bad files: a clear message, nothing changed -------------------------------------------


@pytest.fixture
def existing(component, run_import, tmp_path):
    run_import(component, write_csv(tmp_path / "seed.csv", [row(1), row(2)]))
    return snapshot(component)


def assert_refused(job, *phrases):
    assert job.status == ImportStatus.FAILED
    for phrase in phrases:
        assert phrase in job.message, job.message


def test_gbk_csv_is_refused_with_a_save_as_utf8_hint(component, existing, run_import, tmp_path):
    path = tmp_path / "gbk.csv"
    path.write_bytes(csv_bytes([row(3), row(4)], encoding="gbk"))
    job = run_import(component, path)
    assert_refused(job, "not UTF-8", "GBK", "CSV UTF-8", "line 1")
    assert snapshot(component) == existing


def test_an_encoding_error_late_in_the_file_changes_nothing(component, existing, run_import, tmp_path):
    good = csv_bytes([row(n) for n in range(3, 2500)])
    bad_line = "SH9999,上海,坏行,浦东,地址,100,50,1室,,,,,是\r\n".encode("gbk")
    path = tmp_path / "mixed.csv"
    path.write_bytes(good + bad_line)
    job = run_import(component, path)
    assert_refused(job, "not UTF-8", "line 2499")
    assert snapshot(component) == existing


def test_utf16_text_is_refused(component, existing, run_import, tmp_path):
    path = tmp_path / "u16.csv"
    path.write_bytes(csv_bytes([row(3)], encoding="utf-16"))
    assert_refused(run_import(component, path), "UTF-16")
    assert snapshot(component) == existing


def test_missing_columns_are_named(component, existing, run_import, tmp_path):
    path = write_csv(tmp_path / "cols.csv", [["SH3", "标题"]], header=["房源编号", "标题"])
    job = run_import(component, path)
    assert_refused(job, "Missing required column(s): city (城市), price_yuan (价格（元）)", "template")
    assert snapshot(component) == existing


def test_a_broken_xlsx_is_refused(component, existing, run_import, tmp_path):
    whole = write_xlsx(tmp_path / "whole.xlsx", [row(n) for n in range(3, 50)]).read_bytes()
    path = tmp_path / "broken.xlsx"
    path.write_bytes(whole[: len(whole) // 2])  # a half-downloaded workbook
    job = run_import(component, path)
    assert_refused(job, "not a readable Excel workbook")
    assert snapshot(component) == existing


def test_an_xlsx_with_a_corrupt_sheet_is_refused(component, existing, run_import, tmp_path):
    source = write_xlsx(tmp_path / "whole.xlsx", [row(n) for n in range(3, 50)])
    path = tmp_path / "corrupt.xlsx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data[: len(data) * 2 // 3]  # XML cut off mid-sheet
            dst.writestr(item, data)
    job = run_import(component, path)
    assert_refused(job, "Excel workbook")
    assert snapshot(component) == existing


def test_a_file_over_50_mb_is_refused_by_size_before_parsing(component, existing, tmp_path, settings):
    assert settings.LISTINGS_IMPORT_MAX_BYTES == 50 * 1024 * 1024
    path = tmp_path / "huge.csv"
    with open(path, "wb") as handle:  # not even valid CSV: its size alone refuses it
        handle.truncate(50 * 1024 * 1024 + 1)
    with open(path, "rb") as handle, pytest.raises(services.ImportRefused, match=r"50\.0 MB; the limit is 50 MB"):
        importing.listing_import_start(component=component, upload=File(handle, name="huge.csv"), filename="huge.csv")
    assert not ImportJob.objects.filter(original_name="huge.csv").exists()
    assert snapshot(component) == existing


def test_formulas_in_xlsx_are_refused_with_the_cell_named(component, existing, run_import, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    sheet.append(row(3))
    sheet.append(row(4, price="=F2*2"))
    path = tmp_path / "formula.xlsx"
    workbook.save(path)
    job = run_import(component, path)
    assert job.status == ImportStatus.ROLLED_BACK
    assert job.errors[0]["line"] == 3 and job.errors[0]["column"] == "price_yuan"
    assert "formula (=F2*2)" in job.errors[0]["message"] and "Paste Special" in job.errors[0]["message"]
    assert snapshot(component) == existing


def test_array_formulas_in_xlsx_are_refused_too(component, existing, run_import, tmp_path):
    from openpyxl.worksheet.formula import ArrayFormula

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    sheet.append(row(3))
    sheet["C2"] = ArrayFormula("C2:C2", '=TEXTJOIN(" ",TRUE,D2:E2)')  # how Excel 365 saves dynamic arrays
    path = tmp_path / "array.xlsx"
    workbook.save(path)
    job = run_import(component, path)
    assert job.status == ImportStatus.ROLLED_BACK
    assert (job.errors[0]["line"], job.errors[0]["column"]) == (2, "title")
    assert "formula (=TEXTJOIN" in job.errors[0]["message"]
    assert snapshot(component) == existing


def test_formulas_in_csv_are_refused(component, existing, run_import, tmp_path):
    job = run_import(component, write_csv(tmp_path / "f.csv", [row(3, title='=HYPERLINK("http://evil")')]))
    assert job.status == ImportStatus.ROLLED_BACK and "formula" in job.errors[0]["message"]
    assert snapshot(component) == existing


@pytest.mark.parametrize("first", ["+", "-", "@", "\t", "\r", " @"])
@pytest.mark.parametrize(("column", "field"), [("title", "title"), ("city", "city"), ("id", "external_id")])
def test_text_cells_starting_like_a_formula_are_refused_owasp(
    component, existing, run_import, tmp_path, first, column, field
):
    value = f"{first}cmd|' /C calc'!A0"
    job = run_import(component, write_csv(tmp_path / "inj.csv", [row(3, **{column: value}), row(4)]))
    assert job.status == ImportStatus.ROLLED_BACK
    assert {error["line"] for error in job.errors} == {2}  # (a city also starts the row's title)
    assert any(e["column"] == field and "would run as a formula" in e["message"] for e in job.errors), job.errors
    assert snapshot(component) == existing


def test_signed_numbers_in_number_columns_stay_valid(component, run_import, tmp_path):
    rows = [row(3, order="-3", area="+89.5"), row(4, tags="a|-b")]
    job = run_import(component, write_csv(tmp_path / "signs.csv", rows[:1]))
    assert (job.status, job.created_count) == (ImportStatus.APPLIED, 1)
    assert Listing.objects.get(external_id="SH0003").sort_order == -3
    tags = run_import(component, write_csv(tmp_path / "tags.csv", rows[1:]))  # a tags cell starts with "a": fine
    assert tags.status == ImportStatus.APPLIED


def test_negative_prices_are_refused(component, existing, run_import, tmp_path):
    job = run_import(component, write_csv(tmp_path / "neg.csv", [row(1, price="-4500"), row(3)]))
    assert job.status == ImportStatus.ROLLED_BACK
    assert job.errors == [{"line": 2, "column": "price_yuan", "message": "must not be negative (got -4500)"}]
    assert snapshot(component) == existing


def test_legacy_xls_and_other_formats_are_refused(component, existing, run_import, tmp_path):
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    assert_refused(run_import(component, xls), ".xls", "Save As")
    pdf = tmp_path / "listings.pdf"
    pdf.write_bytes(b"%PDF-1.4 hello")
    assert_refused(run_import(component, pdf), ".csv (UTF-8) or .xlsx")
    fake = tmp_path / "fake.xlsx"
    fake.write_text("external_id,city\n")
    assert_refused(run_import(component, fake), "not a readable Excel workbook")
    assert snapshot(component) == existing


def test_header_only_and_empty_files_are_refused(component, existing, run_import, tmp_path):
    assert_refused(run_import(component, write_csv(tmp_path / "h.csv", [])), "no listings")
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    with open(empty, "rb") as handle, pytest.raises(services.ImportRefused, match="empty"):
        importing.listing_import_start(component=component, upload=File(handle, name="e.csv"), filename="e.csv")


def test_only_listing_components_take_imports(db, tmp_path):
    from tests.factories import ComponentFactory

    banner = ComponentFactory(type="banner", config={"image": "https://x/y.png"})
    with open(write_csv(tmp_path / "a.csv", [row(1)]), "rb") as handle, pytest.raises(services.ImportRefused):
        importing.listing_import_start(component=banner, upload=File(handle, name="a.csv"), filename="a.csv")


def test_a_redelivered_task_does_not_run_the_job_again(component, run_import, tmp_path):
    job = run_import(component, write_csv(tmp_path / "a.csv", [row(1)]))
    Listing.objects.all().delete()
    again = importing.listing_import_run(job_id=job.pk)
    assert again.status == ImportStatus.APPLIED and not Listing.objects.exists()


def test_the_task_runs_after_commit(component, tmp_path, django_capture_on_commit_callbacks):
    path = write_csv(tmp_path / "a.csv", [row(1), row(2)])
    with django_capture_on_commit_callbacks(execute=True), open(path, "rb") as handle:
        job = importing.listing_import_start(component=component, upload=File(handle, name="a.csv"), filename="a.csv")
    job.refresh_from_db()
    assert job.status == ImportStatus.APPLIED and job.created_count == 2 and job.started_at and job.finished_at


def test_many_cities_are_capped(component, run_import, tmp_path, settings):
    settings.LISTINGS_MAX_CITIES = 3
    job = run_import(
        component, write_csv(tmp_path / "c.csv", [row(n, city=f"市{n}") for n in range(5)]), all_or_nothing=False
    )
    assert job.created_count == 3 and job.rejected_count == 2
    assert "at most 3 cities" in job.errors[0]["message"]


def test_a_job_left_running_by_a_dead_worker_is_taken_again_after_the_time_limit(component, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    path = write_csv(tmp_path / "a.csv", [row(1)])
    with open(path, "rb") as handle:
        job = importing.listing_import_start(
            component=component, upload=File(handle, name="a.csv"), filename="a.csv", run_async=False
        )
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, started_at=timezone.now())
    assert importing.listing_import_run(job_id=job.pk).status == ImportStatus.RUNNING  # still within its time
    ImportJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(hours=1))
    assert importing.listing_import_run(job_id=job.pk).status == ImportStatus.APPLIED
    assert Listing.objects.filter(component=component).count() == 1


def test_old_upload_files_are_purged_but_job_records_stay(component, run_import, tmp_path):
    from datetime import timedelta

    from django.core.files.storage import default_storage
    from django.utils import timezone

    from listings.tasks import listing_import_files_purge_task

    old = run_import(component, write_csv(tmp_path / "old.csv", [row(1)]), dry_run=True)
    shared = importing.listing_import_apply(job=old)  # same stored file, not run yet
    recent = run_import(component, write_csv(tmp_path / "new.csv", [row(2)]))
    ImportJob.objects.filter(pk=old.pk).update(finished_at=timezone.now() - timedelta(days=40))

    assert listing_import_files_purge_task() == 0  # the old file is still needed by the queued job
    importing.listing_import_run(job_id=shared.pk)
    ImportJob.objects.filter(pk=shared.pk).update(finished_at=timezone.now() - timedelta(days=31))
    assert listing_import_files_purge_task() == 1
    old.refresh_from_db()
    assert old.file.name == "" and not default_storage.exists(shared.file.name)
    recent.refresh_from_db()
    assert default_storage.exists(recent.file.name)
    assert ImportJob.objects.count() == 3


def test_ids_and_cities_differing_only_in_case_are_distinct_on_every_backend(component, run_import, tmp_path):
    header = ["external_id", "city", "title", "price_fen"]
    rows = [["ab", "Beijing", "one", "1"], ["AB", "beijing", "two", "2"], ["ab ", "Beijing", "dup", "3"]]
    job = run_import(component, write_csv(tmp_path / "case.csv", rows, header=header), all_or_nothing=False)
    assert (job.status, job.created_count, job.rejected_count) == (ImportStatus.APPLIED, 2, 1)
    assert job.errors[0]["line"] == 4  # "ab " is "ab" once trimmed
    assert dict(Listing.objects.values_list("external_id", "group__city")) == {"ab": "Beijing", "AB": "beijing"}
    again = run_import(component, write_csv(tmp_path / "case2.csv", rows[:2], header=header))
    assert again.unchanged_count == 2


def test_a_dry_run_with_row_errors_applies_only_skipping_them_and_never_when_every_row_is_bad(
    component, run_import, tmp_path
):
    some_bad = run_import(component, write_csv(tmp_path / "a.csv", [row(1), row(2, price="-1")]), dry_run=True)
    with pytest.raises(services.ImportRefused, match="applying it all or nothing would import nothing"):
        importing.listing_import_apply(job=some_bad)
    assert importing.listing_import_apply(job=some_bad, all_or_nothing=False).all_or_nothing is False

    all_bad = run_import(component, write_csv(tmp_path / "b.csv", [row(3, price="-1")]), dry_run=True)
    for strict in (True, False):
        with pytest.raises(services.ImportRefused, match="Every row of this dry run has errors"):
            importing.listing_import_apply(job=all_bad, all_or_nothing=strict)
