"""``GET /v1/datasets/{id}/export`` (SPEC §8): every row of a query, in its order, as one file
(CSV, JSON Lines or Parquet) in S3, answered with a presigned download.

The file is written batch by batch and uploaded while it is written (``upload.py``: parts
of boto3's managed multipart transfer go out as they fill), so memory holds one batch of
output and a few parts, never the whole file, and nothing is kept on the function's disk:
only the query's positions (8 bytes a row) and the replica's columns, which are in memory
anyway, grow with the dataset.

What a file holds is exactly what ``GET .../rows`` answers for the same query, page after
page: the same columns (``id`` and the selected keys, or the whole row), the same values
(numbers exact, datetimes as the API writes them, JSON as compact text in CSV), in the same
order. CSV: RFC 4180, a header row, null as an empty field (an empty text is ``""``).
Parquet: each column in its replica type (numbers as int64 or decimal128, never binary floats).
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from msgspec import Struct

from .. import aws, jsonutil
from ..config import settings
from ..query import answer
from ..query.ast import Ref, RowsQuery
from ..query.columnar import ColumnData
from .table import ReplicaTable
from .upload import upload_while_writing

FORMATS = {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}
BATCH_ROWS = 50_000
URL_SECONDS = 3600


class Output(Struct, frozen=True):
    """One column of the file: its header and the field it reads."""

    key: str
    ref: Ref


def outputs(table: ReplicaTable, query: RowsQuery) -> list[Output]:
    """The file's columns, as a rows answer's rows carry them."""
    if query.select is None:
        names = ["id", "row_index", "created_at", "updated_at", *table.dataset.column_names]
        return [Output(name, Ref(name)) for name in names]
    chosen = [Output("id", Ref("id"))]
    chosen += [Output(item.key, item.ref) for item in query.select if item.key != "id"]
    return chosen


def export(table: ReplicaTable, query: RowsQuery, in_order: pa.Array, file_format: str) -> dict[str, Any]:
    """Write the rows at ``in_order`` to S3; what ``GET .../export`` answers."""
    columns = outputs(table, query)
    dataset = table.dataset
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{dataset.name}-{stamp}.{file_format}"
    key = (
        f"{settings().export_prefix}ws={dataset.workspace}/ds={dataset.id}/{uuid.uuid4().hex}/"
        f"{_safe(dataset.name)}-{stamp}.{file_format}"
    )
    s3 = aws.client("s3")
    bucket = settings().replica_bucket
    size = upload_while_writing(
        lambda sink: _WRITERS[file_format](sink, table, query, columns, in_order),
        s3,
        bucket,
        key,
        {"ContentType": FORMATS[file_format]},
    )
    url = s3.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{_safe(name)}"',
        },
        ExpiresIn=URL_SECONDS,
    )
    expires = datetime.fromtimestamp(time.time() + URL_SECONDS, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"url": url, "expires_at": expires, "format": file_format, "rows": len(in_order), "bytes": size}


def _safe(name: str) -> str:
    """A file name's characters that every client and header accepts."""
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in name)


def _batches(in_order: pa.Array) -> Iterator[pa.Array]:
    for start in range(0, len(in_order), BATCH_ROWS):
        yield in_order.slice(start, BATCH_ROWS)


# --- CSV ----------------------------------------------------------------------------------------
def _csv(
    sink: io.RawIOBase, table: ReplicaTable, query: RowsQuery, columns: list[Output], in_order: pa.Array
) -> None:
    # Each column's API text (the view ``contains`` reads: exact numbers, datetimes with Z,
    # JSON as compact text), batch by batch; Arrow's writer quotes only what needs quotes.
    views = [table.column(output.ref) for output in columns]
    schema = pa.schema([(output.key, pa.large_string()) for output in columns])
    options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
    with pacsv.CSVWriter(sink, schema, write_options=options) as writer:
        for batch in _batches(in_order):
            arrays = [view.text.take(batch).cast(pa.large_string()) for view in views]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
        if not len(in_order):
            writer.write_table(schema.empty_table())


# --- JSON Lines ------------------------------------------------------------------------------------
def _jsonl(
    sink: io.RawIOBase, table: ReplicaTable, query: RowsQuery, columns: list[Output], in_order: pa.Array
) -> None:
    project = answer.projector(table.dataset, query)
    for batch in _batches(in_order):
        lines = [jsonutil.dumps(project(row)) for row in table.rows(batch)]
        sink.write(("\n".join(lines) + "\n").encode("utf-8"))


# --- Parquet --------------------------------------------------------------------------------------
def _parquet(
    sink: io.RawIOBase, table: ReplicaTable, query: RowsQuery, columns: list[Output], in_order: pa.Array
) -> None:
    views = [table.column(output.ref) for output in columns]
    arrays = [_typed(view) for view in views]
    schema = pa.schema([(output.key, array.type) for output, array in zip(columns, arrays, strict=True)])
    with pq.ParquetWriter(sink, schema) as writer:
        for batch in _batches(in_order):
            writer.write_table(pa.Table.from_arrays([array.take(batch) for array in arrays], schema=schema))
        if not len(in_order):
            writer.write_table(schema.empty_table())


def _typed(view: ColumnData) -> pa.Array:
    """A column in its replica type; fields Arrow holds as text (JSON paths, very wide
    numbers) as their API text."""
    if view.native:
        return view.array
    return view.text


_WRITERS = {"csv": _csv, "jsonl": _jsonl, "parquet": _parquet}
