"""Files operators download: the import template, and the rows of an import with
their errors (the operator's own rows and columns, in the format they uploaded, plus
an error column; fixed, it uploads again as it is). Every cell goes through
core.spreadsheets.formula_neutralise."""

from __future__ import annotations

import csv
import io
from typing import IO, Any

from core.spreadsheets import formula_neutralise
from listings.importing.parse import COLUMNS, ERROR_COLUMN, TEMPLATE_COLUMNS, RowError, column_label

# --- the template operators download ----------------------------------------

TEMPLATE_EXAMPLE = {
    "external_id": "SH-0001",
    "city": "上海",
    "title": "浦东 精装两居 近地铁",
    "district": "浦东新区",
    "address": "世纪大道 100 号",
    "price_yuan": "4500.00",
    "area_m2": "89.5",
    "layout": "2室1厅",
    "cover_image_url": "https://img.example.com/sh-0001.jpg",
    "detail_url": "https://example.com/listing/sh-0001",
    "tags": "近地铁|南北通透",
    "sort_order": "1",
    "is_active": "是",
}


def template_file(kind: str) -> bytes:
    """The import template: header row (Chinese labels; the English keys work
    too), one example row; the XLSX adds a sheet explaining each column."""
    header = [formula_neutralise(c.label) for c in TEMPLATE_COLUMNS]  # like every export (core.spreadsheets)
    example = [formula_neutralise(TEMPLATE_EXAMPLE[c.key]) for c in TEMPLATE_COLUMNS]
    if kind == "csv":
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer)
        writer.writerow(header)
        writer.writerow(example)
        return buffer.getvalue().encode("utf-8-sig")  # the BOM makes Excel read it as UTF-8
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "房源"
    sheet.append(header)
    sheet.append(example)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for index, column in enumerate(TEMPLATE_COLUMNS, start=1):
        sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = max(
            12, len(column.label) * 2 + 4
        )
        sheet.cell(row=2, column=index).number_format = "@"  # text: keeps ids like 007 and prices exact
    notes = workbook.create_sheet("说明 Help")
    notes.append(["列 Column", "key", "必填 Required", "说明 Notes"])
    for column in COLUMNS:
        required = "是" if column.required or column.key == "price_yuan" else ""
        notes.append([column.label, column.key, required, str(column.help)])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


# --- the rows of an import, with their errors ---------------------------------


def errors_file_kind(job) -> str:
    return "xlsx" if job.original_name.lower().endswith((".xlsx", ".xlsm")) else "csv"


def errors_file_name(job) -> str:
    stem = job.original_name.rsplit(".", 1)[0] or "listings"
    return f"{stem}-errors-{job.pk}.{errors_file_kind(job)}"


def _error_text(errors: list[RowError]) -> str:
    return "; ".join(f"{column_label(e.column)}: {e.message}" if e.column else e.message for e in errors)


class _CsvOut:
    def __init__(self, out: IO[bytes]):
        self.text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
        self.writer = csv.writer(self.text)

    def row(self, cells: list[Any]) -> None:
        self.writer.writerow(["" if c is None else c for c in cells])

    def close(self) -> None:
        self.text.flush()
        self.text.detach()  # leave `out` open for the caller


class _XlsxOut:
    def __init__(self, out: IO[bytes]):
        from openpyxl import Workbook

        self.out = out
        self.workbook = Workbook(write_only=True)  # rows go to a temporary file: constant memory
        self.sheet = self.workbook.create_sheet("房源")

    def row(self, cells: list[Any]) -> None:
        self.sheet.append(cells)

    def close(self) -> None:
        self.workbook.save(self.out)


def errors_file_write(*, job, out: IO[bytes]) -> int:
    """Write the rows of `job`'s file with an error column first (empty for a good
    row) into `out`, in the uploaded format (CSV or XLSX). Every row when nothing was
    imported (a dry run, a rejected all-or-nothing import); only the rejected rows when
    the good ones were imported. The rows are checked again, as a dry run would (the
    file's own rules, repeated ids, the city limit); reads the database only. Memory
    holds one batch. Returns the number of rows with errors."""
    from listings.importing.write import BATCH_SIZE, CHECK, Importer, open_source
    from listings.models import ImportStatus

    only_rejected = job.status == ImportStatus.APPLIED
    writer = _XlsxOut(out) if errors_file_kind(job) == "xlsx" else _CsvOut(out)
    importer = Importer(job, None, mode=CHECK)
    by_line: dict[int | None, list[RowError]] = {}
    importer.on_reject = lambda errors: by_line.setdefault(errors[0].line, []).extend(errors)
    pending: list[tuple[int, list[Any]]] = []
    bad = 0

    def drain() -> None:
        nonlocal bad
        importer.flush(importer.batch)  # checks the waiting rows now (checking only: no writes)
        importer.batch = []
        for line, cells in pending:
            errors = by_line.pop(line, None)
            if errors:
                bad += 1
            elif only_rejected:
                continue
            writer.row([formula_neutralise(_error_text(errors or []))] + [formula_neutralise(c) for c in cells])
        pending.clear()

    try:
        with open_source(job) as source:
            importer.load()
            writer.row([ERROR_COLUMN] + [formula_neutralise(c) for c in source.header])
            for line, cells, raw in source.rows_with_cells:
                importer.line = line
                importer.processed += 1
                pending.append((line, cells))
                values, errors = _parse(line, raw)
                if errors:
                    importer.reject(errors)
                else:
                    importer.batch.append((line, values))
                if len(pending) >= BATCH_SIZE:
                    drain()
            drain()
    finally:
        importer.close()
        writer.close()
    return bad


def _parse(line: int, raw: dict[str, Any]):
    from listings.importing.check import row_parse

    return row_parse(line, raw)
