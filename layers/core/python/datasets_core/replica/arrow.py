"""Rows ↔ Arrow: how a dataset's rows are laid out in the replica's Parquet files and tables.

Columns: ``row_index`` (int64), ``id``, ``created_at``, ``updated_at`` (text, as the API writes
them) and every user column under its name:

- string → string; boolean → bool; date → date32; datetime → timestamp[us, UTC];
  json → its compact JSON text;
- number → int64 when every value is an integer that fits, else decimal128(38, s) with the
  largest scale among the values, else (digits spanning more than 38 places, which
  decimal128 cannot hold) the exact text of each number. Never a binary float: the replica is
  as exact as DynamoDB.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .. import jsonutil, values
from ..columns import ColumnType
from ..records import Column, Dataset

METADATA = ("row_index", "id", "created_at", "updated_at")
_METADATA_TYPES = {
    "row_index": pa.int64(),
    "id": pa.string(),
    "created_at": pa.string(),
    "updated_at": pa.string(),
}
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_INT64 = (-(2**63), 2**63 - 1)
_MAX_PRECISION = 38


def number_array(numbers: Sequence[int | Decimal | None]) -> pa.Array:
    """The narrowest exact Arrow array of API numbers (see the module docstring)."""
    present = [number for number in numbers if number is not None]
    if all(isinstance(number, int) and _INT64[0] <= number <= _INT64[1] for number in present):
        return pa.array(numbers, pa.int64())
    scale = 0
    whole = 1
    for number in present:
        sign, digits, exponent = (Decimal(number) if isinstance(number, int) else number).as_tuple()
        assert isinstance(exponent, int)
        scale = max(scale, -exponent)
        whole = max(whole, len(digits) + exponent)
    if scale + whole <= _MAX_PRECISION:
        return pa.array(numbers, pa.decimal128(_MAX_PRECISION, scale))
    return pa.array([None if n is None else str(values.stored_number(n)) for n in numbers], pa.string())


def unify_numbers(arrays: Sequence[pa.Array]) -> list[pa.Array]:
    """Number arrays of several parts in one type (the narrowest that holds them all)."""
    types = {array.type for array in arrays if array.null_count < len(array)}
    if len(types) <= 1:
        target = next(iter(types)) if types else pa.int64()
    elif any(pa.types.is_string(kind) for kind in types):
        target = pa.string()
    else:
        scale = max((kind.scale for kind in types if pa.types.is_decimal(kind)), default=0)
        whole = max(_whole_digits(array) for array in arrays)
        target = pa.decimal128(_MAX_PRECISION, scale) if scale + whole <= _MAX_PRECISION else pa.string()
    if pa.types.is_string(target):
        return [_exact_text(array) for array in arrays]
    return [array if array.type == target else array.cast(target) for array in arrays]


def _whole_digits(array: pa.Array) -> int:
    if array.null_count == len(array):
        return 1
    extremes = pc.min_max(array).as_py()
    largest = max(abs(Decimal(extremes["min"])), abs(Decimal(extremes["max"])))
    return max(len(str(int(largest))), 1)


def _exact_text(array: pa.Array) -> pa.Array:
    if pa.types.is_string(array.type):
        return array
    return pa.array(
        [None if n is None else str(values.stored_number(n)) for n in array.to_pylist()], pa.string()
    )


def column_array(column: Column, cells: Sequence[Any]) -> pa.Array:
    """An Arrow array of one column from API-form values."""
    kind = column.type
    if kind is ColumnType.NUMBER:
        return number_array(cells)
    if kind is ColumnType.BOOLEAN:
        return pa.array(cells, pa.bool_())
    if kind is ColumnType.DATE:
        return pa.array(cells, pa.string()).cast(pa.date32())
    if kind is ColumnType.DATETIME:
        return pa.array(cells, pa.string()).cast(_TIMESTAMP)
    if kind is ColumnType.JSON:
        return pa.array([None if cell is None else jsonutil.dumps(cell) for cell in cells], pa.string())
    return pa.array(cells, pa.string())


def stored_array(column: Column, cells: Sequence[Any]) -> pa.Array:
    """An Arrow array of one column from stored values (``values.to_store``: JSON as text)."""
    if column.type is ColumnType.JSON:
        return pa.array(cells, pa.string())
    if column.type is ColumnType.NUMBER:
        return number_array(
            [None if cell is None else values.from_store(cell, ColumnType.NUMBER) for cell in cells]
        )
    return column_array(column, cells)


def rows_table(dataset: Dataset, rows: Iterable[dict[str, Any]]) -> pa.Table:
    """An Arrow table of API-form rows (the delta of a replica, rows of an import)."""
    rows = list(rows)
    arrays = {name: pa.array([row[name] for row in rows], _METADATA_TYPES[name]) for name in METADATA}
    for column in dataset.columns:
        arrays[column.name] = column_array(column, [row.get(column.name) for row in rows])
    return pa.table(arrays)


def empty_table(dataset: Dataset) -> pa.Table:
    return rows_table(dataset, [])


def conform(table: pa.Table, dataset: Dataset) -> pa.Table:
    """``table`` with exactly the dataset's columns (a missing one all null), metadata first."""
    arrays: dict[str, pa.Array] = {}
    for name in METADATA:
        arrays[name] = table.column(name).combine_chunks()
    for column in dataset.columns:
        if column.name in table.column_names:
            arrays[column.name] = table.column(column.name).combine_chunks()
        else:
            arrays[column.name] = column_array(column, [None] * table.num_rows)
    return pa.table(arrays)


