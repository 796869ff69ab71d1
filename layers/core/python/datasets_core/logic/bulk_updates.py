"""``PATCH .../rows``: by condition (``{"where", "set"}``, ``bulk_where.update_where``) or row by
row (``{"rows": [{"id": ..., <fields>}, ...]}``, each row its own values — SPEC §5 extension).

Row by row, all or nothing:

1. Everything is checked before anything is written: every entry's id (not a UUID: 400
   ``invalid_row_id``; not a row of the dataset: 404 ``row_not_found``, naming the entry), its
   values against the columns (new columns are inferred as for inserts), immutable metadata,
   the size of the row it makes. Entries naming one row apply cumulatively, in order (the last
   value of a field wins), as the reference document's bulk update does.
2. The change log names every row, then each row is updated in place with its own fields
   only, as ``PATCH .../rows/{id}`` does: a concurrent change to another column is kept, one
   to the same column is ordered by DynamoDB (the last writer wins). The only condition is that
   the row still exists, so a concurrent writer never makes a row be skipped.
3. If an update fails (the row was deleted meanwhile, DynamoDB kept refusing), the rows already
   updated are put back: each column this request changed returns to its value before, but only
   while it still holds what this request wrote (``update_fields(..., unchanged=...)``), so a
   later writer's value is never undone; ``updated_at`` returns too when nobody else wrote the
   row meanwhile. The audit trail records exactly the rows that stay changed; row counts never
   move (an update adds and removes no row).
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.exceptions import ClientError
from msgspec import Struct, field

from .. import auth
from ..columns import RESERVED_COLUMNS
from ..config import settings
from ..errors import InvalidBody, InvalidRowId, PayloadTooLarge, RowNotFound
from ..records import Dataset
from ..rowids import parse_row_id, row_index_of
from ..store import changelog
from ..store import changes as change_store
from ..store import rows as row_store
from ..timeutil import now_iso
from . import bulk_where, schema
from .rows import confirm_written, diff, put_back, refuse_while_replacing, user_fields


def update(principal: auth.Principal, dataset_id: str, body: Any) -> dict[str, Any]:
    """``PATCH .../rows``: ``{"rows": [...]}`` row by row, else ``{"where", "set"}``."""
    if isinstance(body, dict) and "rows" in body:
        if set(body) != {"rows"}:
            raise InvalidBody(
                '"rows" updates listed rows by id and cannot be combined with '
                f"{', '.join(sorted(set(body) - {'rows'}))}; "
                'to update by condition send {"where": {...}, "set": {...}}.',
                {"fields": sorted(body)},
            )
        return update_each(principal, dataset_id, body["rows"])
    return bulk_where.update_where(principal, dataset_id, body)


class _Target(Struct):
    """One row to update: its stored item as read, and the fields the request sets on it."""

    row_id: str
    position: int  # the first entry naming it
    item: dict[str, Any]
    changes: dict[str, Any] = field(default_factory=dict)


class _Gone(Exception):
    """The row was deleted between the check and its update."""


def update_each(principal: auth.Principal, dataset_id: str, raw_rows: Any) -> dict[str, Any]:
    entries = _entries(raw_rows)

    def attempt(dataset: Dataset) -> tuple[Dataset, list[_Target]]:
        refuse_while_replacing(dataset)
        found = _stored(dataset, [row_id for row_id, _ in entries])
        targets: dict[str, _Target] = {}
        fields = []
        for position, (row_id, raw) in enumerate(entries):
            item = found.get(row_id)
            if item is None:
                raise _not_found(row_id, position)
            target = targets.setdefault(row_id, _Target(row_id, position, item))
            current = row_store.from_item(dataset, target.item)
            try:
                fields.append(schema.split_metadata(raw, current))
            except InvalidBody as exc:
                raise InvalidBody(f"Row {position}: {exc.message}", {**exc.details, "row": position}) from exc
        checked = schema.check_rows(dataset, fields)
        for (row_id, _), changes in zip(entries, checked.rows, strict=True):
            targets[row_id].changes.update(changes)
        for target in targets.values():
            current = user_fields(row_store.from_item(dataset, target.item))
            problem = row_store.oversize_problem({**current, **target.changes}.values())
            if problem:  # before the schema grows: a refused request leaves no trace
                raise InvalidBody(
                    f"Row {target.position} ({target.row_id}): {problem}.",
                    {"row": target.position, "row_id": target.row_id, "limit_bytes": row_store.MAX_ROW_BYTES},
                )
        return schema.grow(dataset, checked), list(targets.values())

    dataset, targets = schema.with_schema(principal.workspace, dataset_id, attempt)
    at = now_iso()
    changelog.record(dataset, changelog.spans_of(int(target.item["sk"]) for target in targets))

    stop = threading.Event()  # after a failure, rows not yet written are not written at all

    def write(target: _Target) -> dict[str, Any] | Exception | None:
        if stop.is_set():
            return None
        try:
            before = row_store.update_fields(dataset, target.item, target.changes, at)
        except Exception as exc:  # noqa: BLE001 - every landed row must still be put back
            stop.set()
            return exc
        if before is None:
            stop.set()
            return _Gone(target.row_id)
        return before

    outcomes = bulk_where.in_parallel(write, targets)
    landed = [(t, o) for t, o in zip(targets, outcomes, strict=True) if isinstance(o, dict)]
    failed = [(t, o) for t, o in zip(targets, outcomes, strict=True) if isinstance(o, Exception)]
    if failed:
        stayed = [(t, before) for t, before in landed if not put_back(dataset, before, t.changes, at)]
        change_store.record([_entry(principal, dataset, t, before, at) for t, before in stayed])
        raise _failure(failed[0], len(stayed))
    confirm_written(dataset, [before for _, before in landed], at)
    change_store.record([_entry(principal, dataset, t, before, at) for t, before in landed])
    return {"updated": len(landed), "rows": [_after(dataset, t, before, at) for t, before in landed]}


# --- checking --------------------------------------------------------------------------------
def _entries(raw_rows: Any) -> list[tuple[str, dict[str, Any]]]:
    """``(row id, fields to set)`` per entry, in order; the shape checked, ids well-formed."""
    if not isinstance(raw_rows, list) or not raw_rows:
        raise InvalidBody(
            '"rows" must be a non-empty array of {"id": <row id>, <column>: <value>, ...}.', {"field": "rows"}
        )
    limit = settings().max_rows_per_request
    if len(raw_rows) > limit:
        raise PayloadTooLarge(
            f"At most {limit} rows per request; this one has {len(raw_rows)}.",
            {"limit": limit, "rows": len(raw_rows)},
        )
    entries = []
    for position, raw in enumerate(raw_rows):
        if not isinstance(raw, dict):
            raise InvalidBody(f"Row {position} is not a JSON object.", {"row": position})
        row_id = raw.get("id")
        if not isinstance(row_id, str):
            raise InvalidBody(
                f'Row {position} needs "id": the id of the row to update (a UUID string).',
                {"row": position, "field": "id"},
            )
        try:
            canonical = str(parse_row_id(row_id))
        except InvalidRowId:
            raise InvalidRowId(
                f"Row {position}: '{row_id}' is not a valid row id (a UUID).",
                {"row": position, "row_id": row_id},
            ) from None
        if not set(raw) - RESERVED_COLUMNS:
            raise InvalidBody(
                f"Row {position} sets no column: give the columns to change beside its id.",
                {"row": position, "row_id": canonical},
            )
        entries.append((canonical, {name: value for name, value in raw.items() if name != "id"}))
    return entries


def _stored(dataset: Dataset, row_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored items of the rows among ``row_ids`` that are in the dataset, by row id."""
    indexes = {row_id: row_index_of(row_id) for row_id in row_ids}
    wanted = sorted({index for index in indexes.values() if index is not None})
    items = bulk_where.read_items(dataset, wanted, row_store.ReadMeter())
    by_index = {int(item["sk"]): item for item in items}
    found = {}
    for row_id, index in indexes.items():
        item = by_index.get(index) if index is not None else None
        if item is not None and item["id"] == row_id:  # a row index is reused only by a new generation
            found[row_id] = item
    return found


