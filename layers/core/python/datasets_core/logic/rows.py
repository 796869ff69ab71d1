"""Row writes and single-row reads: insert, get, patch, replace, delete, and the audit trail.

Queries live in ``logic/row_query.py``, bulk ``where`` writes in ``logic/bulk_where.py``.
Every write checks all of its input before the first item is written, logs the rows it is
about to change (the replica's delta, ``store.changelog``), and keeps ``row_count`` exact:
counters move by what actually landed, and a failed batch is undone.

Races with the dataset itself (SPEC §7, README "Concurrency"):

- a dataset deleted while a write runs: the write fails with 404 and takes back what it
  wrote; its rows were never counted (the delete gave back exactly the counted ones);
- a replace import that starts writing while a row write runs: the row write is refused
  with 409 and undone, so no acknowledged write is ever replaced by a swap it did not see.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from .. import auth, values
from ..columns import RESERVED_COLUMNS
from ..config import settings
from ..errors import Conflict, DatasetNotFound, InvalidBody, PayloadTooLarge, RowNotFound
from ..query import answer
from ..query.paging import parse_page, single
from ..records import Column, Dataset
from ..rowids import new_row_id, parse_row_id, row_index_of
from ..store import changelog, workspaces
from ..store import changes as change_store
from ..store import datasets as dataset_store
from ..store import rows as row_store
from ..timeutil import now_iso
from . import schema

_CONCURRENT_WRITE_RETRIES = 3


# --- insert ----------------------------------------------------------------------------------
def rows_of_insert_body(body: Any) -> tuple[list[Any], str | None]:
    """The rows of a POST body (``{"rows": [...]}``, a bare array or one object) and ``upsert_on``."""
    upsert_on = None
    if isinstance(body, dict) and "rows" in body:
        # A "rows" key means the wrapper shape (a column named "rows" is written inside it).
        if not isinstance(body["rows"], list):
            raise InvalidBody('"rows" must be an array of row objects.', {"field": "rows"})
        extra = sorted(set(body) - {"rows", "upsert_on"})
        if extra:
            raise InvalidBody(
                f"Unexpected field '{extra[0]}' beside 'rows' (allowed: rows, upsert_on).", {"fields": extra}
            )
        upsert_on = body.get("upsert_on")
        if upsert_on is not None and not isinstance(upsert_on, str):
            raise InvalidBody("upsert_on must be a column name.", {"field": "upsert_on"})
        raw_rows = body["rows"]
    elif isinstance(body, list):
        raw_rows = body
    elif isinstance(body, dict):
        raw_rows = [body]
    else:
        raise InvalidBody('The body must be a row object, an array of rows, or {"rows": [...]}.')
    if not raw_rows:
        raise InvalidBody("There are no rows to insert.")
    limit = settings().max_rows_per_request
    if len(raw_rows) > limit:
        raise PayloadTooLarge(
            f"At most {limit} rows per request; this one has {len(raw_rows)}.",
            {"limit": limit, "rows": len(raw_rows)},
        )
    return raw_rows, upsert_on


def insert(principal: auth.Principal, dataset_id: str, body: Any) -> dict[str, Any]:
    raw_rows, upsert_on = rows_of_insert_body(body)
    if upsert_on is not None:
        from . import upsert  # the index engine's merge path

        return echo(upsert.upsert(principal, dataset_id, raw_rows, upsert_on))
    for position, raw in enumerate(raw_rows):
        if isinstance(raw, dict):
            refuse_metadata(raw, position)

    def attempt(dataset: Dataset) -> tuple[Dataset, schema.Checked]:
        refuse_while_replacing(dataset)
        checked = schema.check_rows(dataset, raw_rows)
        return schema.grow(dataset, checked), checked

    dataset, checked = schema.with_schema(principal.workspace, dataset_id, attempt)
    created = write_new_rows(principal, dataset, checked.rows)
    return echo({"inserted": len(created), "rows": created})


def echo(written: dict[str, Any]) -> dict[str, Any]:
    """The answer to a write that echoes its rows; abridged (ids and metadata) when the whole
    echo would pass what Lambda carries back (a 6 MB body of short strings weighs more)."""
    _size, carried = answer.weight({"data": written})
    if carried <= answer.CARRIED_BYTES:
        return written
    return dict(answer.abridged({"data": written})["data"])


def insert_csv(principal: auth.Principal, dataset_id: str, text: str) -> dict[str, Any]:
    """``POST .../rows`` with a CSV body (``logic.csv_rows``): the same insert as JSON rows."""
    from . import csv_rows  # only CSV bodies pay for the csv module and the type detection

    table = csv_rows.parse(text)

    def attempt(dataset: Dataset) -> tuple[Dataset, schema.Checked]:
        refuse_while_replacing(dataset)
        raw_rows, types = csv_rows.typed_rows(table, dataset)
        checked = schema.check_rows(dataset, raw_rows, types=types)
        return schema.grow(dataset, checked), checked

    dataset, checked = schema.with_schema(principal.workspace, dataset_id, attempt)
    created = write_new_rows(principal, dataset, checked.rows)
    return {"inserted": len(created), "rows": created}


def refuse_metadata(raw: dict[str, Any], position: int) -> None:
    try:
        schema.split_metadata(raw, None)
    except InvalidBody as exc:
        raise InvalidBody(f"Row {position}: {exc.message}", {**exc.details, "row": position}) from exc


def refuse_while_replacing(dataset: Dataset) -> None:
    if dataset.replacing:
        from ..store.imports import replace_running

        if replace_running(dataset.workspace, dataset.replacing):
            raise dataset_store.ReplaceInProgress(dataset.id, dataset.replacing)
        dataset_store.clear_replacing(dataset.workspace, dataset.id, dataset.replacing)


def write_new_rows(
    principal: auth.Principal, dataset: Dataset, fields: list[dict[str, Any]], *, reserved: bool = False
) -> list[dict[str, Any]]:
    """Write checked rows as new rows (all or nothing); their API form.

    ``reserved``: the caller already counted the rows against the plan; like rows reserved
    here, they are given back if the write fails."""
    count = len(fields)
    if not reserved:
        workspaces.reserve_rows(principal.workspace, count)
    items: list[dict[str, Any]] = []
    try:
        start = dataset_store.allocate_row_indexes(principal.workspace, dataset.id, count)
        at = now_iso()
        items = [
            row_store.to_item(dataset, start + offset, new_row_id(start + offset), row, at, at)
            for offset, row in enumerate(fields)
        ]
        changelog.record(dataset, [(start, start + count)])
        from ..jobs import compaction_requests  # inserts only: reads never load the job engine

        compaction_requests.after_insert(dataset, start, count)
        row_store.put_new(items)
        try:
            dataset_store.add_row_count(
                principal.workspace, dataset.id, count, unless_replacing=True, generation=dataset.generation
            )
        except (DatasetNotFound, Conflict):  # deleted, being replaced, or replaced meanwhile
            row_store.remove_new(items)  # deleted or being replaced meanwhile: keep nothing
            raise
    except row_store.WriteIncomplete as exc:
        # Rows the undo could not remove are there: they stay counted (plan and dataset).
        stayed = len(exc.written)
        workspaces.release_rows(principal.workspace, count - stayed)
        try:
            dataset_store.add_row_count(
                principal.workspace, dataset.id, stayed, generation=dataset.generation
            )
        except (DatasetNotFound, dataset_store.ReplacedMeanwhile):
            workspaces.release_rows(principal.workspace, stayed)  # their generation's purge removes them
        raise
    except BaseException:
        workspaces.release_rows(principal.workspace, count)
        raise
    created = [row_store.from_item(dataset, item) for item in items]
    change_store.record(
        [
            change_store.entry(
                dataset.id, row["id"], "insert", principal.key_id, at, diff({}, user_fields(row))
            )
            for row in created
        ]
    )
    return created


# --- single rows -----------------------------------------------------------------------------
def find(workspace: str, dataset_id: str, row_id: str) -> tuple[Dataset, dict[str, Any]]:
    """The dataset and the stored item of ``row_id`` (``row_not_found`` if absent)."""
    dataset = dataset_store.get(workspace, dataset_id)
    row_index = row_index_of(row_id)
    item = row_store.get(dataset, row_index) if row_index is not None else None
    if item is None or item["id"] != str(parse_row_id(row_id)):
        raise RowNotFound(row_id)
    return dataset, item


def get_one(principal: auth.Principal, dataset_id: str, row_id: str) -> dict[str, Any]:
    dataset, item = find(principal.workspace, dataset_id, row_id)
    return row_store.from_item(dataset, item)


def patch_one(principal: auth.Principal, dataset_id: str, row_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or set(body) != {"set"} or not isinstance(body["set"], dict):
        raise InvalidBody('The body must be {"set": {<column>: <value>, ...}}.')
    return _rewrite(principal, dataset_id, row_id, body["set"], replace=False)


def replace_one(principal: auth.Principal, dataset_id: str, row_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidBody("The body must be the row as a JSON object.")
    return _rewrite(principal, dataset_id, row_id, body, replace=True)


def _rewrite(
    principal: auth.Principal, dataset_id: str, row_id: str, raw: dict[str, Any], *, replace: bool
) -> dict[str, Any]:
    for _ in range(_CONCURRENT_WRITE_RETRIES):
        dataset, item = find(principal.workspace, dataset_id, row_id)
        refuse_while_replacing(dataset)
        current = row_store.from_item(dataset, item)
        fields = schema.split_metadata(raw, current)
        checked = schema.check_rows(dataset, [fields], label="Row")
        old = user_fields(current)
        new = dict(checked.rows[0])
        changes = {**{name: None for name in old if name not in new}, **new} if replace else new
        merged = {**old, **changes}
        problem = row_store.oversize_problem(merged.values())
        if problem:  # before the schema grows: a refused write leaves no trace
            raise InvalidBody(f"Row: {problem}.", {"limit_bytes": row_store.MAX_ROW_BYTES})
        dataset = schema.grow(dataset, checked)
        at = now_iso()
        changelog.record(dataset, [(current["row_index"], current["row_index"] + 1)])
        # A replace must not merge with a change made since it read the row; a patch sets only
        # its own columns, so changes to other columns meanwhile are kept.
        guard = {"ua": item["ua"]} if replace else None
        before = row_store.update_fields(dataset, item, changes, at, unchanged=guard)
        if before is None:
            if row_store.get(dataset, current["row_index"]) is None:
                raise RowNotFound(row_id)
            continue
        confirm_written(dataset, [before], at)
        after = row_store.from_item(dataset, before)
        previous = user_fields(after)
        after.update(changes, updated_at=at)
        change_store.record(
            [
                change_store.entry(
                    dataset_id,
                    after["id"],
                    "replace" if replace else "update",
                    principal.key_id,
                    at,
                    diff(previous, user_fields(after)),
                )
            ]
        )
        return after
    raise Conflict("The row was changed by another request meanwhile; retry.")


def put_back(dataset: Dataset, before: dict[str, Any], changes: dict[str, Any], at: str) -> bool:
    """Undo a write that landed at ``at``: return each of ``changes``' columns to its value in
    ``before``, each only while it still holds the value written here (a later writer's value is
    never undone); ``updated_at`` too when nobody wrote the row since. False when DynamoDB
    refused (the row stays changed)."""
    old = row_store.from_item(dataset, before)
    previous = {name: old.get(name) for name in changes}
    columns = {name: _column(dataset, name) for name in changes}
    written = {
        columns[name].attr: values.to_store(value, columns[name].type) for name, value in changes.items()
    }
    try:
        # Nobody wrote the row since: exactly as it was, updated_at included.
        if row_store.update_fields(
            dataset, before, previous, before["ua"], unchanged={"ua": at, **written}, put_back=True
        ):
            return True
        # Someone changed another column since (their updated_at stays newer than ours): put back
        # each column that still holds our value, and only those.
        again = now_iso()
        for name, value in previous.items():
            attr = columns[name].attr
            row_store.update_fields(
                dataset, before, {name: value}, again, unchanged={attr: written[attr]}, put_back=True
            )
    except ClientError:
        return False
    return True


def _column(dataset: Dataset, name: str) -> Column:
    column = dataset.column(name)
    assert column is not None, f"unknown column {name!r}"
    return column


def confirm_written(dataset: Dataset, before: list[dict[str, Any]], at: str) -> None:
    """After rows were rewritten in place: if the dataset went away meanwhile, 404; if a replace
    import began meanwhile, put the rows back and refuse with 409 (the swap would drop them);
    if one already swapped, the rows written were the replaced ones: 409."""
    dataset_id = dataset.id
    state = dataset_store.state(dataset.workspace, dataset_id)
    if state is None:
        raise DatasetNotFound(dataset_id)
    if dataset_store.state_generation(state) != dataset.generation:
        raise dataset_store.ReplacedMeanwhile(dataset_id)
    if not state.get("replacing"):
        return
    for item in before:
        row_store.restore(item, written_at=at)
    raise dataset_store.ReplaceInProgress(dataset_id, str(state["replacing"]))


def delete_one(principal: auth.Principal, dataset_id: str, row_id: str) -> dict[str, Any]:
    dataset, item = find(principal.workspace, dataset_id, row_id)
    refuse_while_replacing(dataset)
    changelog.record(dataset, [(int(item["sk"]), int(item["sk"]) + 1)])
    gone = row_store.delete_row(item, expected_id=item["id"])
    if gone is None:
        raise RowNotFound(row_id)
    # A replace that swapped meanwhile took this row's generation away: nothing to count.
    dataset_store.add_row_count(principal.workspace, dataset_id, -1, plan=True, generation=dataset.generation)
    before = user_fields(row_store.from_item(dataset, gone))
    change_store.record(
        [change_store.entry(dataset_id, item["id"], "delete", principal.key_id, now_iso(), diff(before, {}))]
    )
    return {"deleted": True, "id": item["id"]}


def changes(
    principal: auth.Principal, dataset_id: str, row_id: str, params: dict[str, list[str]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A row's audit trail, newest first. Deleted rows keep their trail (until it expires);
    a row id that never belonged to the dataset is not found."""
    dataset = dataset_store.get(principal.workspace, dataset_id)
    row_index = row_index_of(row_id)
    if row_index is None:
        raise RowNotFound(row_id)
    page = parse_page(single(params, "limit"), single(params, "offset"))
    entries, total = change_store.history(dataset.id, str(parse_row_id(row_id)), page.limit, page.offset)
    if not total:
        item = row_store.get(dataset, row_index)
        if item is None or item["id"] != str(parse_row_id(row_id)):
            raise RowNotFound(row_id)
    meta: dict[str, Any] = {"total": total, "limit": page.limit, "offset": page.offset}
    # A change holds old and new values (rows up to 400 KB): a page stops before 5 MB too.
    kept = answer.fit(
        entries,
        {"data": [], "meta": {**meta, "cut_at_bytes": True, "next_offset": None}},
        False,
        lambda count: page.offset + count,
    )
    if kept < len(entries):
        entries = entries[:kept]
        meta.update(cut_at_bytes=True, next_offset=page.offset + kept)
    return entries, meta


# --- helpers ---------------------------------------------------------------------------------
def user_fields(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name not in RESERVED_COLUMNS}


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{column: {old, new}}`` for every column whose value changed."""
    return {
        name: {"old": old.get(name), "new": new.get(name)}
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    }
