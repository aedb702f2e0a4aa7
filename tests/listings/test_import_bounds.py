"""Bounded work per import: workbooks that unpack too far or hold over-long cells are
refused before parsing; an import stopped by its time limit says so."""

from __future__ import annotations

import gc
import signal
import zipfile

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from listings.models import ImportStatus, Listing
from tests.listings.files import row, write_csv, write_xlsx


def _refused(job, *phrases):
    assert job.status == ImportStatus.FAILED, (job.status, job.message)
    for phrase in phrases:
        assert phrase in job.message, job.message


def test_a_zip_bomb_workbook_is_refused_by_its_unpacked_size_before_parsing(component, run_import, tmp_path, settings):
    settings.LISTINGS_XLSX_MAX_UNPACKED_BYTES = 2 * 1024 * 1024
    source = write_xlsx(tmp_path / "small.xlsx", [row(n) for n in range(3)])
    padding = b"<sheetData>" + b" " * (3 * 1024 * 1024)  # a sheet padded with 3 MB of blanks
    path = _xlsx_with(source, tmp_path / "bomb.xlsx", sheet=lambda data: data.replace(b"<sheetData>", padding))
    assert path.stat().st_size < 100_000  # tiny on disk, 3 MB unpacked
    _refused(run_import(component, path), "unpacks to 3 MB; the limit is 2 MB")
    assert not Listing.objects.exists()


def _xlsx_with(source, path, *, sheet=None, extra: dict[str, bytes] | None = None):
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item.filename, sheet(data) if sheet and item.filename == "xl/worksheets/sheet1.xml" else data)
        for name, data in (extra or {}).items():
            dst.writestr(name, data)
    return path


LONG = "x" * 40_000


@pytest.mark.parametrize("kind", ["shared", "inline", "csv"])
def test_a_cell_over_excels_limit_is_refused_with_a_clear_message(component, run_import, tmp_path, kind):
    if kind == "csv":
        path = write_csv(tmp_path / "long.csv", [row(1), row(2, tags=LONG)])
    else:  # openpyxl itself cuts cells at 32767 characters: the long cell is put in by hand, as Excel would not
        source = write_xlsx(tmp_path / "src.xlsx", [row(1), row(2, tags="cut-here")])
        if kind == "shared":  # Excel keeps text in xl/sharedStrings.xml, checked before parsing
            shared = (
                '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
                f"<si><t>{LONG}</t></si></sst>"
            ).encode()
            path = _xlsx_with(source, tmp_path / "long.xlsx", extra={"xl/sharedStrings.xml": shared})
        else:  # an inline string in the sheet, caught as its row is read
            path = _xlsx_with(source, tmp_path / "long.xlsx", sheet=lambda d: d.replace(b"cut-here", LONG.encode()))
    job = run_import(component, path)
    _refused(job, "40000 characters", "32767")
    assert not Listing.objects.exists()


@pytest.fixture
def time_limit_after_first_progress(monkeypatch):
    """Plays Celery's soft time limit: SoftTimeLimitExceeded raised by a signal in the
    middle of whatever the import is doing, 1 ms after its first progress report.

    Python code that runs during a garbage collection (hypothesis installs a
    `gc.callbacks` timer in every test process) would swallow the exception when
    the signal lands in it ("Exception ignored in gc_callback"); the callbacks are
    set aside meanwhile, so the signal always lands in the import's own code."""

    def expire(signum, frame):
        raise SoftTimeLimitExceeded()

    previous = signal.signal(signal.SIGALRM, expire)
    callbacks = list(gc.callbacks)
    gc.callbacks.clear()

    def arm(processed: int, total) -> None:
        if processed:
            signal.setitimer(signal.ITIMER_REAL, 0.001)

    try:
        yield arm
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        gc.callbacks[:] = callbacks


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_an_import_stopped_by_its_time_limit_says_so_never_that_the_file_is_damaged(
    component, tmp_path, kind, monkeypatch, time_limit_after_first_progress, settings
):
    from django.core.files import File

    from listings import importing

    monkeypatch.setattr("listings.importing.write.BATCH_SIZE", 100)
    rows = [row(n) for n in range(3000)]
    path = write_xlsx(tmp_path / "big.xlsx", rows) if kind == "xlsx" else write_csv(tmp_path / "big.csv", rows)
    with open(path, "rb") as handle:
        job = importing.listing_import_start(
            component=component, upload=File(handle, name=path.name), filename=path.name, run_async=False
        )
    job = importing.listing_import_run(job_id=job.pk, progress=time_limit_after_first_progress)
    _refused(job, f"time limit ({settings.CELERY_TASK_SOFT_TIME_LIMIT} s)", "nothing was changed")
    assert "damaged" not in job.message and "internal error" not in job.message
    assert not Listing.objects.exists()  # all-or-nothing: stopped in its read-only first pass
