"""The shape of a rows answer (SPEC §5): which columns it lists and how ``select`` projects rows.

Shared by every plan, so an index page and a replica page look exactly alike.
"""

from __future__ import annotations

from typing import Any

from ..records import Dataset
from .ast import METADATA_FIELDS, RowsQuery
from .fields import fields, resolve


def returned_columns(dataset: Dataset, query: RowsQuery) -> list[str]:
    """The user columns (result keys) a response carries: the selected ones, or all of them."""
    if query.aggregates:
        return [item.key for item in query.select or ()] + [aggregate.key for aggregate in query.aggregates]
    if query.select is None:
        return dataset.column_names
    return [
        item.key
        for item in query.select
        if item.ref.path or item.ref.name not in METADATA_FIELDS or item.alias
    ]


def projector(dataset: Dataset, query: RowsQuery) -> Any:
    """A function turning a full API-form row into the row the query selects."""
    if query.select is None:
        return lambda row: row
    known = fields(dataset.columns)
    readers = [(item.key, resolve(item.ref, known).value) for item in query.select]

    def project(row: dict[str, Any]) -> dict[str, Any]:
        picked = {"id": row["id"]}
        for key, read in readers:
            picked[key] = read(row)
        return picked

    return project
