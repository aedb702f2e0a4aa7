"""Reading listings files, row by row, in constant memory (no database access).

`RowSource(stream, name)` checks the file as a whole (format, encoding, size
bounds, header) and then yields `(line, {column: raw value})` for each data row of
a CSV (UTF-8) or XLSX file (first sheet); problems with the whole file raise
`FileRefused`. The rules of one row live in `listings.importing.check`.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import iterparse

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls
MAX_CELL_CHARS = 32767  # Excel's own limit for one cell
XLSX_MAX_MEMBERS = 1000
# Not "the file is damaged": the task's time limit passes through every reader.
_TIME_LIMITS = (SoftTimeLimitExceeded, TimeLimitExceeded)


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # the Chinese header operators see in the template
    required: bool = False
    help: str | Promise = ""  # lazy: rendered in the language of the template download


COLUMNS: tuple[Column, ...] = (
    Column(
        "external_id",
        "房源编号",
        True,
        gettext_lazy("Your id of the listing; re-uploading a row with the same id updates it."),
    ),
    Column("city", "城市", True, gettext_lazy("City name; one tab per city on the page. New cities are created.")),
    Column("title", "标题", True, gettext_lazy("Listing title, up to 200 characters.")),
    Column("district", "区域", False, gettext_lazy("District, e.g. 浦东新区.")),
    Column("address", "地址", False, gettext_lazy("Street address.")),
    Column(
        "price_yuan", "价格（元）", False, gettext_lazy("Price in yuan, up to 2 decimals (or use a price_fen column).")
    ),
    Column("price_fen", "价格（分）", False, gettext_lazy("Price in fen, a whole number (instead of price_yuan).")),
    Column("area_m2", "面积（㎡）", False, gettext_lazy("Floor area in square metres.")),
    Column("layout", "户型", False, gettext_lazy("Rooms layout, e.g. 3室2厅.")),
    Column("cover_image_url", "封面图", False, gettext_lazy("http(s) URL of the cover image.")),
    Column("detail_url", "详情链接", False, gettext_lazy("http(s) URL of the detail page.")),
    Column("tags", "标签", False, gettext_lazy("Tags separated by | or commas, at most 10.")),
    Column("sort_order", "排序", False, gettext_lazy("Whole number; smaller shows first. Default 0.")),
    Column("is_active", "上架", False, gettext_lazy("1/0, yes/no, 是/否, 上架/下架. Default yes.")),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
TEMPLATE_COLUMNS = tuple(c for c in COLUMNS if c.key != "price_fen")

# The column the error file adds (listings.importing.files): ignored on upload, so a
# fixed error file imports as it is.
ERROR_COLUMN = "错误 error"
_IGNORED = {ERROR_COLUMN.lower(), "错误", "error", "errors"}

_ALIASES: dict[str, str] = {}
for _c in COLUMNS:
    for _name in (_c.key, _c.label, _c.label.replace("（", "(").replace("）", ")")):
        _ALIASES[_name.lower()] = _c.key
_ALIASES.update(
    {"编号": "external_id", "id": "external_id", "价格": "price_yuan", "面积": "area_m2", "图片": "cover_image_url"}
)


class FileRefused(Exception):
    """The file as a whole cannot be imported; the message is for the operator."""


@dataclass(frozen=True)
class RowError:
    line: int | None
    column: str | None
    message: str

    def as_dict(self) -> dict:
        return {"line": self.line, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        column = ""
        if self.column:
            label = COLUMN_BY_KEY[self.column].label if self.column in COLUMN_BY_KEY else ""
            column = f"{self.column} ({label})" if label else self.column
        if self.line is not None and column:
            where = _("Row %(line)s, column %(column)s") % {"line": self.line, "column": column}
        elif self.line is not None:
            where = _("Row %(line)s") % {"line": self.line}
        elif column:
            where = _("Column %(column)s") % {"column": column}
        else:
            return self.message
        return _("%(where)s: %(message)s") % {"where": where, "message": self.message}


def column_label(key: str) -> str:
    column = COLUMN_BY_KEY.get(key)
    return f"{key} ({column.label})" if column else key


# --- whole-file checks --------------------------------------------------------


def file_kind(head: bytes, name: str) -> str:
    """ "xlsx" or "csv", from the first bytes (the extension is only a hint)."""
    lowered = name.lower()
    if head.startswith(OLE_MAGIC) or lowered.endswith(".xls"):
        raise FileRefused(
            _(
                "This is an old Excel .xls file, which is not supported. In Excel choose File → Save As → "
                "Excel Workbook (.xlsx), or CSV UTF-8, and upload that."
            )
        )
    if head.startswith(XLSX_MAGIC):
        return "xlsx"
    if lowered.endswith((".xlsx", ".xlsm")):
        raise FileRefused(
            _(
                "The file is named .xlsx but is not a readable Excel workbook (it may be damaged or only partly "
                "downloaded). Open it in Excel and save it again, or upload a CSV."
            )
        )
    if not lowered.endswith((".csv", ".txt")):
        raise FileRefused(_("Upload a .csv (UTF-8) or .xlsx file; other formats are not supported."))
    return "csv"


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def csv_encoding_check(stream: io.BufferedIOBase) -> int:
    """Read the whole file once in chunks and make sure it is UTF-8. Returns the
    number of lines (for progress). Memory stays one chunk."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0
    first = True
    while chunk := stream.read(1 << 20):
        if first and b"\x00" in chunk[:4096]:
            if chunk[:2] in (b"\xff\xfe", b"\xfe\xff"):
                raise FileRefused(
                    _(
                        "The file is UTF-16 text; save it as CSV UTF-8 (Excel: File → Save As → CSV UTF-8) "
                        "and upload again."
                    )
                )
            raise FileRefused(_("The file is not a text CSV (it contains binary data). Upload a .csv or .xlsx file."))
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line = lines + _line_of(chunk, exc.start)
            start = chunk.rfind(b"\n", 0, exc.start) + 1
            end = chunk.find(b"\n", exc.start)
            try:
                text = chunk[start : end if end >= 0 else len(chunk)].decode("gb18030")
                chinese = any("\u4e00" <= ch <= "\u9fff" for ch in text)
            except UnicodeDecodeError:
                chinese = False
            parts = [_("The file is not UTF-8 text (first unreadable character on line %(line)s).") % {"line": line}]
            if chinese:
                parts.append(_("It looks like GBK/GB18030, the encoding Excel uses for Chinese CSV files on Windows."))
            parts.append(
                _("In Excel choose File → Save As → CSV UTF-8 (comma delimited), or upload the .xlsx file instead.")
            )
            raise FileRefused(" ".join(parts)) from None
        lines += chunk.count(b"\n")
        first = False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise FileRefused(_("The file ends in the middle of a character: it is not valid UTF-8 text.")) from None
    return lines