# --- undoing -----------------------------------------------------------------------------------
def _failure(failed: tuple[_Target, Exception], stayed: int) -> Exception:
    """What the request answers after putting back what it could."""
    target, exc = failed
    if stayed:
        return row_store.WriteIncomplete(
            [{"row": n} for n in range(stayed)],
            f"The storage service is busy; the request failed and {stayed} of its rows could not be "
            "put back (details.written): they hold the new values. Retry the request.",
        )
    if isinstance(exc, _Gone):
        return _not_found(target.row_id, target.position, "was deleted meanwhile")
    if isinstance(exc, ClientError):
        return row_store.WriteIncomplete([])  # "nothing was changed. Retry the request."
    return exc


def _not_found(row_id: str, position: int, why: str = "is not in this dataset") -> RowNotFound:
    error = RowNotFound(row_id)
    error.message = f"Row {position}: the row {row_id} {why}; nothing was changed."
    error.details["row"] = position
    return error


# --- answers -----------------------------------------------------------------------------------
def _after(dataset: Dataset, target: _Target, before: dict[str, Any], at: str) -> dict[str, Any]:
    row = row_store.from_item(dataset, before)
    row.update(target.changes, updated_at=at)
    return row


def _entry(
    principal: auth.Principal, dataset: Dataset, target: _Target, before: dict[str, Any], at: str
) -> dict[str, Any]:
    old = user_fields(row_store.from_item(dataset, before))
    return change_store.entry(
        dataset.id, target.row_id, "update", principal.key_id, at, diff(old, {**old, **target.changes})
    )
