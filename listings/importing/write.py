"""The passes of an import over a file's checked rows, batch by batch.

`Importer(job, progress, mode=...)`:
- `PREVIEW` (a dry run): reads the database only, outside any transaction (no write
  lock): what would be created, updated, unchanged, rejected.
- `CHECK` (the first pass of an all-or-nothing import): row checks, repeated ids and
  the city limit, no listing read at all; the clean rows are spooled to a temporary
  file (pickled batches of plain tuples, `SpoolRow`) so the writing pass does not
  read and check the file again. On MySQL/MariaDB they are also sent, batch by
  batch, into a temporary table of the connection (`MysqlStage`) while the next batch
  is checked, so that the server stores them during the checking pass.
- `APPLY`: each batch in its own short transaction under the component's row lock:
  one SELECT of the batch's existing rows, then one multi-row upsert
  (`INSERT … ON DUPLICATE KEY UPDATE` on MySQL/MariaDB, `INSERT … ON CONFLICT DO
  UPDATE` on SQLite) of the new and changed rows; other writes (claims, orders,
  another import) proceed between batches. On MySQL/MariaDB the writing pass of an
  all-or-nothing import copies each batch from the stage with one `INSERT … SELECT …
  ON DUPLICATE KEY UPDATE`, sent without waiting and its result read after the next
  batch has been read from the spool (`Importer._write_staged`).
Memory holds one batch and the external ids seen so far (to name a repeated id's
first row).
"""

from __future__ import annotations

import json
import logging
import operator
import pickle
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any

from django.conf import settings
from django.db import connection, reset_queries, transaction
from django.db.models import Field
from django.db.models.constants import OnConflict
from django.utils import timezone

from components.models import Component
from core.db import MYSQL_GAP, MYSQL_QUOTE, mysql_escape_marked
from listings.importing.check import row_parse
from listings.importing.parse import FileRefused, RowError, RowSource
from listings.models import ImportJob, Listing, ListingGroup

logger = logging.getLogger("huodong.listings")

BATCH_SIZE = 1000
# The checking pass of an all-or-nothing import holds fewer rows at a time: it only
# checks, spools and stages them, and 250 parsed rows stay in the CPU's caches where
# 1,000 did not (#17: the same 100k-row check 3.53–4.62 s with 1,000-row batches
# against 3.08–3.46 s with 250, six interleaved rounds in one process, load ~1;
# 100 was no better than 250).
CHECK_BATCH_SIZE = 250
# The writing pass of an all-or-nothing import takes the spooled rows in bigger
# transactions: fewer round trips (each batch is ~7: autocommit off, lock, cities,
# existing rows, upsert, commit, autocommit on), still short (a fraction of a second).
WRITE_BATCH_SIZE = 5000
# MySQL/MariaDB: one upsert statement's text stays under this (and under the server's
# max_allowed_packet); a write batch of long rows is sent as several statements.
MYSQL_STATEMENT_MAX_BYTES = 8 * 1024 * 1024
MAX_STORED_ERRORS = 500
MAX_PREVIEW = 20
CONTENT_FIELDS = (
    "title",
    "district",
    "address",
    "price_fen",
    "area_m2",
    "layout",
    "cover_image_url",
    "detail_url",
    "tags",
    "sort_order",
    "is_active",
)
INSERT_COLUMNS = (
    "component_id",
    "group_id",
    "external_id",
    *CONTENT_FIELDS,
    "import_job_id",
    "import_line",
    "created_at",
    "updated_at",
)
UPDATE_COLUMNS = (*CONTENT_FIELDS, "group_id", "import_job_id", "import_line", "updated_at")

PREVIEW, CHECK, APPLY = "preview", "check", "apply"

ProgressCallback = Callable[[int, int | None], None]
Batch = list[tuple[int, dict[str, Any]]]
# A spooled row: (line, external_id, city, *CONTENT_FIELDS values), typed as
# `row_parse` typed them except area_m2, kept as its text ("55.50", or None):
# plain tuples of str/int/bool/list pickle and unpickle several times faster than
# dicts holding Decimals (#17).
SpoolRow = tuple[Any, ...]
SPOOL_KEYS = ("external_id", "city", *CONTENT_FIELDS)
_CONTENT_AT = 3  # a SpoolRow's CONTENT_FIELDS start here
_content = operator.itemgetter(*CONTENT_FIELDS)
_TITLE_AT, _PRICE_AT = CONTENT_FIELDS.index("title"), CONTENT_FIELDS.index("price_fen")
# A row as `Importer._classify` takes it: (line, external_id, city, CONTENT_FIELDS values, group_id)
Keyed = tuple[int, str, str, tuple, int]


