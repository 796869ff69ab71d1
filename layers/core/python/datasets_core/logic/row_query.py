"""Reading rows: ``GET .../rows`` (filters, search, order, paging, distinct) and bulk ``where`` writes.

The query string becomes a ``RowsQuery`` once (``query.grammar``); the planner picks an
access path (``query.planner``); the rows it yields are filtered, ordered and paged here
with the same in-memory semantics (``query.evaluate``) whatever the path, so every plan
returns exactly the same answer.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from .. import auth
from ..errors import InvalidBody, PayloadTooLarge
from ..query import grammar, planner, where
from ..query.ast import METADATA_FIELDS, RowsQuery
from ..rowids import parse_row_id, row_index_of
from ..store import changes as change_store
from ..store import datasets as dataset_store
from ..store import rows as row_store
from ..timeutil import now_iso
from . import schema
from .rows import diff, user_fields

# A bulk write by condition runs inside one API call (29 s behind API Gateway); beyond this
# many matching rows the caller is asked to narrow the condition (or use a replace import).
MAX_BULK_MATCHES = 10_000
_WRITERS = 8


def query(
    principal: auth.Principal, dataset_id: str, params: dict[str, list[str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    dataset = dataset_store.get(principal.workspace, dataset_id)
    parsed = grammar.parse_rows_query(params, dataset.get("columns", []))
    result = planner.run(dataset, parsed)
    meta: dict[str, Any] = {
        "plan": result.plan,
        "items_read": result.items_read,
        "limit": parsed.page.limit,
        "offset": parsed.page.offset,
        "next_cursor": result.next_cursor,
    }
    if parsed.distinct is not None:
        values = result.distinct or []
        window = values[parsed.page.offset : parsed.page.offset + parsed.page.limit]
        return {"column": parsed.distinct, "values": window, "total_unique": len(values)}, meta
    shown = returned_columns(dataset, parsed)
    rows = [project(row, parsed, shown) for row in result.rows]
    return {"rows": rows, "total": result.total, "columns": shown}, meta


def returned_columns(dataset: dict[str, Any], parsed: RowsQuery) -> list[str]:
    """The user columns a response carries: the selected ones, or all in schema order."""
    if parsed.select is None:
        return [column["name"] for column in dataset.get("columns", [])]
    return [name for name in parsed.select if name not in METADATA_FIELDS]


def project(row: dict[str, Any], parsed: RowsQuery, shown: list[str]) -> dict[str, Any]:
    if parsed.select is None:
        return row
    picked = {"id": row["id"]}
    for name in parsed.select:
        picked[name] = row.get(name)
    return picked


# --- bulk writes by condition ----------------------------------------------------------------
def update_where(principal: auth.Principal, dataset_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or "set" not in body or not set(body) <= {"where", "set"}:
        raise InvalidBody('The body must be {"where": {...}, "set": {...}} ("where" is optional).')
    if not isinstance(body["set"], dict) or not body["set"]:
        raise InvalidBody('"set" must be a non-empty object of column values.', {"field": "set"})
    raw_set = (
        schema.split_metadata(body["set"], None) if body["set"].keys() & set(METADATA_FIELDS) else body["set"]
    )

    def attempt(dataset: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
        filters = where.parse_where(body.get("where"), dataset.get("columns", []), required=False)
        checked = schema.check_rows(dataset, [raw_set], label="set")
        matches = _matching_items(dataset, filters)
        _refuse_oversize(dataset, matches, checked.rows[0])  # before the schema grows or any row changes
        return schema.grow(principal.workspace, dataset, checked), checked.rows[0], matches

    dataset, new_fields, matches = schema.with_schema(principal.workspace, dataset_id, attempt)
    at = now_iso()

    def write(item: dict[str, Any]) -> dict[str, Any] | None:
        before = row_store.from_item(dataset, item)
        merged = {**user_fields(before), **new_fields}
        stored = row_store.to_item(
            dataset, before["row_index"], before["id"], merged, before["created_at"], at
        )
        if row_store.replace_if_unchanged(stored, expected=item) is None:
            return None  # deleted or rewritten meanwhile: that newer write wins
        old, new = user_fields(before), merged
        return change_store.entry(dataset["id"], before["id"], "update", principal.key_id, at, diff(old, new))

    entries = [entry for entry in _in_parallel(write, matches) if entry is not None]
    change_store.record(entries)
    return {"updated": len(entries)}


def _refuse_oversize(
    dataset: dict[str, Any], items: list[dict[str, Any]], new_fields: dict[str, Any]
) -> None:
    for item in items:
        row = row_store.from_item(dataset, item)
        problem = row_store.oversize_problem({**user_fields(row), **new_fields}.values())
        if problem:
            raise InvalidBody(
                f"Row {row['id']}: {problem}.", {"row_id": row["id"], "limit_bytes": row_store.MAX_ROW_BYTES}
            )


def delete_where(principal: auth.Principal, dataset_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or len(body) != 1 or not body.keys() <= {"row_ids", "where"}:
        raise InvalidBody('The body must be {"row_ids": [...]} or {"where": {...}}.')
    dataset = dataset_store.get(principal.workspace, dataset_id)
    if "where" in body:
        filters = where.parse_where(body["where"], dataset.get("columns", []), required=True)
        targets = [(item, item["id"]) for item in _matching_items(dataset, filters)]
    else:
        row_ids = body["row_ids"]
        if not isinstance(row_ids, list) or not all(isinstance(row_id, str) for row_id in row_ids):
            raise InvalidBody('"row_ids" must be an array of row id strings.', {"field": "row_ids"})
        if len(row_ids) > 1000:
            raise PayloadTooLarge("At most 1000 row ids per request.", {"limit": 1000, "rows": len(row_ids)})
        targets = []
        for row_id in dict.fromkeys(str(parse_row_id(row_id)) for row_id in row_ids):
            row_index = row_index_of(row_id)
            if row_index is not None:
                targets.append((row_store.row_key(dataset, row_index), row_id))
    at = now_iso()

    def remove(target: tuple[dict[str, Any], str]) -> dict[str, Any] | Exception | None:
        key, row_id = target
        try:
            gone = row_store.delete_row(key, expected_id=row_id)
        except Exception as exc:  # noqa: BLE001 - the rows that did go must still be counted
            return exc
        if gone is None:
            return None
        before = user_fields(row_store.from_item(dataset, gone))
        return change_store.entry(dataset["id"], row_id, "delete", principal.key_id, at, diff(before, {}))

    outcomes = _in_parallel(remove, targets)
    entries = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    dataset_store.add_row_count(principal.workspace, dataset["id"], -len(entries), workspace_too=True)
    change_store.record(entries)
    failures = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    if failures:
        if not isinstance(failures[0], ClientError):
            raise failures[0]
        # DynamoDB kept refusing some deletes (after botocore's retries): the others landed.
        landed = [
            target[0] for target, outcome in zip(targets, outcomes, strict=True) if isinstance(outcome, dict)
        ]
        raise row_store.WriteIncomplete(
            row_store.delete_requests(landed),
            f"The storage service is busy; {len(entries)} rows were deleted (details.written), "
            f"{len(failures)} could not be. Retry the request to delete the rest.",
        ) from failures[0]
    return {"deleted": len(entries)}


def _matching_items(dataset: dict[str, Any], filters: Any) -> list[dict[str, Any]]:
    items = planner.matching_items(dataset, filters)
    if len(items) > MAX_BULK_MATCHES:
        raise InvalidBody(
            f"The condition matches {len(items)} rows; a bulk write changes at most {MAX_BULK_MATCHES} "
            "rows per request. Narrow 'where', or replace the data with an import (mode=replace).",
            {"matched": len(items), "limit": MAX_BULK_MATCHES},
        )
    return items


def _in_parallel(work: Any, targets: list[Any]) -> list[Any]:
    """Run independent single-item writes concurrently (DynamoDB has no conditional batch)."""
    if len(targets) <= 1:
        return [work(target) for target in targets]
    row_store.rows()  # create the shared table handle before threads use its client
    with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
        return list(pool.map(work, targets))
