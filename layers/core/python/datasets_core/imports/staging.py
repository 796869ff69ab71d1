"""An import's validated rows between validation and writing, and the snapshot parts it writes.

Validation converts the whole file once and keeps its good rows as *staging parts* — Parquet
files of at most ``IMPORT_PART_ROWS`` rows in the replica bucket, under
``<replica prefix>_staging/ws=<workspace>/imp=<import id>/part-<k>.parquet`` (engines
reading the replica's Hive layout skip folders starting with ``_``; leftovers expire by
lifecycle). Each part is one chunk of
the write stage: one message, one invocation, written in parallel with the others. Chunks
never parse the dropped file again, so how a CSV could be split (quoted newlines, gzip that
cannot seek) does not matter: the file is read once, in order, by one reader.

A staging part holds ``row`` (the 0-based data row of the file) and one column per target,
``t0``, ``t1`` ..., with the stored values of the conversion (numbers exact: int64, decimal128
or their exact text; JSON as its text; dates and datetimes as their stored text).

A chunk also writes the rows it imports as one part of the dataset's new snapshot version
(``replica.layout``), in the replica's own layout, so the import's rows never have to be read
back from DynamoDB to reach the replica.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .. import aws, values
from ..columns import ColumnType
from ..config import settings
from ..records import Dataset, Part
from ..replica import arrow, layout

STAGING_FOLDER = "_staging/"


def prefix(workspace: str, import_id: str) -> str:
    return f"{settings().replica_prefix}{STAGING_FOLDER}ws={workspace}/imp={import_id}/"


def key(workspace: str, import_id: str, number: int) -> str:
    return f"{prefix(workspace, import_id)}part-{number:05d}.parquet"


def _stored_array(column_type: ColumnType, cells: list[Any]) -> pa.Array:
    if column_type is ColumnType.NUMBER:
        return arrow.number_array(cells)
    if column_type is ColumnType.BOOLEAN:
        return pa.array(cells, pa.bool_())
    return pa.array(cells, pa.string())


def _upload(table: pa.Table, object_key: str) -> int:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    body = sink.getvalue()
    aws.client("s3").put_object(Bucket=settings().replica_bucket, Key=object_key, Body=body)
    return len(body)


def write(
    workspace: str,
    import_id: str,
    number: int,
    targets: list[dict[str, Any]],
    rows: list[int],
    columns: list[list[Any]],
) -> None:
    """Keep a staging part: the file rows ``rows`` and their stored values per target."""
    arrays: dict[str, pa.Array] = {"row": pa.array(rows, pa.int64())}
    for position, (target, cells) in enumerate(zip(targets, columns, strict=True)):
        arrays[f"t{position}"] = _stored_array(ColumnType(target["type"]), cells)
    _upload(pa.table(arrays), key(workspace, import_id, number))


def read(
    workspace: str, import_id: str, number: int, targets: list[dict[str, Any]]
) -> tuple[list[int], list[list[Any]]]:
    """A staging part back: file rows and stored values per target (as ``write`` took them)."""
    body = aws.client("s3").get_object(
        Bucket=settings().replica_bucket, Key=key(workspace, import_id, number)
    )
    table = pq.read_table(io.BytesIO(body["Body"].read()))
    rows = table.column("row").to_pylist()
    columns = []
    for position, target in enumerate(targets):
        array = table.column(f"t{position}").combine_chunks()
        cells = array.to_pylist()
        if ColumnType(target["type"]) is ColumnType.NUMBER:
            if pa.types.is_string(array.type):
                cells = [None if cell is None else Decimal(cell) for cell in cells]
            elif pa.types.is_decimal(array.type):
                stored = values.stored_number
                cells = [None if cell is None else stored(cell) for cell in cells]
        columns.append(cells)
    return rows, columns


def write_snapshot_part(
    dataset: Dataset,
    version: int,
    number: int,
    targets: list[dict[str, Any]],
    indexes: list[int],
    ids: list[str],
    at: str,
    columns: list[list[Any]],
) -> Part:
    """The chunk's rows as part ``number`` of snapshot ``version`` (the replica's layout)."""
    arrays: dict[str, pa.Array] = {
        "row_index": pa.array(indexes, pa.int64()),
        "id": pa.array(ids, pa.string()),
        "created_at": pa.array([at] * len(indexes), pa.string()),
        "updated_at": pa.array([at] * len(indexes), pa.string()),
    }
    for target, cells in zip(targets, columns, strict=True):
        column = dataset.column(target["name"])
        if column is not None:
            arrays[column.name] = arrow.stored_array(column, cells)
    table = arrow.conform(pa.table(arrays), dataset)
    object_key = layout.part_key(dataset, version, number)
    size = _upload(table, object_key)
    return Part(object_key, len(indexes), size, min(indexes), max(indexes))


def remove(workspace: str, import_id: str) -> None:
    """Delete every staging part of an import (it finished, or failed)."""
    layout.delete_prefix(prefix(workspace, import_id))