def spool_rows(batch: Batch) -> list[SpoolRow]:
    """A checked batch as spooled rows (the tuple written out in SPOOL_KEYS order:
    cheaper than any generic conversion)."""
    return [
        (
            line,
            v["external_id"],
            v["city"],
            v["title"],
            v["district"],
            v["address"],
            v["price_fen"],
            None if (area := v["area_m2"]) is None else str(area),
            v["layout"],
            v["cover_image_url"],
            v["detail_url"],
            v["tags"],
            v["sort_order"],
            v["is_active"],
        )
        for line, v in batch
    ]


def spooled_values(row: SpoolRow) -> dict[str, Any]:
    """A spooled row's values as `row_parse` gave them (area_m2 a Decimal again)."""
    values = dict(zip(SPOOL_KEYS, row[1:], strict=True))
    if values["area_m2"] is not None:
        values["area_m2"] = Decimal(values["area_m2"])
    return values


class Spool:
    """Checked rows on disk, batch by batch, read back once in order. Each batch is
    written as its keys (line and city of each row, pickled) followed by its rows
    (pickled lists of `SpoolRow`, length-prefixed), so the staged writing pass can
    read the keys alone and skip the rows' unpickling when it needs no more than the
    lines and cities (`SpooledBatch.rows`: new rows, the preview full)."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()
        self.batches = 0

    def add(self, batch: Batch) -> list[SpoolRow]:
        """Spool `batch`; returns its spooled rows."""
        rows = spool_rows(batch)
        blob = pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(([(row[0], row[2]) for row in rows], len(blob)), self.file, protocol=pickle.HIGHEST_PROTOCOL)
        self.file.write(blob)
        self.batches += 1
        return rows

    def spooled(self) -> Iterator[SpooledBatch]:
        """The batches in order, each with its keys read and its rows left on disk
        until asked for (`rows()`, before the next batch is taken)."""
        self.file.seek(0)
        for _ in range(self.batches):
            keys, size = pickle.load(self.file)
            at = self.file.tell()
            yield SpooledBatch(self.file, keys, at, size)
            self.file.seek(at + size)

    def close(self) -> None:
        self.file.close()


class SpooledBatch:
    """One spooled batch: `keys` [(line, city)] in row order, its rows on disk."""

    def __init__(self, file: Any, keys: list[tuple[int, str]], at: int, size: int) -> None:
        self.keys, self._file, self._at, self._size = keys, file, at, size

    def rows(self) -> list[SpoolRow]:
        self._file.seek(self._at)
        return pickle.loads(self._file.read(self._size))


class SeenIds:
    """The external ids of a file seen so far and the line of each, on disk (a
    private temporary SQLite database; its page cache is capped at 2 MB), so memory
    stays flat however long the file. Byte-exact, like the listing's column."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("")  # "": a private temporary on-disk database, gone on close
        self.db.execute("PRAGMA cache_size = -2048")
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("CREATE TABLE seen (ext TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID")

    def lines_of(self, exts: list[str]) -> dict[str, int]:
        """{ext: its first line} for those of `exts` already recorded."""
        found: dict[str, int] = {}
        for start in range(0, len(exts), 900):
            chunk = exts[start : start + 900]
            marks = ",".join("?" * len(chunk))
            found.update(self.db.execute(f"SELECT ext, line FROM seen WHERE ext IN ({marks})", chunk))
        return found

    def record(self, items: list[tuple[str, int]]) -> None:
        self.db.executemany("INSERT INTO seen (ext, line) VALUES (?, ?)", items)

    def close(self) -> None:
        self.db.close()


