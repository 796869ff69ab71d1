"""SPEC §7 type mapping: Arrow (Parquet) types to column types, and type detection for text and JSON.

Parquet / Arrow:

| Arrow type                                    | column type                          |
| --------------------------------------------- | ------------------------------------ |
| int8..int64, uint8..uint64, float16/32/64     | number (NaN / ±Inf rejected per row) |
| decimal128 / decimal256                       | number                               |
| string, large_string, string_view, dictionary | string (dictionaries are decoded)    |
| bool                                          | boolean                              |
| date32, date64                                | date                                 |
| timestamp (any unit, with or without zone)    | datetime, in UTC (naive = UTC)       |
| time32, time64                                | string (``HH:MM:SS[.ffffff]``)       |
| list, large_list, fixed_size_list, struct, map| json                                 |
| null (a column with no value at all)          | no column until a value arrives      |
| binary, large_binary, fixed_size_binary       | rejected: the import fails, naming it|

Text (CSV cells) and JSON Lines: a new column's type is decided by the whole file, by majority
(``TextTypes`` / ``JsonTypes``): a column of numbers with a few odd values is a number column
whose odd values are bad rows. An explicit ``types`` option overrides the decision.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pyarrow as pa

from .. import values
from ..models import ColumnType
from .text_types import TextTypes, text_fits

__all__ = ["JsonTypes", "Kind", "TextTypes", "fits", "natural_type", "text_fits"]


class Kind(StrEnum):
    """What an Arrow column holds, before it meets a column type."""

    INT = "int"
    FLOAT = "float"
    DECIMAL = "decimal"
    BOOL = "bool"
    STRING = "string"
    DATE = "date"
    TIMESTAMP = "timestamp"
    TIME = "time"
    NESTED = "nested"
    NULL = "null"


_NATURAL = {
    Kind.INT: ColumnType.NUMBER,
    Kind.FLOAT: ColumnType.NUMBER,
    Kind.DECIMAL: ColumnType.NUMBER,
    Kind.BOOL: ColumnType.BOOLEAN,
    Kind.STRING: ColumnType.STRING,
    Kind.DATE: ColumnType.DATE,
    Kind.TIMESTAMP: ColumnType.DATETIME,
    Kind.TIME: ColumnType.STRING,
    Kind.NESTED: ColumnType.JSON,
}


class Unsupported(ValueError):
    """An Arrow type no column can hold; the message names the type and what to do."""


def kind_of(arrow_type: pa.DataType) -> Kind:
    """The kind of an Arrow type, or ``Unsupported`` (binary columns and other exotic types)."""
    t = pa.types
    if t.is_dictionary(arrow_type):
        return kind_of(arrow_type.value_type)
    if t.is_integer(arrow_type):
        return Kind.INT
    if t.is_floating(arrow_type):
        return Kind.FLOAT
    if t.is_decimal(arrow_type):
        return Kind.DECIMAL
    if t.is_boolean(arrow_type):
        return Kind.BOOL
    if t.is_string(arrow_type) or t.is_large_string(arrow_type) or _is(arrow_type, "is_string_view"):
        return Kind.STRING
    if t.is_date(arrow_type):
        return Kind.DATE
    if t.is_timestamp(arrow_type):
        return Kind.TIMESTAMP
    if t.is_time(arrow_type):
        return Kind.TIME
    if (
        t.is_list(arrow_type)
        or t.is_large_list(arrow_type)
        or t.is_fixed_size_list(arrow_type)
        or _is(arrow_type, "is_list_view")
        or _is(arrow_type, "is_large_list_view")
        or t.is_struct(arrow_type)
        or t.is_map(arrow_type)
    ):
        return Kind.NESTED
    if t.is_null(arrow_type):
        return Kind.NULL
    if (
        t.is_binary(arrow_type)
        or t.is_large_binary(arrow_type)
        or t.is_fixed_size_binary(arrow_type)
        or _is(arrow_type, "is_binary_view")
    ):
        raise Unsupported(
            f"binary data ({arrow_type}) cannot be imported: no column type holds raw bytes; "
            "drop the column or store it as text (for example base64)"
        )
    raise Unsupported(f"the Parquet type {arrow_type} is not supported")


def _is(arrow_type: pa.DataType, predicate: str) -> bool:
    check = getattr(pa.types, predicate, None)
    return bool(check and check(arrow_type))


def natural_type(kind: Kind) -> ColumnType | None:
    """The column type a new column of this kind gets (None: all-null, no column yet)."""
    return _NATURAL.get(kind)


def fits(kind: Kind, column_type: ColumnType) -> bool:
    """Whether values of ``kind`` can go into an existing column of ``column_type``.

    Strings fit every type: each one is then parsed as text (as CSV cells are), so a bad
    value is a bad row, not a bad file.
    """
    return kind in (Kind.NULL, Kind.STRING) or _NATURAL.get(kind) is column_type


_JSON_KINDS = (ColumnType.BOOLEAN, ColumnType.NUMBER, ColumnType.STRING, ColumnType.JSON)


class JsonTypes:
    """Majority typing of one JSON Lines column: a kind (boolean, number, string, object/array)
    held by more than half of its non-null values wins, and strings of which more than half are
    dates (or datetimes) make a date (datetime) column; without a majority the most frequent kind
    wins (ties: the kind seen first). Values of another kind are bad rows."""

    __slots__ = ("counts", "dates", "datetimes", "first", "seen")

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.seen = int(state.get("seen", 0))
        self.counts = {kind: int(state.get("counts", {}).get(kind.value, 0)) for kind in _JSON_KINDS}
        self.dates = int(state.get("dates", 0))
        self.datetimes = int(state.get("datetimes", 0))
        first = state.get("first")
        self.first: ColumnType | None = ColumnType(first) if first else None

    def add(self, value: object) -> None:
        if value is None:
            return
        try:
            inferred = values.infer_type(value)
        except values.ValueProblem:
            return  # reported as a bad row by the conversion
        if inferred is None:
            return
        self.seen += 1
        if inferred is ColumnType.DATE:
            self.dates += 1
        elif inferred is ColumnType.DATETIME:
            self.datetimes += 1
        kind = ColumnType.STRING if inferred in (ColumnType.DATE, ColumnType.DATETIME) else inferred
        self.counts[kind] += 1
        if self.first is None:
            self.first = kind

    def result(self) -> ColumnType | None:
        if not self.seen:
            return None
        if self.dates * 2 > self.seen:
            return ColumnType.DATE
        if self.datetimes * 2 > self.seen:
            return ColumnType.DATETIME
        most = max(self.counts.values())
        winners = [kind for kind, count in self.counts.items() if count == most]
        return self.first if self.first in winners else winners[0]

    def state(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "counts": {kind.value: count for kind, count in self.counts.items()},
            "dates": self.dates,
            "datetimes": self.datetimes,
            "first": self.first.value if self.first else None,
        }
