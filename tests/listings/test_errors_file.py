"""Row errors can be downloaded as a file in the uploaded format (the operator's own
rows and columns plus an error column), fixed, and uploaded again."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from listings.importing import ERROR_COLUMN
from listings.models import ImportStatus, Listing
from tests.listings.files import HEADER, row, write_csv, write_xlsx

pytestmark = pytest.mark.django_db


def download(client, job) -> bytes:
    response = client.get(f"/admin/listings/importjob/{job.pk}/errors/")
    assert response.status_code == 200, response
    assert f"-errors-{job.pk}." in response["Content-Disposition"]
    return b"".join(response.streaming_content)


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_csv_error_file_holds_every_row_with_an_error_column_and_imports_once_fixed(
    operator_client, component, run_import, tmp_path
):
    header = [*HEADER, "备注"]  # a column of the operator's own is kept
    rows = [
        [*row(1), "a"],
        [*row(2, price="-1"), "b"],
        [*row(3, title='=HYPERLINK("http://evil")'), "c"],
        [*row(4), "d"],
    ]
    job = run_import(component, write_csv(tmp_path / "房源.csv", rows, header=header), dry_run=True)
    assert job.status == ImportStatus.PREVIEWED and job.rejected_count == 2

    table = read_csv(download(operator_client, job))
    assert table[0] == [ERROR_COLUMN, *header]
    assert [r[1] for r in table[1:]] == ["SH0001", "SH0002", "SH0003", "SH0004"]  # every row, in order
    errors = {r[1]: r[0] for r in table[1:]}
    assert errors["SH0001"] == "" and errors["SH0004"] == ""
    assert errors["SH0002"] == "price_yuan (价格（元）): must not be negative (got -1)"
    assert errors["SH0003"].startswith("title (标题): contains a formula")
    title = header.index("标题") + 1
    assert table[3][title] == '\'=HYPERLINK("http://evil")'  # neutralised, never a live formula
    assert all(r[-1] in "abcd" for r in table[1:])

    # The operator fixes the two rows in the file and uploads it again as it is.
    price = header.index("价格（元）") + 1
    table[2][price] = "4502.50"
    table[3][title] = "浦东 精装两居"
    fixed = tmp_path / "fixed.csv"
    with open(fixed, "w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle).writerows(table)
    again = run_import(component, fixed)
    assert again.status == ImportStatus.APPLIED, (again.message, again.errors)
    assert (again.created_count, again.rejected_count) == (4, 0)
    assert again.warnings == ["Ignored unknown column(s): 备注"]  # the error column is not "unknown"
    assert Listing.objects.get(external_id="SH0003").title == "浦东 精装两居"


def test_xlsx_error_file_round_trips(operator_client, component, run_import, tmp_path):
    rows = [row(1), row(2, area="0"), row(3, id="SH0001")]  # a bad value and a repeated id
    job = run_import(component, write_xlsx(tmp_path / "房源.xlsx", rows))
    assert job.status == ImportStatus.ROLLED_BACK and not Listing.objects.exists()

    path = tmp_path / "errors.xlsx"
    path.write_bytes(download(operator_client, job))
    workbook = load_workbook(path)
    sheet = workbook.worksheets[0]
    table = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert table[0] == [ERROR_COLUMN, *HEADER]
    assert [r[0] or "" for r in table[1:]] == [
        "",
        "area_m2 (面积（㎡）): must be greater than 0 (got 0)",
        "external_id (房源编号): 'SH0001' already appears on row 2 of this file",
    ]
    sheet.cell(row=3, column=HEADER.index("面积（㎡）") + 2).value = "60"
    sheet.cell(row=4, column=2).value = "SH0003"
    workbook.save(path)

    again = run_import(component, path)
    assert again.status == ImportStatus.APPLIED, (again.message, again.errors)
    assert again.created_count == 3 and again.warnings == []


def test_after_skipping_bad_rows_the_error_file_holds_only_the_skipped_rows(
    operator_client, component, run_import, tmp_path
):
    job = run_import(
        component,
        write_csv(tmp_path / "a.csv", [row(1), row(2, price="abc"), row(3)]),
        all_or_nothing=False,
    )
    assert job.status == ImportStatus.APPLIED and job.created_count == 2
    table = read_csv(download(operator_client, job))
    assert [r[1] for r in table[1:]] == ["SH0002"]
    assert "is not a number" in table[1][0]


def test_no_error_file_for_a_clean_or_refused_import(operator_client, component, run_import, tmp_path):
    clean = run_import(component, write_csv(tmp_path / "a.csv", [row(1)]), dry_run=True)
    page = operator_client.get(f"/admin/listings/importjob/{clean.pk}/change/").content.decode()
    assert "Download the rows with their errors" not in page
    assert operator_client.get(f"/admin/listings/importjob/{clean.pk}/errors/").status_code == 404
    bad = tmp_path / "b.csv"
    bad.write_bytes("房源编号,城市\n".encode("gbk"))
    refused = run_import(component, bad)
    assert refused.status == ImportStatus.FAILED
    assert operator_client.get(f"/admin/listings/importjob/{refused.pk}/errors/").status_code == 404