class MysqlStage:
    """MySQL/MariaDB: the checked rows of an all-or-nothing import in a temporary table
    of this connection (`STAGE_TABLE`: no other session sees it, it has no secondary
    index, InnoDB writes no redo for it, and it is gone when the connection closes).

    The checking pass sends each batch's INSERT into it without waiting for the
    result (`add`): the server stores a batch while this process checks the next, so
    the server's share of the import (parsing the rows' text, storing them) overlaps
    the checking instead of following it. The writing pass then copies each batch
    from the stage into the listings with one `INSERT … SELECT … ON DUPLICATE KEY
    UPDATE` (`merge_send`), in the batch's own transaction as before. Nothing reaches
    `listings_listing` before the whole file has passed its checks (all or nothing).

    One statement at a time is in flight; `wait` reads its result (and raises its
    error) and must come before any other statement on the connection."""

    def __init__(self) -> None:
        connection.ensure_connection()
        self.max_bytes = _mysql_max_statement_bytes()
        self._in_flight = False
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TEMPORARY TABLE IF EXISTS {connection.ops.quote_name(STAGE_TABLE)}")
            cursor.execute(_mysql_stage_ddl())

    def add(self, rows: list[SpoolRow]) -> None:
        """Send `rows` (checked, spooled) into the stage; the last statement stays in flight."""
        self.wait()
        if not rows:
            return
        raw = connection.connection
        head = f"INSERT INTO {connection.ops.quote_name(STAGE_TABLE)} VALUES ".encode()
        values = _mysql_stage_rows(rows, raw.string_literal)
        statements: list[list[bytes]] = [[]]
        size = len(head)
        for value in values:
            if statements[-1] and size + len(value) + 3 > self.max_bytes:
                statements.append([])
                size = len(head)
            statements[-1].append(value)
            size += len(value) + 3
        with connection.wrap_database_errors:
            for statement in statements[:-1]:
                raw.query(head + b"(" + b"),(".join(statement) + b")")
        self._send(head + b"(" + b"),(".join(statements[-1]) + b")")

    def merge_send(self, *, component_id: int, job_id: int, first: int, last: int, lines: list[int] | None) -> None:
        """Send (without waiting) the copy of the staged rows of lines `first`..`last`
        (or only `lines`, when some of them are not to be written) into the component's
        listings: its city's group (created by then, in this transaction), this job
        and line, the batch's time; the new rows in line order."""
        self.wait()
        ops = connection.ops
        quote = ops.quote_name
        now = connection.connection.string_literal(str(ops.adapt_datetimefield_value(timezone.now())).encode())
        content = ", ".join(f"s.{quote(name)}" for name in CONTENT_FIELDS)
        where = f"s.`line` BETWEEN {int(first)} AND {int(last)}"
        if lines is not None:
            where = f"s.`line` IN ({','.join(str(int(line)) for line in lines)})"
        sql = (
            f"{_listings_insert_head()} "
            f"SELECT {int(component_id)}, g.{quote('id')}, s.{quote('external_id')}, {content}, {int(job_id)}, "
            f"s.`line`, {now.decode()}, {now.decode()} "
            f"FROM {quote(STAGE_TABLE)} s JOIN {quote(ListingGroup._meta.db_table)} g "
            f"ON g.{quote('component_id')} = {int(component_id)} AND g.{quote('city')} = s.{quote('city')} "
            f"WHERE {where} ORDER BY s.`line` {_listings_upsert_suffix()}"
        )
        self._send(sql.encode())

    def _send(self, sql: bytes) -> None:
        self._in_flight = True  # first: whatever interrupts after this reads the result (abandon)
        try:
            with connection.wrap_database_errors:
                connection.connection.send_query(sql)
        except BaseException:
            self._in_flight = False
            raise

    def existing(self, *, component_id: int, first: int, last: int) -> dict[str, tuple]:
        """{external_id: (external_id, group_id, *CONTENT_FIELDS)} of the component's
        listings whose id is among the staged rows of lines `first`..`last`, typed like
        a `SpoolRow` (the ORM's values_list types, area_m2 as its text with 2
        decimals): one SELECT joining the stage, nothing to send per id."""
        self.wait()
        quote = connection.ops.quote_name
        columns = ", ".join(f"l.{quote(c)}" for c in ("external_id", "group_id", *CONTENT_FIELDS))
        sql = (
            f"SELECT {columns} FROM {quote(STAGE_TABLE)} s JOIN {quote(Listing._meta.db_table)} l "
            f"ON l.{quote('component_id')} = {int(component_id)} "
            f"AND l.{quote('external_id')} = s.{quote('external_id')} "
            f"WHERE s.`line` BETWEEN {int(first)} AND {int(last)}"
        )
        tags_at = 2 + CONTENT_FIELDS.index("tags")
        active_at = 2 + CONTENT_FIELDS.index("is_active")
        area_at = 2 + CONTENT_FIELDS.index("area_m2")
        found: dict[str, tuple] = {}
        with connection.cursor() as cursor:
            cursor.execute(sql)
            for row in cursor.fetchall():
                row = list(row)
                row[tags_at] = json.loads(row[tags_at])
                row[active_at] = bool(row[active_at])
                if row[area_at] is not None:
                    row[area_at] = str(row[area_at])
                found[row[0]] = tuple(row)
        return found

    def wait(self) -> None:
        """The result of the statement in flight, if any (its error raised)."""
        if not self._in_flight:
            return
        self._in_flight = False
        with connection.wrap_database_errors:
            connection.connection.read_query_result()

    def copied(self) -> int:
        """The result of the copy in flight (`merge_send`): how many staged rows its
        SELECT gave, inserted or updated alike (the server's "Records: N" of an
        `INSERT … SELECT`; its affected rows would count a row another writer
        inserted or deleted meanwhile differently)."""
        self.wait()
        info = connection.connection.info() or ""
        found = re.match(r"Records: (\d+)", info)
        if found is None:
            raise RuntimeError(f"the copy from the import's stage reported {info!r}")
        return int(found.group(1))

    def abandon(self) -> None:
        """After a failure: read what is in flight, whatever it says, so that the
        connection can be used again."""
        try:
            self.wait()
        except Exception:  # the failure being handled is the one to report
            logger.warning("the listing import's staged statement failed too", exc_info=True)

    def close(self) -> None:
        self.abandon()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TEMPORARY TABLE IF EXISTS {connection.ops.quote_name(STAGE_TABLE)}")
        except Exception:  # the table goes with the connection anyway
            logger.warning("could not drop the listing import's stage table", exc_info=True)