def concat(tables: Sequence[pa.Table], dataset: Dataset) -> pa.Table:
    """Tables of the same dataset in one (number columns unified to one exact type)."""
    conformed = [conform(table, dataset) for table in tables] or [empty_table(dataset)]
    columns: dict[str, pa.Array] = {}
    for name in conformed[0].column_names:
        parts = [table.column(name).combine_chunks() for table in conformed]
        column = dataset.column(name)
        if column is not None and column.type is ColumnType.NUMBER:
            parts = unify_numbers(parts)
        elif len({part.type for part in parts}) > 1:
            parts = [part.cast(parts[0].type) for part in parts]
        columns[name] = pa.concat_arrays(parts) if len(parts) > 1 else parts[0]
    return pa.table(columns)


def to_python(array: pa.Array, column: Column | None) -> list[Any]:
    """API-form values of an array (numbers exact, datetimes as text, json parsed)."""
    if column is None:
        return array.to_pylist()
    kind = column.type
    cells = array.to_pylist()
    if kind is ColumnType.NUMBER:
        return [None if cell is None else values.from_store(cell, kind) for cell in cells]
    if kind is ColumnType.DATETIME:
        return [
            None if cell is None else values.format_datetime(cell) if isinstance(cell, datetime) else cell
            for cell in cells
        ]
    if kind is ColumnType.DATE:
        return [
            None if cell is None else cell.isoformat() if isinstance(cell, date) else cell for cell in cells
        ]
    if kind is ColumnType.JSON:
        return [None if cell is None else jsonutil.loads(cell) for cell in cells]
    return cells


def take_rows(table: pa.Table, indices: Sequence[int] | pa.Array, dataset: Dataset) -> list[dict[str, Any]]:
    """API-form rows (metadata first, then every column) of ``indices`` of ``table``."""
    picked = (
        table.take(pa.array(indices, pa.int64()))
        if not isinstance(indices, pa.Array)
        else table.take(indices)
    )
    columns: dict[str, list[Any]] = {}
    for name in picked.column_names:
        columns[name] = to_python(picked.column(name).combine_chunks(), dataset.column(name))
    return (
        [dict(zip(columns, cells, strict=True)) for cells in zip(*columns.values(), strict=True)]
        if columns
        else []
    )
