"""Which columns a dataset indexes, and in which slot.

A dataset has five index slots (the rows table's GSIs ``idx1``..``idx5``). Adding an index
gives the column a free slot with status ``building``; the maintenance worker backfills the
existing rows and marks it ``ready`` (only ready indexes serve queries; new writes fill
the slot at once). Dropping an index keeps its slot ``retired`` until the worker has
removed the old entries, so a later index never inherits stale keys.
"""

from __future__ import annotations

from msgspec.structs import replace

from .. import suggest
from ..config import settings
from ..errors import InvalidBody
from ..records import Column
from ..store.encoding import INDEXABLE


def with_indexes(
    columns: tuple[Column, ...] | list[Column], names: list[str], *, status: str
) -> list[Column]:
    """``columns`` with an index on each of ``names`` (existing indexes are kept as they are)."""
    by_name = {column.name: column for column in columns}
    taken = {c.slot for c in columns if c.slot} | {c.retired_slot for c in columns if c.retired_slot}
    updated = dict(by_name)
    for name in dict.fromkeys(names):
        column = by_name.get(name)
        if column is None:
            raise InvalidBody(
                *suggest.unknown_column(name, by_name, " (only existing columns can be indexed)")
            )
        if column.type not in INDEXABLE:
            raise InvalidBody(f"Column '{name}' holds {column.type} values, which cannot be indexed.")
        if column.slot is not None:
            continue
        free = [slot for slot in range(1, settings().max_indexes + 1) if slot not in taken]
        if not free:
            raise InvalidBody(
                f"A dataset may index at most {settings().max_indexes} columns"
                " (a dropped index frees its slot once its entries are removed).",
                {"column": name, "max_indexes": settings().max_indexes},
            )
        taken.add(free[0])
        updated[name] = replace(column, slot=free[0], index_status=status)
    return [updated[column.name] for column in columns]


def without_indexes(columns: tuple[Column, ...] | list[Column], names: list[str]) -> list[Column]:
    by_name = {column.name: column for column in columns}
    updated = dict(by_name)
    for name in dict.fromkeys(names):
        column = by_name.get(name)
        if column is None or column.slot is None:
            raise InvalidBody(f"Column '{name}' is not indexed.", {"column": name})
        updated[name] = replace(column, slot=None, index_status=None, retired_slot=column.slot)
    return [updated[column.name] for column in columns]