class Importer:
    def __init__(
        self,
        job: ImportJob,
        progress: ProgressCallback | None,
        *,
        mode: str,
        spool: Spool | None = None,
        stage: MysqlStage | None = None,
    ):
        self.job = job
        self.component = job.component
        self.progress = progress
        self.mode = mode
        self.apply = mode == APPLY
        self.spool = spool
        self.stage = stage  # MySQL/MariaDB, all or nothing: the checked rows, staged on the server
        self.on_reject: Callable[[list[RowError]], None] | None = None
        self.processed = 0
        self.created = 0
        self.updated = 0
        self.unchanged = 0
        self.rejected = 0
        self.written_to_line = 0  # the last line of the last committed batch
        self.line = 0
        self.errors: list[dict] = []
        self.preview: dict[str, list] = {"created": [], "updated": []}
        self.groups_created: list[str] = []
        self.city_groups: dict[str, int] = {}
        self.group_cities: dict[int, str] = {}  # the reverse, to show where a listing moves from
        self.seen = SeenIds()  # external id -> its first line in this file (on disk)
        self.next_position = 0
        self.max_cities = settings.LISTINGS_MAX_CITIES
        self.batch: Batch = []
        self.batch_size = min(BATCH_SIZE, CHECK_BATCH_SIZE) if mode == CHECK else BATCH_SIZE
        self.total: int | None = None

    def load(self) -> None:
        """The component's cities, and (applying) its row lock: batches of imports into
        one component run one after the other and each sees the groups the last created."""
        if self.apply:
            Component.objects.select_for_update().filter(pk=self.component.pk).values_list("pk").get()
        last = -1
        for city, group_id, position in ListingGroup.objects.filter(component=self.component).values_list(
            "city", "id", "position"
        ):
            self.city_groups[city] = group_id
            self.group_cities[group_id] = city
            last = max(last, position)
        self.next_position = max(self.next_position, last + 1)

    def reject(self, errors: list[RowError]) -> None:
        self.rejected += 1
        for error in errors:
            if len(self.errors) < MAX_STORED_ERRORS:
                self.errors.append(error.as_dict())
        if self.on_reject is not None:
            self.on_reject(errors)

    def group_id(self, city: str, line: int) -> int | None:
        group_id = self.city_groups.get(city)
        if group_id is not None:
            return group_id
        if len(self.city_groups) >= self.max_cities:
            self.reject(
                [
                    RowError(
                        line,
                        "city",
                        f"{city!r} would be city number {self.max_cities + 1}; "
                        f"a listing component holds at most {self.max_cities} cities",
                    )
                ]
            )
            return None
        if self.apply:
            group_id = ListingGroup.objects.create(component=self.component, city=city, position=self.next_position).pk
        else:
            group_id = -1 - len(self.groups_created)  # a group the import would create
        self.next_position += 1
        self.city_groups[city] = group_id
        self.group_cities[group_id] = city
        self.groups_created.append(city)
        return group_id

    # --- feeding rows ----------------------------------------------------------

    def feed(self, line: int, raw: dict[str, Any]) -> bool:
        """Check one raw row; True when it completed a batch (which was flushed)."""
        self.line = line
        self.processed += 1
        values, errors = row_parse(line, raw)
        flushed = False
        if errors or values is None:
            self.reject(errors)
        else:
            self.batch.append((line, values))
            if len(self.batch) >= self.batch_size:
                self.flush(self.batch)
                self.batch = []
                flushed = True
        if self.processed % BATCH_SIZE == 0 and self.progress:
            self.progress(self.processed, self.total)  # never inside a transaction
        return flushed

    def finish(self) -> None:
        self.flush(self.batch)
        self.batch = []
        if self.processed == 0:
            raise FileRefused("The file has a header row but no listings.")
        if self.progress:
            self.progress(self.processed, self.processed)

    def read(self, job: ImportJob) -> list[str]:
        """One pass over the stored file; returns the header warnings."""
        with open_source(job) as source:
            self.total = source.estimated_rows
            if self.progress:
                self.progress(0, self.total)
            if not self.apply:
                self.load()  # applying, each batch loads the cities under the component's lock
            try:
                for line, raw in source.rows:
                    self.feed(line, raw)
                self.finish()
                if self.stage is not None:
                    self.stage.wait()  # the last batch is staged (or its error raised)
            except BaseException:
                if self.stage is not None:
                    self.stage.abandon()  # the connection is free again for what reports the failure
                raise
            return source.warnings

    def write_spooled(self, spool: Spool, total: int) -> None:
        """Apply the rows a CHECK pass spooled (already checked: no file is read)."""
        self.total = total
        if self.progress:
            self.progress(0, total)
        if self.stage is not None:
            self._write_staged(self.stage, _write_groups(spool), total)
        else:
            for batch in _write_batches(spool):
                self._write_checked([(row[0], spooled_values(row)) for row in batch], total)
        self.processed = total
        if self.progress:
            self.progress(total, total)

    def _write_staged(self, stage: MysqlStage, batches: Iterator[list[SpooledBatch]], total: int) -> None:
        """MySQL/MariaDB: the same short transaction per batch (component lock, cities,
        existing rows, then the write), but the write is one `INSERT … SELECT` from the
        stage, sent without waiting for its result; while the server copies the rows,
        this process reads the next batch from the spool, then reads the result,
        commits, and starts the next batch's transaction."""
        # (its transaction, its last line, its row count, the rows the copy must give or
        # None when nothing was sent): only what the commit needs
        open_batch: tuple[Any, int, int, int | None] | None = None
        try:
            for batch in batches:
                if open_batch is not None:
                    finishing, open_batch = open_batch, None
                    self._staged_commit(stage, *finishing, total)
                last_line, count = batch[-1].keys[-1][0], sum(len(piece.keys) for piece in batch)
                atomic = transaction.atomic()
                atomic.__enter__()
                open_batch = (atomic, last_line, count, None)
                self.load()
                expected = self._merge_prepared(stage, batch, count)
                open_batch = (atomic, last_line, count, expected)
                del batch
            if open_batch is not None:
                finishing, open_batch = open_batch, None
                self._staged_commit(stage, *finishing, total)
        except BaseException as exc:
            if open_batch is not None:
                stage.abandon()
                atomic = open_batch[0]
                atomic.__exit__(type(exc), exc, exc.__traceback__)  # rolls the batch back
            raise

    def _staged_commit(
        self, stage: MysqlStage, atomic: Any, last_line: int, count: int, expected: int | None, total: int
    ) -> None:
        try:
            if expected is not None:
                copied = stage.copied()
                if copied != expected:  # a row to write missing from the copy: never commit that
                    raise RuntimeError(f"the copy from the import's stage gave {copied} rows, {expected} expected")
        except BaseException as exc:
            atomic.__exit__(type(exc), exc, exc.__traceback__)  # rolls the batch back
            raise
        atomic.__exit__(None, None, None)  # commits
        self.written_to_line = last_line
        self.line = last_line
        self.processed = min(self.processed + count, total)
        if self.progress:
            self.progress(self.processed, total)  # never inside a transaction

    def _merge_prepared(self, stage: MysqlStage, batch: list[SpooledBatch], count: int) -> int | None:
        """Inside the batch's transaction: cities, counts and preview against the
        existing rows, then send (not wait for) the copy of the new and changed rows
        from the stage. Returns how many rows that copy must give (every new and
        changed row, each found in the stage with its city's group), or None when
        nothing is to be written. `count`: the batch's rows.

        When none of the batch's ids exists yet and the preview of new rows is full,
        the lines and cities (the spool's keys) are all it takes: every row with a
        city group is new and written, and its rows are not unpickled (a first
        import of a large file: ~a third of its writing pass)."""
        first, last = batch[0].keys[0][0], batch[-1].keys[-1][0]
        existing = stage.existing(component_id=self.component.pk, first=first, last=last)
        if not existing and len(self.preview["created"]) >= MAX_PREVIEW:
            lines = [line for piece in batch for line, city in piece.keys if self._group_of(city, line) is not None]
            self.created += len(lines)
        else:
            rows: list[Keyed] = []
            for piece in batch:
                for row in piece.rows():
                    group_id = self._group_of(row[2], row[0])
                    if group_id is not None:  # else a city beyond the limit (added since the check): not written
                        rows.append((row[0], row[1], row[2], row[_CONTENT_AT:], group_id))
            lines = [rows[n][0] for n in self._classify(rows, existing)]
        if not lines:
            return None
        stage.merge_send(
            component_id=self.component.pk,
            job_id=self.job.pk,
            first=first,
            last=last,
            lines=None if len(lines) == count else lines,  # every row: the batch's staged lines, first to last
        )
        return len(lines)

    def _group_of(self, city: str, line: int) -> int | None:
        """The city's group id (made now when new), None for a city beyond the limit."""
        group_id = self.city_groups.get(city)
        return self.group_id(city, line) if group_id is None else group_id

    def _write_checked(self, batch: Batch, total: int) -> None:
        if not batch:
            return
        self.line = batch[-1][0]
        self.flush(batch, checked=True)
        self.processed = min(self.processed + len(batch), total)
        if self.progress:
            self.progress(self.processed, total)

    # --- batches -----------------------------------------------------------------

    def flush(self, batch: Batch, *, checked: bool = False) -> None:
        if not batch:
            return
        if self.apply:
            with transaction.atomic():
                self.load()
                self._flush(batch, checked=checked)
            self.written_to_line = batch[-1][0]
        else:
            self._flush(batch)
        if settings.DEBUG:
            reset_queries()  # DEBUG keeps every SQL string: memory would grow with the file

    def _flush(self, batch: Batch, *, checked: bool = False) -> None:
        rows: list[tuple[int, dict[str, Any], int]] = []
        known = {} if checked else self.seen.lines_of([values["external_id"] for _, values in batch])
        fresh: list[tuple[str, int]] = []
        for line, values in batch:
            ext = values["external_id"]
            if not checked:  # a spooled batch was checked for repeated ids by its CHECK pass
                first = known.get(ext)
                if first is not None:
                    self.reject([RowError(line, "external_id", f"{ext!r} already appears on row {first} of this file")])
                    continue
            group_id = self.group_id(values["city"], line)
            if group_id is None:
                continue
            if not checked:
                known[ext] = line
                fresh.append((ext, line))
            rows.append((line, values, group_id))
        if fresh:
            self.seen.record(fresh)
        if self.mode == CHECK:
            if self.spool is not None and rows:
                spooled = self.spool.add([(line, values) for line, values, _ in rows])
                if self.stage is not None:
                    self.stage.add(spooled)
            return
        existing = {
            row[0]: row
            for row in Listing.objects.filter(
                component=self.component, external_id__in=[values["external_id"] for _, values, _ in rows]
            ).values_list("external_id", "group_id", *CONTENT_FIELDS)
        }
        to_write = self._classify(
            [(line, values["external_id"], values["city"], _content(values), gid) for line, values, gid in rows],
            existing,
        )
        if to_write and self.apply:
            listings_upsert(component_id=self.component.pk, job_id=self.job.pk, rows=[rows[n] for n in to_write])

    def _classify(self, rows: list[Keyed], existing: dict[str, tuple]) -> list[int]:
        """Count the rows `(line, external_id, city, CONTENT_FIELDS values, group_id)`
        as created, updated or unchanged against `existing` ({external_id:
        (external_id, group_id, *CONTENT_FIELDS)}, typed like the rows' values), keep
        the preview, and return the indexes in `rows` of the rows to write (new and
        changed)."""
        to_write: list[int] = []
        for n, (line, ext, city, content, group_id) in enumerate(rows):
            old = existing.get(ext)
            if old is not None:
                if old[1] == group_id and old[2:] == content:
                    self.unchanged += 1
                    continue
                changes = {
                    f: [_plain(was), _plain(new)]
                    for f, was, new in zip(CONTENT_FIELDS, old[2:], content, strict=True)
                    if was != new
                }
                if old[1] != group_id:
                    changes["city"] = [self.group_cities.get(old[1]), city]
                if not changes:
                    self.unchanged += 1
                    continue
                self.updated += 1
                if len(self.preview["updated"]) < MAX_PREVIEW:
                    self.preview["updated"].append({"line": line, "external_id": ext, "changes": changes})
            else:
                self.created += 1
                if len(self.preview["created"]) < MAX_PREVIEW:
                    self.preview["created"].append(
                        {
                            "line": line,
                            "external_id": ext,
                            "city": city,
                            "title": content[_TITLE_AT],
                            "price_fen": content[_PRICE_AT],
                        }
                    )
            to_write.append(n)
        return to_write

    def close(self) -> None:
        self.seen.close()  # idempotent