def header_map(cells: list[Any]) -> tuple[dict[int, str], list[str]]:
    """Map column index -> column key. Returns (mapping, warnings)."""
    mapping: dict[int, str] = {}
    seen: dict[str, int] = {}
    unknown: list[str] = []
    for index, cell in enumerate(cells):
        name = "" if cell is None else str(cell).strip().lstrip("\ufeff").strip()
        if not name:
            continue
        key = _ALIASES.get(name.lower())
        if key is None:
            if name.lower() not in _IGNORED:
                unknown.append(name)
            continue
        if key in seen:
            raise FileRefused(
                _("The column %(column)s appears twice in the header row; keep one.") % {"column": column_label(key)}
            )
        seen[key] = index
        mapping[index] = key
    missing = [c.key for c in COLUMNS if c.required and c.key not in seen]
    if "price_yuan" not in seen and "price_fen" not in seen:
        missing.append("price_yuan")
    if missing:
        found = ", ".join(str(c) for c in cells if c not in (None, "")) or _("nothing")
        raise FileRefused(
            _(
                "Missing required column(s): %(columns)s. The first row must be the header row (found: "
                "%(found)s). Download the template to see the columns."
            )
            % {"columns": ", ".join(column_label(k) for k in missing), "found": found[:300]}
        )
    if "price_yuan" in seen and "price_fen" in seen:
        raise FileRefused(
            _("Give the price once: either a price_yuan (价格（元）) or a price_fen (价格（分）) column, not both.")
        )
    warnings = [_("Ignored unknown column(s): %(columns)s") % {"columns": ", ".join(unknown)}] if unknown else []
    return mapping, warnings


def _blank(cells) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


def _rows_csv(stream: io.BufferedIOBase) -> Iterator[tuple[int, list[Any]]]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")  # type: ignore[type-var]
    reader = csv.reader(text)
    try:
        yield from enumerate(reader, start=1)
    except csv.Error as exc:
        raise FileRefused(
            _("The CSV is malformed near line %(line)s: %(error)s.") % {"line": reader.line_num, "error": exc}
        ) from None


def _formula_text(formula: Any) -> str:
    """Array formulas (Excel 365 saves dynamic-array formulas this way) and data
    tables come as objects, not "=..." text: their text, so the formula check sees them."""
    text = str(getattr(formula, "text", None) or "TABLE()")
    return text if text.startswith("=") else f"={text}"


