"""The bulk upload of listings, one package (docs/listings.md "Bulk upload"):

- `parse`: reading a CSV/XLSX file row by row in constant memory, whole-file checks.
- `check`: the rules of one listing (rows of a file, and listings saved one by one).
- `write`: the passes of an import over the checked rows, batch by batch (upserts).
- `jobs`: import jobs (start, run once, apply a dry run, purge old files).
- `files`: the files operators download (template; rows with their errors).
"""

from listings.errors import ImportRefused
from listings.importing.check import listing_values_check, row_parse
from listings.importing.files import errors_file_name, errors_file_write, template_file
from listings.importing.jobs import (
    import_apply_refusal,
    import_files_purge,
    listing_import_apply,
    listing_import_run,
    listing_import_start,
)
from listings.importing.parse import (
    COLUMN_BY_KEY,
    COLUMNS,
    ERROR_COLUMN,
    TEMPLATE_COLUMNS,
    FileRefused,
    RowError,
    RowSource,
    column_label,
)
from listings.importing.write import BATCH_SIZE, CONTENT_FIELDS

__all__ = [
    "BATCH_SIZE",
    "COLUMNS",
    "COLUMN_BY_KEY",
    "CONTENT_FIELDS",
    "ERROR_COLUMN",
    "TEMPLATE_COLUMNS",
    "FileRefused",
    "ImportRefused",
    "RowError",
    "RowSource",
    "column_label",
    "errors_file_name",
    "errors_file_write",
    "import_apply_refusal",
    "import_files_purge",
    "listing_import_apply",
    "listing_import_run",
    "listing_import_start",
    "listing_values_check",
    "row_parse",
    "template_file",
]
