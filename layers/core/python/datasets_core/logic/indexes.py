"""Which columns a dataset indexes, and in which slot.

A dataset has five index slots (the rows table's GSIs ``idx1``..``idx5``). Adding an index
gives the column a free slot with status ``building``; the maintenance worker backfills the
existing rows and marks it ``ready`` (only ready indexes serve queries; new writes fill
the slot at once). Dropping an index keeps its slot ``retired`` until the worker has
removed the old entries, so a later index never inherits stale keys.
"""

from __future__ import annotations

from typing import Any

from .. import suggest
from ..config import settings
from ..errors import InvalidBody
from ..store.encoding import INDEXABLE


def describe(column: dict[str, Any]) -> dict[str, Any]:
    shown = {"name": column["name"], "type": column["type"], "indexed": bool(column.get("slot"))}
    if column.get("slot"):
        shown["index_status"] = column.get("index_status", "ready")
    return shown


def with_indexes(columns: list[dict[str, Any]], names: list[str], *, status: str) -> list[dict[str, Any]]:
    """``columns`` with an index on each of ``names`` (existing indexes are kept as they are)."""
    by_name = {column["name"]: column for column in columns}
    taken = {int(c["slot"]) for c in columns if c.get("slot")} | {
        int(c["retired_slot"]) for c in columns if c.get("retired_slot")
    }
    updated = {column["name"]: dict(column) for column in columns}
    for name in dict.fromkeys(names):
        column = by_name.get(name)
        if column is None:
            raise InvalidBody(
                *suggest.unknown_column(name, by_name, " (only existing columns can be indexed)")
            )
        if column["type"] not in INDEXABLE:
            raise InvalidBody(f"Column '{name}' holds {column['type']} values, which cannot be indexed.")
        if column.get("slot"):
            continue
        free = [slot for slot in range(1, settings().max_indexes + 1) if slot not in taken]
        if not free:
            raise InvalidBody(
                f"A dataset may index at most {settings().max_indexes} columns"
                " (a dropped index frees its slot once its entries are removed).",
                {"column": name, "max_indexes": settings().max_indexes},
            )
        taken.add(free[0])
        updated[name].update(slot=free[0], index_status=status, indexed=True)
    return [updated[column["name"]] for column in columns]


def without_indexes(columns: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    by_name = {column["name"]: column for column in columns}
    updated = {column["name"]: dict(column) for column in columns}
    for name in dict.fromkeys(names):
        column = by_name.get(name)
        if column is None or not column.get("slot"):
            raise InvalidBody(f"Column '{name}' is not indexed.", {"column": name})
        entry = updated[name]
        entry["retired_slot"] = entry.pop("slot")
        entry.pop("index_status", None)
        entry["indexed"] = False
    return [updated[column["name"]] for column in columns]
