"""A dataset's columns: checking incoming fields against them and growing them.

The first non-null value written to an unknown field defines its column's type; later
values must fit it. A field whose values are all null creates no column yet (a null is an
absent attribute either way). Every check happens before anything is written, so a bad
value rejects the whole request, naming its row and column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from msgspec import Struct, field

from .. import values
from ..columns import RESERVED_COLUMNS, ColumnType, column_name_problem, normal_name
from ..config import settings
from ..errors import Conflict, InvalidBody
from ..records import Column, Dataset
from ..store import datasets as dataset_store
from ..store import rows as row_store

T = TypeVar("T")
_SCHEMA_RETRIES = 3


class Checked(Struct):
    """Normalised fields per row, and the columns they add to the dataset."""

    rows: list[dict[str, Any]]
    new_columns: list[Column] = field(default_factory=list)


def check_rows(
    dataset: Dataset,
    raw_rows: list[Any],
    *,
    label: str = "Row",
    types: Mapping[str, ColumnType] | None = None,
) -> Checked:
    """Normalise every field of every row for its column, inferring types of new columns.

    Metadata fields must have been taken out by the caller (they are refused here). Field
    names are taken in Unicode NFC (``columns.normal_name``). ``label`` names a row in messages
    ("Row 3", or "set" for a bulk update). ``types`` gives the types of new columns whose values
    do not say it themselves (CSV cells are all text).
    """
    new_types: dict[str, str] = {}
    checked: list[dict[str, Any]] = []
    for position, raw in enumerate(raw_rows):
        where = f"{label} {position}" if len(raw_rows) > 1 or label == "Row" else label
        if not isinstance(raw, dict):
            raise InvalidBody(f"{where} is not a JSON object.", {"row": position})
        fields: dict[str, Any] = {}
        for written, value in raw.items():
            name = normal_name(written)
            problem = column_name_problem(name)
            if problem:
                raise InvalidBody(f"{where}: invalid column name '{name}': {problem}.", _at(position, name))
            if name in fields:
                raise InvalidBody(
                    f"{where}: two fields name the column '{name}' (one written in another Unicode form).",
                    _at(position, name),
                )
            known = dataset.column(name)
            column_type = known.type if known is not None else new_types.get(name)
            if column_type is None and types and name in types and value is not None:
                column_type = new_types[name] = ColumnType(types[name]).value
            if column_type is None and value is not None:
                inferred = values.infer_type(value)
                if inferred is not None:
                    column_type = new_types[name] = inferred.value
            try:
                fields[name] = values.normalize(value, column_type) if column_type else None
            except values.ValueProblem as exc:
                raise InvalidBody(
                    f"{where}, column '{name}' ({column_type}): {exc}.",
                    {**_at(position, name), "type": column_type},
                ) from exc
        problem = row_store.oversize_problem(fields.values())
        if problem:
            raise InvalidBody(
                f"{where}: {problem}.", {"row": position, "limit_bytes": row_store.MAX_ROW_BYTES}
            )
        checked.append(fields)
    total = len(dataset.columns) + len(new_types)
    if total > settings().max_columns:
        raise InvalidBody(
            f"A dataset has at most {settings().max_columns} columns; this write would make it {total}.",
            {"max_columns": settings().max_columns, "new_columns": sorted(new_types)},
        )
    new_columns = [
        Column(name, ColumnType(column_type), f"c{dataset.next_column + offset}")
        for offset, (name, column_type) in enumerate(new_types.items())
    ]
    # A null makes no column: a field that is null in every row and names no column (now or
    # after this write) is no value at all, and no write below must name a column that is not.
    checked = [
        {name: value for name, value in fields.items() if dataset.column(name) or name in new_types}
        for fields in checked
    ]
    return Checked(checked, new_columns)


def _at(position: int, name: str) -> dict[str, Any]:
    return {"row": position, "column": name}


def split_metadata(raw: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The user fields of ``raw``; metadata fields may only repeat the row's current values."""
    user_fields = {name: value for name, value in raw.items() if name not in RESERVED_COLUMNS}
    for name in RESERVED_COLUMNS & raw.keys():
        if current is None:
            raise InvalidBody(f"'{name}' is set by the API and cannot be written.", {"field": name})
        if raw[name] != current.get(name):
            raise InvalidBody(f"'{name}' is immutable and cannot be changed.", {"field": name})
    return user_fields


def grow(dataset: Dataset, checked: Checked) -> Dataset:
    """The dataset with ``checked.new_columns`` stored (``Conflict`` if the schema moved meanwhile)."""
    if not checked.new_columns:
        return dataset
    columns = [*dataset.columns, *checked.new_columns]
    return dataset_store.save_columns(dataset, columns, dataset.next_column + len(checked.new_columns))


def with_schema(workspace: str, dataset_id: str, attempt: Callable[[Dataset], T]) -> T:
    """Run ``attempt(dataset)`` on a fresh read, again if a concurrent schema change raced it."""
    for remaining in range(_SCHEMA_RETRIES, 0, -1):
        dataset = dataset_store.get(workspace, dataset_id)
        try:
            return attempt(dataset)
        except Conflict:
            if remaining == 1:
                raise
    raise AssertionError("unreachable")