def xlsx_bounds_check(stream: io.BufferedIOBase, *, max_unpacked_bytes: int) -> None:
    """Before parsing: refuse a workbook (a zip) that would unpack to more than
    `max_unpacked_bytes` (zip bombs: the sizes in the zip's directory bound what
    Python's zipfile will inflate), holds too many parts, or has a shared text longer
    than Excel's own cell limit. A file that is not a zip is left to the parser's
    clear message."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        stream.seek(0)
        return
    try:
        members = archive.infolist()
        if len(members) > XLSX_MAX_MEMBERS:
            raise FileRefused(
                _("The workbook has %(n)s parts; a listings workbook has far fewer.") % {"n": len(members)}
            )
        unpacked = sum(member.file_size for member in members)
        if unpacked > max_unpacked_bytes:
            raise FileRefused(
                _(
                    "The workbook unpacks to %(size)s MB; the limit is %(limit)s MB. Split it into several files "
                    "(each with the header row), or upload a CSV."
                )
                % {"size": f"{unpacked / 1048576:.0f}", "limit": f"{max_unpacked_bytes / 1048576:.0f}"}
            )
        names = {member.filename for member in members}
        if "xl/sharedStrings.xml" in names:
            try:
                with archive.open("xl/sharedStrings.xml") as shared:
                    number = 0
                    for _event, element in iterparse(shared):
                        if element.tag.rsplit("}", 1)[-1] != "si":
                            continue
                        number += 1
                        length = sum(len(text or "") for text in element.itertext())
                        if length > MAX_CELL_CHARS:
                            raise FileRefused(
                                _(
                                    "A text cell of the workbook has %(n)s characters; the limit is %(limit)s "
                                    "(Excel's own). Fix that cell and upload again."
                                )
                                % {"n": length, "limit": MAX_CELL_CHARS}
                            )
                        element.clear()
            except FileRefused:
                raise
            except _TIME_LIMITS:
                raise
            except Exception:
                pass  # malformed: the parser below refuses it with its own message
    finally:
        archive.close()
        stream.seek(0)


def _rows_xlsx(stream: io.BufferedIOBase) -> tuple[Iterator[tuple[int, list[Any]]], int | None, Any]:
    from openpyxl import load_workbook
    from openpyxl.worksheet.formula import ArrayFormula, DataTableFormula

    formulas = (ArrayFormula, DataTableFormula)

    try:
        workbook = load_workbook(stream, read_only=True, data_only=False)
        sheet = workbook.worksheets[0]
    except _TIME_LIMITS:
        raise
    except Exception:  # openpyxl raises many types for a damaged workbook
        raise FileRefused(
            _(
                "The file is not a readable Excel workbook (it may be damaged, password-protected or only partly "
                "downloaded). Open it in Excel and save it again as .xlsx, or upload a CSV."
            )
        ) from None
    try:
        estimate = sheet.max_row
    except Exception:
        estimate = None

    def rows():
        try:
            for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield number, [_formula_text(c) if isinstance(c, formulas) else c for c in cells]
        except (FileRefused, *_TIME_LIMITS):
            raise
        except Exception:
            raise FileRefused(
                _(
                    "The Excel workbook is damaged part-way through and cannot be read to the end. "
                    "Open it in Excel and save it again, or upload a CSV."
                )
            ) from None

    return rows(), estimate, workbook


class RowSource:
    """Context manager over an uploaded file: `.rows` yields (line, {key: value}),
    `.estimated_rows` is known up front (for progress), `.warnings` about the header."""

    def __init__(
        self,
        stream: io.BufferedIOBase,
        name: str,
        *,
        max_unpacked_bytes: int = 200 * 1024 * 1024,
        close_stream: bool = False,
    ):
        self.stream = stream
        self.close_stream = close_stream
        self.max_unpacked_bytes = max_unpacked_bytes
        self.name = name
        self.workbook = None
        self.estimated_rows: int | None = None
        self.warnings: list[str] = []
        self.kind = ""
        self.header: list[Any] = []  # the header row's cells as in the file

    def __enter__(self) -> RowSource:
        head = self.stream.read(8)
        self.stream.seek(0)
        if not head:
            raise FileRefused(_("The file is empty."))
        self.kind = file_kind(head, self.name)
        if self.kind == "csv":
            lines = csv_encoding_check(self.stream)
            self.stream.seek(0)
            self.estimated_rows = max(lines - 1, 0)
            raw = _rows_csv(self.stream)
        else:
            xlsx_bounds_check(self.stream, max_unpacked_bytes=self.max_unpacked_bytes)
            raw, estimate, self.workbook = _rows_xlsx(self.stream)
            self.estimated_rows = None if estimate is None else max(estimate - 1, 0)
        self._raw = raw
        try:
            for _number, cells in raw:
                if _blank(cells):
                    continue
                self._mapping, self.warnings = header_map(cells)
                self.header = list(cells)
                break
            else:
                raise FileRefused(_("The file has no header row and no listings."))
        except BaseException:
            self.__exit__()  # `with` calls __exit__ only once __enter__ has returned
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.workbook is not None:
                self.workbook.close()
        finally:
            if self.close_stream:
                self.stream.close()

    @property
    def rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for number, _cells, values in self.rows_with_cells:
            yield number, values

    @property
    def rows_with_cells(self) -> Iterator[tuple[int, list[Any], dict[str, Any]]]:
        """(line, the row's cells as in the file, {key: value})."""
        mapping = self._mapping
        for number, cells in self._raw:
            if _blank(cells):
                continue
            for cell in cells:
                if isinstance(cell, str) and len(cell) > MAX_CELL_CHARS:
                    raise FileRefused(
                        _(
                            "Row %(line)s has a cell of %(n)s characters; the limit is %(limit)s "
                            "(Excel's own). Fix that cell and upload again."
                        )
                        % {"line": number, "n": len(cell), "limit": MAX_CELL_CHARS}
                    )
            values = {key: (cells[index] if index < len(cells) else None) for index, key in mapping.items()}
            yield number, cells, values
