"""``POST .../rows`` with ``"upsert_on": "<column>"``: merge rows that match on an indexed column.

Each incoming row is looked up by its value of the column on that column's index (one
index Query per distinct value, so the cost follows the request, not the dataset). Rows
that match existing rows update them (fields not sent are kept); the others are inserted.
Several incoming rows with the same value merge in request order. All rows are checked
before anything is written.
"""

from __future__ import annotations

from typing import Any

from .. import auth
from ..errors import Conflict, InvalidBody
from ..query import index_plan, planner
from ..query.ast import Filter
from ..store import changes as change_store
from ..store import encoding, workspaces
from ..store import rows as row_store
from ..timeutil import now_iso
from . import rows as row_logic
from . import schema


def upsert(principal: auth.Principal, dataset_id: str, raw_rows: list[Any], column: str) -> dict[str, Any]:
    for position, raw in enumerate(raw_rows):
        if isinstance(raw, dict):
            row_logic.refuse_metadata(raw, position)

    def attempt(dataset: dict[str, Any]) -> tuple[dict[str, Any], schema.Checked]:
        if column not in index_plan.ready_columns(dataset):
            raise InvalidBody(
                f"upsert_on must name an indexed column whose index is ready; '{column}' is not.",
                {"field": "upsert_on", "column": column},
            )
        checked = schema.check_rows(dataset, raw_rows)
        for position, fields in enumerate(checked.rows):  # before the schema grows
            if fields.get(column) is None:
                raise InvalidBody(
                    f"Row {position} has no value for the upsert column '{column}'.",
                    {"row": position, "column": column},
                )
        return schema.grow(principal.workspace, dataset, checked), checked

    dataset, checked = schema.with_schema(principal.workspace, dataset_id, attempt)
    kind = index_plan.ready_columns(dataset)[column]["type"]
    merged: dict[bytes, dict[str, Any]] = {}
    order: list[bytes] = []
    for fields in checked.rows:
        key = encoding.encode(fields[column], kind)
        merged[key] = {**merged.get(key, {}), **fields}
        order.append(key)

    matches = {
        key: planner.matching_items(dataset, (Filter(column, "eq", fields[column]),))
        for key, fields in merged.items()
    }
    inserts = [key for key, existing in matches.items() if not existing]
    # The new rows count against the plan before any matching row changes: a write over the
    # limit changes nothing.
    if inserts:
        workspaces.reserve_rows(principal.workspace, len(inserts))
    results: dict[bytes, list[dict[str, Any]]] = {}
    updated = 0
    at = now_iso()
    entries = []
    try:
        for key, existing in matches.items():
            if existing:
                results[key] = []
            for item in existing:
                before = row_store.from_item(dataset, item)
                after_fields = {**row_logic.user_fields(before), **merged[key]}
                stored = row_store.to_item(
                    dataset, before["row_index"], before["id"], after_fields, before["created_at"], at
                )
                if row_store.replace_if_unchanged(stored, expected=item) is None:
                    raise Conflict("A matching row was changed by another request meanwhile; retry.")
                after = row_store.from_item(dataset, stored)
                results[key].append(after)
                updated += 1
                changed = row_logic.diff(row_logic.user_fields(before), row_logic.user_fields(after))
                entries.append(
                    change_store.entry(dataset["id"], after["id"], "update", principal.key_id, at, changed)
                )
    except BaseException:
        workspaces.release_rows(principal.workspace, len(inserts))
        raise
    finally:
        change_store.record(entries)  # the updates that landed keep their trail
    created = (
        row_logic.write_new_rows(principal, dataset, [merged[key] for key in inserts], reserved=True)
        if inserts
        else []
    )
    for key, row in zip(inserts, created, strict=True):
        results[key] = [row]
    rows = [row for key in dict.fromkeys(order) for row in results[key]]
    return {"inserted": len(created), "updated": updated, "rows": rows}