def _max_params() -> int:
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        raw = connection.connection
        return raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if hasattr(raw, "getlimit") else 999
    return 65535  # MySQL's prepared-statement limit; the text protocol has none but the packet size


def _listings_insert_head() -> str:
    """`INSERT INTO listings_listing (INSERT_COLUMNS)`."""
    quote = connection.ops.quote_name
    return f"INSERT INTO {quote(Listing._meta.db_table)} ({', '.join(quote(c) for c in INSERT_COLUMNS)})"


def _listings_upsert_suffix() -> str:
    """The upsert's conflict clause on (component, external_id), updating
    UPDATE_COLUMNS: Django's own (`on_conflict_suffix_sql`, what
    `bulk_create(update_conflicts=True)` emits)."""
    return connection.ops.on_conflict_suffix_sql(
        [Listing._meta.get_field(c) for c in INSERT_COLUMNS],
        OnConflict.UPDATE,
        UPDATE_COLUMNS,
        ("component_id", "external_id"),
    )


def listings_upsert(*, component_id: int, job_id: int, rows: list[tuple[int, dict[str, Any], int]]) -> None:
    """Write checked rows `(line, values, group_id)` with one multi-row upsert on
    (component, external_id): `INSERT … ON DUPLICATE KEY UPDATE` (MySQL/MariaDB) or
    `INSERT … ON CONFLICT DO UPDATE` (SQLite), the suffix written by Django's own
    backend (`on_conflict_suffix_sql`, as `bulk_create(update_conflicts=True)` does).
    The statement is built here rather than through bulk_create: its per-value
    compilation (model instances, pre_save, get_db_prep_save per field) cost more
    than the database's work. Values are adapted by the backend's own adapters."""
    ops = connection.ops
    meta = Listing._meta
    now = ops.adapt_datetimefield_value(timezone.now())
    area = meta.get_field("area_m2")
    params: list[Any] = []
    for line, values, group_id in rows:
        params.extend(
            (
                component_id,
                group_id,
                values["external_id"],
                values["title"],
                values["district"],
                values["address"],
                values["price_fen"],
                None
                if values["area_m2"] is None
                else ops.adapt_decimalfield_value(values["area_m2"], area.max_digits, area.decimal_places),
                values["layout"],
                values["cover_image_url"],
                values["detail_url"],
                ops.adapt_json_value(values["tags"], None),
                values["sort_order"],
                values["is_active"],
                job_id,
                line,
                now,
                now,
            )
        )
    width = len(INSERT_COLUMNS)
    per_statement = max(1, _max_params() // width)
    head = _listings_insert_head() + " VALUES "
    suffix = _listings_upsert_suffix()
    row_marks = "(" + ", ".join(["%s"] * width) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            count = min(per_statement, len(rows) - start)
            sql = head + ", ".join([row_marks] * count) + " " + suffix
            cursor.execute(sql, params[start * width : (start + count) * width])


def _write_batches(spool: Spool) -> Iterator[list[SpoolRow]]:
    """The spooled batches regrouped into write batches of WRITE_BATCH_SIZE rows."""
    for group in _write_groups(spool):
        yield [row for spooled in group for row in spooled.rows()]


def _write_groups(spool: Spool) -> Iterator[list[SpooledBatch]]:
    """The spooled batches grouped into write batches of WRITE_BATCH_SIZE rows (their
    rows left on disk until asked for)."""
    pending: list[SpooledBatch] = []
    size = 0
    for spooled in spool.spooled():
        pending.append(spooled)
        size += len(spooled.keys)
        if size >= WRITE_BATCH_SIZE:
            yield pending
            pending, size = [], 0
    if pending:
        yield pending


# --- MySQL/MariaDB: the pipelined writing pass ----------------------------------
# The statement text is built with the connection's own escaping
# (mysql_real_escape_string through mysqlclient's `string_literal`, for the
# connection's character set) on values `row_parse` already typed and bounded:
# strings are quoted and escaped, numbers are Python ints or 2-decimal Decimals,
# booleans 1/0, tags a JSON text (as Django's JSONField adapter writes it).


# A batch's VALUES text is escaped in one call (`core.db.mysql_escape_marked`; its
# stand-ins are control characters the checks refuse in every text).
_QUOTED_PER_ROW = 9  # external_id, city, title, district, address, layout, two URLs, tags

# The stage: a spooled row's columns, in `SpoolRow` order (line first, its key).
STAGE_TABLE = "listings_import_stage"


def _mysql_stage_ddl() -> str:
    """The stage table's CREATE TEMPORARY TABLE: the listing's own column types (and
    the group's for the city), every text in utf8mb4_bin (compared byte for byte, as
    the listing's key and the group's city are: migration 0002), JSON as its text."""
    quote = connection.ops.quote_name
    columns = [f"{quote('line')} int unsigned NOT NULL PRIMARY KEY"]
    for name in SPOOL_KEYS:
        field = (ListingGroup if name == "city" else Listing)._meta.get_field(name)
        assert isinstance(field, Field)
        kind = field.get_internal_type()
        if kind in ("CharField", "TextField", "JSONField", "URLField"):
            db_type = "longtext" if kind in ("TextField", "JSONField") else f"varchar({field.max_length})"
            db_type += " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
        else:
            db_type = str(field.db_type(connection))
        columns.append(f"{quote(str(field.column))} {db_type} {'NULL' if field.null else 'NOT NULL'}")
    return f"CREATE TEMPORARY TABLE {quote(STAGE_TABLE)} ({', '.join(columns)}) ENGINE=InnoDB"


def _mysql_stage_rows(batch: list[SpoolRow], lit: Callable[[bytes], bytes]) -> list[bytes]:
    """Each spooled row's VALUES text for the stage (the row's values in `SpoolRow`
    order, between the parentheses). The batch's text is built as one str with
    MYSQL_QUOTE where a quote goes and MYSQL_GAP between rows and escaped in one call
    (`core.db.mysql_escape_marked`): one call per batch instead of nine per row. A
    batch where a value holds a stand-in is escaped value by value with `lit` (the
    connection's `string_literal`)."""
    if not batch:
        return []
    q = MYSQL_QUOTE
    text = MYSQL_GAP.join(
        [
            f"{line:d},{q}{ext}{q},{q}{city}{q},{q}{title}{q},{q}{district}{q},{q}{address}{q},{price:d},"
            f"{'NULL' if area is None else area},{q}{layout}{q},{q}{cover}{q},{q}{detail}{q},"
            f"{q}{_tags_json(tags)}{q},{order:d},{1 if active else 0}"
            for (
                line,
                ext,
                city,
                title,
                district,
                address,
                price,
                area,
                layout,
                cover,
                detail,
                tags,
                order,
                active,
            ) in batch
        ]
    )
    escaped = mysql_escape_marked(text, quotes=2 * _QUOTED_PER_ROW * len(batch), gaps=len(batch) - 1)
    if escaped is None:
        return [_mysql_stage_row(row, lit) for row in batch]
    return escaped.split(MYSQL_GAP.encode())


def _tags_json(tags: list[str]) -> str:
    """`json.dumps(tags)` for a list of str (what Django's JSONField adapter writes),
    without the encoder's per-call set-up."""
    return "[" + ", ".join(map(encode_basestring_ascii, tags)) + "]"


def _mysql_stage_row(row: SpoolRow, lit: Callable[[bytes], bytes]) -> bytes:
    """One row's stage VALUES text like `_mysql_stage_rows`, its strings escaped one by
    one (a value holding one of `core.db.mysql_escape_marked`'s stand-ins)."""
    line, ext, city, title, district, address, price, area, layout, cover, detail, tags, order, active = row
    return b",".join(
        (
            b"%d" % line,
            lit(ext.encode()),
            lit(city.encode()),
            lit(title.encode()),
            lit(district.encode()),
            lit(address.encode()),
            b"%d" % price,
            b"NULL" if area is None else str(area).encode(),
            lit(layout.encode()),
            lit(cover.encode()),
            lit(detail.encode()),
            lit(json.dumps(tags).encode()),
            b"%d" % order,
            b"1" if active else b"0",
        )
    )


def _mysql_max_statement_bytes() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@max_allowed_packet")
        (packet,) = cursor.fetchone()
    return max(1, min(int(packet) - 64 * 1024, MYSQL_STATEMENT_MAX_BYTES))


def open_source(job: ImportJob) -> RowSource:
    """The job's stored file as a RowSource (a context manager; closes the file too)."""
    return RowSource(
        job.file.storage.open(str(job.file.name), "rb"),  # type: ignore[arg-type]
        job.original_name,
        max_unpacked_bytes=settings.LISTINGS_XLSX_MAX_UNPACKED_BYTES,
        close_stream=True,
    )


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value
