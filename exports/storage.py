"""Where partitions go (EXPORT_URL) and how one is replaced whole (contract §9).

`EXPORT_URL` is a local folder or `s3://bucket/prefix` (endpoint and keys from
EXPORT_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, EXPORT_S3_REGION),
both through pyarrow's filesystems.

Writing a partition (`partition_write`), in this order:
1. delete `_SUCCESS`: from here on readers skip the partition;
2. write the new parts under `{dataset}/_tmp/dt=…/hour=…/{run}/` (readers ignore
   `_`-prefixed folders);
3. delete the partition's old parts, move the new ones to `part-{n}.parquet`;
4. write `_SUCCESS` last, then drop the temporary folder.
A crash anywhere before 4 leaves no `_SUCCESS` (never a mix of old and new under
one), and the next run starts again from 1. Old parts go only after the new ones
are fully written.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from pyarrow import fs as pafs

SUCCESS = "_SUCCESS"
ROW_GROUP_ROWS = 512 * 1024
# Called after the new parts are in place and before `_SUCCESS` (a seam for the
# crash test, which kills a real process there); None in production.
before_success = None


@dataclass(frozen=True)
class Destination:
    filesystem: pafs.FileSystem
    base: str  # path inside the filesystem, no trailing slash
    url: str  # EXPORT_URL as configured, for display


@dataclass(frozen=True)
class Written:
    rows: int
    bytes: int
    files: int
    location: str


def destination(url: str | None = None) -> Destination:
    url = (url or settings.EXPORT_URL).rstrip("/")
    if url.startswith("s3://"):
        parts = urlsplit(url)
        endpoint = urlsplit(settings.EXPORT_S3_ENDPOINT_URL) if settings.EXPORT_S3_ENDPOINT_URL else None
        s3 = pafs.S3FileSystem(
            access_key=settings.AWS_ACCESS_KEY_ID or None,
            secret_key=settings.AWS_SECRET_ACCESS_KEY or None,
            region=settings.EXPORT_S3_REGION,
            endpoint_override=(endpoint.netloc + endpoint.path).rstrip("/") if endpoint else None,
            scheme=endpoint.scheme if endpoint else "https",
            connect_timeout=10,
            request_timeout=60,
        )
        return Destination(s3, f"{parts.netloc}{parts.path}".rstrip("/"), url)
    path = url[len("file://") :] if url.startswith("file://") else url
    local = pafs.LocalFileSystem()
    local.create_dir(path, recursive=True)
    return Destination(local, path, url)


def partition_path(dataset: str, hour: datetime) -> str:
    return f"{dataset}/dt={hour:%Y-%m-%d}/hour={hour:%H}"


def _files(fs: pafs.FileSystem, folder: str) -> list[pafs.FileInfo]:
    selector = pafs.FileSelector(folder, allow_not_found=True, recursive=True)
    return [info for info in fs.get_file_info(selector) if info.type == pafs.FileType.File]


def _delete_tree(fs: pafs.FileSystem, folder: str) -> None:
    for info in _files(fs, folder):
        fs.delete_file(info.path)
    if fs.get_file_info(folder).type == pafs.FileType.Directory:
        fs.delete_dir(folder)


def _row_groups(batches: Iterable[pa.RecordBatch | pa.Table], schema: pa.Schema):
    """Small batches gathered into tables of ~ROW_GROUP_ROWS rows (one row group each:
    fewer, larger row groups write faster, compress better and read faster)."""
    pending: list[pa.Table] = []
    rows = 0
    for batch in batches:
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch], schema=schema)
        pending.append(table)
        rows += table.num_rows
        if rows >= ROW_GROUP_ROWS:
            yield pa.concat_tables(pending)
            pending, rows = [], 0
    if pending:
        yield pa.concat_tables(pending)


def partition_write(
    *, dataset: str, hour: datetime, schema: pa.Schema, batches: Iterable[pa.RecordBatch | pa.Table], dest=None
) -> Written:
    dest = dest or destination()
    fs = dest.filesystem
    final = f"{dest.base}/{partition_path(dataset, hour)}"
    scratch = f"{dest.base}/{dataset}/_tmp/dt={hour:%Y-%m-%d}/hour={hour:%H}"
    run = f"{scratch}/{uuid.uuid4().hex}"
    part_rows = settings.EXPORT_PART_ROWS

    # 1. invisible to readers from now on
    if fs.get_file_info(f"{final}/{SUCCESS}").type == pafs.FileType.File:
        fs.delete_file(f"{final}/{SUCCESS}")
    _delete_tree(fs, scratch)  # leftovers of a killed run
    fs.create_dir(run, recursive=True)

    # 2. the new parts, in the scratch folder
    names: list[str] = []
    rows = 0
    writer = None
    in_part = 0

    def open_part():
        name = f"part-{len(names)}.parquet"
        names.append(name)
        return pq.ParquetWriter(f"{run}/{name}", schema, filesystem=fs, compression="zstd")

    try:
        for table in _row_groups(batches, schema):
            offset = 0
            while offset < table.num_rows:
                if writer is None:
                    writer, in_part = open_part(), 0
                take = min(part_rows - in_part, table.num_rows - offset)
                writer.write_table(table.slice(offset, take))
                offset += take
                in_part += take
                rows += take
                if in_part >= part_rows:
                    writer.close()
                    writer = None
        if writer is None and not names:
            writer = open_part()  # an empty hour still gets one part with the schema
    finally:
        if writer is not None:
            writer.close()

    # 3. swap: old parts out, new parts in
    for info in _files(fs, final):
        fs.delete_file(info.path)
    fs.create_dir(final, recursive=True)
    size = 0
    for name in names:
        fs.move(f"{run}/{name}", f"{final}/{name}")
        size += fs.get_file_info(f"{final}/{name}").size or 0
    if before_success is not None:
        before_success()

    # 4. complete
    with fs.open_output_stream(f"{final}/{SUCCESS}") as out:
        out.write(json.dumps({"rows": rows, "files": len(names), "bytes": size}).encode())
    _delete_tree(fs, scratch)
    return Written(rows=rows, bytes=size, files=len(names), location=f"{dest.url}/{partition_path(dataset, hour)}")
