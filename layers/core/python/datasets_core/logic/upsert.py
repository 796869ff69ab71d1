"""``POST .../rows`` with ``"upsert_on": "<column>"``: merge rows that match on an indexed column.

Each distinct incoming value is looked up on the column's index and through its uniqueness
item (``store.uniques``, read strongly consistently): rows holding the value are updated
(fields not sent are kept); a value no row holds gets a new row, written in one transaction
with the value's uniqueness item. Concurrent upserts of one new value therefore create one
row — the others find its item and update it — however the index lags. Several incoming rows
with the same value merge in request order. All rows are checked before anything is written,
and the new rows are counted against the plan before any existing row changes.
"""

from __future__ import annotations

from typing import Any

from .. import auth
from ..errors import Conflict, DatasetNotFound, InvalidBody
from ..query import planner
from ..query.ast import Filter, Ref
from ..records import Column, Dataset
from ..rowids import new_row_id
from ..store import changelog, encoding, uniques, workspaces
from ..store import changes as change_store
from ..store import datasets as dataset_store
from ..store import rows as row_store
from ..timeutil import now_iso
from . import rows as row_logic
from . import schema

_ATTEMPTS = 5


def upsert(
    principal: auth.Principal, dataset_id: str, raw_rows: list[Any], column_name: str
) -> dict[str, Any]:
    for position, raw in enumerate(raw_rows):
        if isinstance(raw, dict):
            row_logic.refuse_metadata(raw, position)

    def attempt(dataset: Dataset) -> tuple[Dataset, schema.Checked]:
        row_logic.refuse_while_replacing(dataset)
        if column_name not in dataset.ready_indexes:
            raise InvalidBody(
                f"upsert_on must name an indexed column whose index is ready; '{column_name}' is not.",
                {"field": "upsert_on", "column": column_name},
            )
        checked = schema.check_rows(dataset, raw_rows)
        for position, fields in enumerate(checked.rows):  # before the schema grows
            if fields.get(column_name) is None:
                raise InvalidBody(
                    f"Row {position} has no value for the upsert column '{column_name}'.",
                    {"row": position, "column": column_name},
                )
        return schema.grow(dataset, checked), checked

    dataset, checked = schema.with_schema(principal.workspace, dataset_id, attempt)
    column = dataset.ready_indexes[column_name]
    merged: dict[bytes, dict[str, Any]] = {}
    order: list[bytes] = []
    for fields in checked.rows:
        key = encoding.encode(fields[column_name], column.type)
        merged[key] = {**merged.get(key, {}), **fields}
        order.append(key)
    existing = {key: _holders(dataset, column, fields[column_name]) for key, fields in merged.items()}
    fresh = [key for key, found in existing.items() if not found]
    at = now_iso()
    results: dict[bytes, list[dict[str, Any]]] = {}
    entries: list[dict[str, Any]] = []
    updated_before: list[dict[str, Any]] = []
    # The new rows count against the plan before any matching row changes: a write over the
    # limit changes nothing.
    workspaces.reserve_rows(principal.workspace, len(fresh))
    created: list[dict[str, Any]] = []
    try:
        start = (
            dataset_store.allocate_row_indexes(principal.workspace, dataset.id, len(fresh)) if fresh else 0
        )
        changelog.record(
            dataset,
            changelog.spans_of(
                [int(item["sk"]) for found in existing.values() for item in found]
                + list(range(start, start + len(fresh)))
            ),
        )
        for key, found in existing.items():
            if found:
                results[key] = _update_all(
                    dataset, found, merged[key], column, at, entries, updated_before, principal
                )
        for offset, key in enumerate(fresh):
            row_index = start + offset
            item = row_store.to_item(dataset, row_index, new_row_id(row_index), merged[key], at, at)
            if _create(dataset, column, merged[key][column_name], item):
                created.append(item)
                row = row_store.from_item(dataset, item)
                results[key] = [row]
                entries.append(
                    change_store.entry(
                        dataset.id,
                        row["id"],
                        "insert",
                        principal.key_id,
                        at,
                        row_logic.diff({}, row_logic.user_fields(row)),
                    )
                )
            else:  # another request created the value's row first: update that one
                holders = _holders(dataset, column, merged[key][column_name])
                results[key] = _update_all(
                    dataset, holders, merged[key], column, at, entries, updated_before, principal
                )
    except BaseException:
        # Rows created before the failure are rows like any other: counted, the rest given back.
        workspaces.release_rows(principal.workspace, len(fresh) - len(created))
        try:
            dataset_store.add_row_count(
                principal.workspace, dataset.id, len(created), generation=dataset.generation
            )
        except (DatasetNotFound, dataset_store.ReplacedMeanwhile):
            workspaces.release_rows(principal.workspace, len(created))  # their purge removes them
        change_store.record(entries)
        raise
    workspaces.release_rows(principal.workspace, len(fresh) - len(created))
    try:
        dataset_store.add_row_count(
            principal.workspace,
            dataset.id,
            len(created),
            unless_replacing=True,
            generation=dataset.generation,
        )
    except (DatasetNotFound, dataset_store.ReplaceInProgress, dataset_store.ReplacedMeanwhile):
        row_store.remove_new(created)  # deleted or being replaced meanwhile: keep nothing new
        workspaces.release_rows(principal.workspace, len(created))
        raise
    change_store.record(entries)
    if updated_before:
        row_logic.confirm_written(dataset, updated_before, at)
    rows = [row for key in dict.fromkeys(order) for row in results.get(key, [])]
    return {"inserted": len(created), "updated": len(updated_before), "rows": rows}


