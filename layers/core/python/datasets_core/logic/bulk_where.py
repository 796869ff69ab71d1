"""Bulk writes by condition: ``PATCH .../rows`` with ``{"where", "set"}`` and ``DELETE .../rows``
with ``{"where"}`` or ``{"row_ids"}`` (SPEC §4).

They find their rows the way a query does (an index within the read budget, else the replica),
then change each row with a conditional write that also requires the columns ``where`` reads
to be as they were read: a row changed meanwhile is read again and re-checked, so a row that
still matches is never skipped and one that no longer matches is never changed.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from .. import auth
from ..errors import Conflict, InvalidBody, PayloadTooLarge
from ..query import evaluate, planner, where
from ..query.ast import METADATA_FIELDS, Condition, walk
from ..records import Dataset
from ..replica import remote
from ..rowids import parse_row_id, row_index_of
from ..store import changelog
from ..store import changes as change_store
from ..store import datasets as dataset_store
from ..store import rows as row_store
from ..timeutil import now_iso
from . import schema
from .rows import confirm_written, diff, put_back, refuse_while_replacing, user_fields

# A bulk write by condition runs inside one API call (29 s behind API Gateway); beyond this
# many matching rows the caller is asked to narrow the condition (or use a replace import).
MAX_BULK_MATCHES = 10_000
_WRITERS = 8
_RECHECKS = 5


def update_where(principal: auth.Principal, dataset_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or "set" not in body or not set(body) <= {"where", "set"}:
        raise InvalidBody('The body must be {"where": {...}, "set": {...}} ("where" is optional).')
    if not isinstance(body["set"], dict) or not body["set"]:
        raise InvalidBody('"set" must be a non-empty object of column values.', {"field": "set"})
    raw_set = (
        schema.split_metadata(body["set"], None) if body["set"].keys() & set(METADATA_FIELDS) else body["set"]
    )

    def attempt(
        dataset: Dataset,
    ) -> tuple[Dataset, dict[str, Any], tuple[Condition, ...], list[dict[str, Any]]]:
        refuse_while_replacing(dataset)
        conditions = where.parse_where(body.get("where"), dataset.columns, required=False)
        checked = schema.check_rows(dataset, [raw_set], label="set")
        matches = _matching_items(dataset, conditions, body.get("where"))
        _refuse_oversize(dataset, matches, checked.rows[0])  # before the schema grows or any row changes
        return schema.grow(dataset, checked), checked.rows[0], conditions, matches

    dataset, new_fields, conditions, matches = schema.with_schema(principal.workspace, dataset_id, attempt)
    at = now_iso()
    changelog.record(dataset, changelog.spans_of(int(item["sk"]) for item in matches))
    keep = evaluate.compile_conditions(conditions, dataset.columns)
    watched = _watched_attributes(dataset, conditions)

    def write(item: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | Exception | None:
        try:
            for _ in range(_RECHECKS):
                unchanged = {attr: item.get(attr) for attr in watched}
                before = row_store.update_fields(dataset, item, new_fields, at, unchanged=unchanged)
                if before is not None:
                    return before, item
                # Changed meanwhile: the row as it is now decides whether it still matches.
                fresh = row_store.get(dataset, int(item["sk"]))
                if (
                    fresh is None
                    or fresh["id"] != item["id"]
                    or not keep(row_store.from_item(dataset, fresh))
                ):
                    return None
                item = fresh
            return Conflict("Rows kept changing while being updated; nothing was changed. Retry.")
        except Exception as exc:  # noqa: BLE001 - the rows that did change must be put back
            return exc

    outcomes = in_parallel(write, matches)
    written = [outcome for outcome in outcomes if isinstance(outcome, tuple)]
    failures = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    if failures:
        # All or nothing: what landed is put back; what DynamoDB would not put back stays
        # changed, is audited, and is what the error reports as written.
        written = [
            (before, item) for before, item in written if not put_back(dataset, before, new_fields, at)
        ]
    confirm_written(dataset, [before for before, _ in written], at)
    entries = []
    for before, _ in written:
        old_row = row_store.from_item(dataset, before)
        old = user_fields(old_row)
        entries.append(
            change_store.entry(
                dataset.id, old_row["id"], "update", principal.key_id, at, diff(old, {**old, **new_fields})
            )
        )
    change_store.record(entries)
    if failures:
        if written:
            raise row_store.WriteIncomplete(
                [{"row_id": item["id"]} for _, item in written],
                f"The request failed and {len(written)} of its rows could not be put back "
                "(details.written): they hold the new values. Retry the request.",
            )
        failure = failures[0]
        raise failure if not isinstance(failure, ClientError) else row_store.WriteIncomplete([])
    return {"updated": len(written)}


def _watched_attributes(dataset: Dataset, conditions: tuple[Condition, ...]) -> list[str]:
    """Stored attributes a ``where`` reads: a row changed there must be checked again."""
    attrs = []
    for flt in walk(conditions):
        column = dataset.column(flt.column)
        if column is not None and column.attr not in attrs:
            attrs.append(column.attr)
    return attrs


def _refuse_oversize(dataset: Dataset, items: list[dict[str, Any]], new_fields: dict[str, Any]) -> None:
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
    refuse_while_replacing(dataset)
    conditions: tuple[Condition, ...] = ()
    targets: list[tuple[dict[str, Any], Any, dict[str, Any] | None]]
    if "where" in body:
        conditions = where.parse_where(body["where"], dataset.columns, required=True)
        targets = [(item, item["id"], item) for item in _matching_items(dataset, conditions, body["where"])]
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
                targets.append((row_store.row_key(dataset, row_index), row_id, None))
    at = now_iso()
    changelog.record(dataset, changelog.spans_of(int(key["sk"]) for key, _, _ in targets))
    keep = evaluate.compile_conditions(conditions, dataset.columns)
    watched = _watched_attributes(dataset, conditions)

    def remove(
        target: tuple[dict[str, Any], str, dict[str, Any] | None],
    ) -> dict[str, Any] | Exception | None:
        key, row_id, item = target
        try:
            for _ in range(_RECHECKS):
                unchanged = {attr: item.get(attr) for attr in watched} if item is not None else None
                gone = row_store.delete_row(key, expected_id=row_id, unchanged=unchanged)
                if gone is not None:
                    before = user_fields(row_store.from_item(dataset, gone))
                    return change_store.entry(
                        dataset.id, row_id, "delete", principal.key_id, at, diff(before, {})
                    )
                if item is None:
                    return None  # not there (any more)
                fresh = row_store.get(dataset, int(key["sk"]))
                if fresh is None or fresh["id"] != row_id or not keep(row_store.from_item(dataset, fresh)):
                    return None
                item = fresh
            return None
        except Exception as exc:  # noqa: BLE001 - the rows that did go must still be counted
            return exc

    outcomes = in_parallel(remove, targets)
    entries = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    dataset_store.add_row_count(
        principal.workspace, dataset.id, -len(entries), plan=True, generation=dataset.generation
    )
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


def _matching_items(
    dataset: Dataset, conditions: tuple[Condition, ...], raw_where: Any
) -> list[dict[str, Any]]:
    """Stored items of the rows ``where`` matches: from an index when one serves it within the
    read budget, else found on the replica and read back strongly consistently."""
    items = planner.matching_items(dataset, conditions) if conditions else None
    if items is None:
        matched, indexes = remote.matching(dataset, raw_where, MAX_BULK_MATCHES)
        if matched > MAX_BULK_MATCHES:
            raise _too_many(matched)
        keep = evaluate.compile_conditions(conditions, dataset.columns)
        meter = row_store.ReadMeter()
        found = read_items(dataset, indexes, meter)
        items = [item for item in found if keep(row_store.from_item(dataset, item))]
    if len(items) > MAX_BULK_MATCHES:
        raise _too_many(len(items))
    return items


def read_items(dataset: Dataset, indexes: list[int], meter: row_store.ReadMeter) -> list[dict[str, Any]]:
    keys = [row_store.row_key(dataset, index) for index in indexes]
    batches = [keys[start : start + 100] for start in range(0, len(keys), 100)]
    return [
        item
        for batch in in_parallel(lambda keys_: row_store.batch_get(keys_, meter), batches)
        for item in batch
    ]


def _too_many(matched: int) -> InvalidBody:
    return InvalidBody(
        f"The condition matches {matched} rows; a bulk write changes at most {MAX_BULK_MATCHES} "
        "rows per request. Narrow 'where', or replace the data with an import (mode=replace).",
        {"matched": matched, "limit": MAX_BULK_MATCHES},
    )


def in_parallel(work: Any, targets: list[Any]) -> list[Any]:
    """Run independent single-item operations concurrently (DynamoDB has no conditional batch)."""
    if len(targets) <= 1:
        return [work(target) for target in targets]
    row_store.rows()  # create the shared table handle before threads use its client
    with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
        return list(pool.map(work, targets))
