"""CSV/XLSX formula injection (OWASP "CSV Injection"), one rule for the whole project.

A spreadsheet treats a cell that starts with `=`, `+`, `-` or `@` (or a tab or a
carriage return before one) as a formula: text from users or operators must never
reach an operator's Excel that way.

- Import: `formula_like(text)` says a text cell must be refused (number columns parse
  their own values, so `-3` stays a valid number there).
- Export: `formula_neutralise(value)` prefixes such text with `'` (Excel's own "this
  is text" mark); numbers (also as text: `-3`), dates and None pass unchanged. Every django-import-export
  resource derives from `SafeExportResource`, which applies it to every cell (a test
  walks the admin and refuses an export that does not); hand-written CSV/XLSX writers
  call `formula_neutralise` on each cell.
"""

from __future__ import annotations

import re
from typing import Any

from import_export import resources

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def formula_like(text: str) -> bool:
    """True when a spreadsheet would read `text` as a formula (leading spaces ignored)."""
    return text.startswith(FORMULA_TRIGGERS) or text.lstrip(" ").startswith(FORMULA_TRIGGERS)


def formula_neutralise(value: Any) -> Any:
    """The value as a spreadsheet cell that can never run: formula-like text gets a
    leading `'`; a plain number written as text (`-3`, `+1.5`, as export widgets render
    number columns) and anything that is not text are returned as they are."""
    if isinstance(value, str) and formula_like(value) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class SafeExportResource(resources.ModelResource):
    """The base of every export resource: each exported cell goes through
    formula_neutralise, whatever the field, dehydrate method or format (CSV, XLSX, ...)."""

    def export_field(self, field, instance, **kwargs):
        return formula_neutralise(super().export_field(field, instance, **kwargs))

    def get_export_headers(self, selected_fields=None):
        return [formula_neutralise(header) for header in super().get_export_headers(selected_fields)]
