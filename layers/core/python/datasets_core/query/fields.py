"""What a query can name: a dataset's columns, its metadata fields, and JSON paths into
``json`` columns, with the value kind each is compared as.

A JSON path ``meta->plan`` yields the JSON value at that path (kind ``JSON_VALUE``: numbers
compare as numbers, strings as text); ``meta->>plan`` yields its text (kind ``string``). A
missing key, an index past the end, or a JSON ``null`` is SQL null. Paths are never served by
an index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from msgspec import Struct

from .. import suggest, values
from ..columns import ColumnType
from ..errors import InvalidQuery
from ..records import Column
from .ast import Ref

# The kind of a ``->`` path's value; every other kind is a ColumnType.
JSON_VALUE = "json_value"
Kind = str  # a ColumnType (a StrEnum) or JSON_VALUE


class Field(Struct, frozen=True):
    """A resolved reference: how to read its value from a row and what kind it is."""

    name: str
    kind: Kind
    column: Column | None = None  # the user column (None: a metadata field)
    operators: frozenset[str] | None = None  # canonical operator names allowed; None: by kind
    path: tuple[str, ...] = ()
    as_text: bool = False

    @property
    def metadata(self) -> bool:
        return self.column is None

    @property
    def type(self) -> Kind:
        return self.kind

    @property
    def indexable(self) -> bool:
        """Whether an index range can serve a filter on it (a plain, indexed, ready column)."""
        return not self.path and self.column is not None and self.column.index_ready

    def value(self, row: Mapping[str, Any]) -> Any:
        """This field's value in a row in API form (None for null)."""
        found = row.get(self.name)
        if not self.path or found is None:
            return found
        return json_at(found, self.path, self.as_text)


METADATA = {
    "id": Field("id", ColumnType.STRING, operators=frozenset({"eq", "neq", "in"})),
    "row_index": Field("row_index", ColumnType.NUMBER),
    "created_at": Field("created_at", ColumnType.DATETIME),
    "updated_at": Field("updated_at", ColumnType.DATETIME),
}


def fields(columns: Iterable[Column]) -> dict[str, Field]:
    """Every plain field of a dataset by name: the metadata fields, then its columns in order."""
    known = dict(METADATA)
    for column in columns:
        known[column.name] = Field(column.name, column.type, column)
    return known


def field_of(name: str, known: Mapping[str, Field]) -> Field:
    """The field called ``name``, or ``InvalidQuery`` naming the unknown column (and near ones)."""
    found = known.get(name)
    if found is None:
        raise unknown_column(name, known)
    return found


def unknown_column(name: str, known: Mapping[str, Field]) -> InvalidQuery:
    """An unknown column, with the closest names (or the dataset's columns) to help."""
    return InvalidQuery(*suggest.unknown_column(name, user_names(known)))


def user_names(known: Mapping[str, Field]) -> list[str]:
    """The dataset's column names, then the metadata fields: what a mistyped name is compared to."""
    return [name for name, field in known.items() if not field.metadata] + list(METADATA)


def resolve(ref: Ref, known: Mapping[str, Field]) -> Field:
    """The field a reference names; a path needs a json column."""
    base = field_of(ref.name, known)
    if not ref.path:
        return base
    if base.kind is not ColumnType.JSON:
        raise InvalidQuery(
            f"'{ref}' follows a JSON path into '{ref.name}', which is a {base.kind} column; "
            "paths (-> and ->>) apply to json columns only.",
            {"column": ref.name, "path": str(ref)},
        )
    kind = ColumnType.STRING if ref.as_text else JSON_VALUE
    return Field(ref.name, kind, base.column, path=ref.path, as_text=ref.as_text)


def json_at(value: Any, path: tuple[str, ...], as_text: bool) -> Any:
    """The value at ``path`` inside a JSON value (objects by key, arrays by a digit key)."""
    current = value
    for key in path:
        if isinstance(current, dict):
            current = current.get(key)
        elif isinstance(current, list) and key.isdigit() and int(key) < len(current):
            current = current[int(key)]
        else:
            return None
        if current is None:
            return None
    if as_text and not isinstance(current, str):
        return json_text(current)
    return current


def json_text(value: Any) -> str:
    """The text of a JSON value the way ``->>`` gives it: strings bare, others as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return values.format_number(value)
    return values.text_of(value, ColumnType.JSON)