def _holders(dataset: Dataset, column: Column, value: Any) -> list[dict[str, Any]]:
    """Stored items of the rows holding ``value``: the index's matches and the row the value's
    uniqueness item names (read strongly consistently, so a just-created row is found)."""
    matches = planner.matching_items(dataset, (Filter(Ref(column.name), "eq", value),)) or []
    by_index = {int(item["sk"]): item for item in matches}
    named = uniques.lookup(dataset, column, value)
    if named is not None and named not in by_index:
        item = row_store.get(dataset, named)
        if item is not None and row_store.from_item(dataset, item).get(column.name) == value:
            by_index[named] = item
    return [by_index[index] for index in sorted(by_index)]


def _create(dataset: Dataset, column: Column, value: Any, item: dict[str, Any]) -> bool:
    """Write a new row with its uniqueness item; False when the value's row exists already."""
    for _ in range(_ATTEMPTS):
        named = uniques.lookup(dataset, column, value)
        stale = None
        if named is not None:
            current = row_store.get(dataset, named)
            if current is not None and row_store.from_item(dataset, current).get(column.name) == value:
                return False
            stale = named  # the named row is gone or holds another value now
        if uniques.create_with_row(dataset, column, value, item, stale):
            return True
    raise Conflict("The upsert value is being written by other requests; retry.")


def _update_all(
    dataset: Dataset,
    found: list[dict[str, Any]],
    fields: dict[str, Any],
    column: Column,
    at: str,
    entries: list[dict[str, Any]],
    updated_before: list[dict[str, Any]],
    principal: auth.Principal,
) -> list[dict[str, Any]]:
    rows = []
    for item in found:
        for _ in range(_ATTEMPTS):
            before = row_store.update_fields(
                dataset, item, fields, at, unchanged={column.attr: item.get(column.attr)}
            )
            if before is not None:
                break
            fresh = row_store.get(dataset, int(item["sk"]))
            if (
                fresh is None
                or fresh["id"] != item["id"]
                or row_store.from_item(dataset, fresh).get(column.name) != fields[column.name]
            ):
                before = None  # deleted, or no longer holding the value: not a match any more
                break
            item = fresh
        else:
            raise Conflict("A matching row was changed by another request meanwhile; retry.")
        if before is None:
            continue
        updated_before.append(before)
        old = row_store.from_item(dataset, before)
        after = {**old, **fields, "updated_at": at}
        rows.append(after)
        entries.append(
            change_store.entry(
                dataset.id,
                after["id"],
                "update",
                principal.key_id,
                at,
                row_logic.diff(row_logic.user_fields(old), row_logic.user_fields(after)),
            )
        )
    return rows
