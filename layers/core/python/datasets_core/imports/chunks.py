"""The write stage of an import: chunks written by concurrent invocations, each counted exactly
once, and the finish by whoever completes the set (SPEC §7, §11).

A chunk is one staging part (``staging``): one message on the import queue, one invocation.

1. **Start**: add the chunk to the import's ``chunks_started`` set. Finding it there already
   means an earlier delivery may have written some of its rows: the chunk then writes only
   the rows that are not there and that no API write has touched since the import began
   (the change log names those), so a retry never undoes an acknowledged update or delete.
2. **Write**: ``append`` logs the chunk's row range (origin ``import:<id>``) before writing its
   rows into the live generation, so they are visible to every reader as they land;
   ``replace`` writes into the new, invisible generation and logs nothing. Every
   ``SUB_ROWS`` rows the chunk checks that the import still runs and the dataset still
   exists (and, for ``append``, was not replaced): a chunk that loses such a race stops
   within one sub-batch.
3. **Snapshot part**: the chunk's rows, from the file, as part ``<chunk>`` of the snapshot
   version the import will publish (``replica.layout``).
4. **Complete**: one transaction adds the chunk to ``chunks_done`` (refused if it is there),
   adds its rows to ``rows_imported`` and — for ``append`` — to the dataset's ``row_count``
   (conditioned on the generation it wrote to still being live).
5. **Finish**: the invocation that finds the set complete takes the import's lease and
   publishes: ``append`` points the dataset at a new snapshot version (the previous version's
   parts, copied, plus the import's parts) if no snapshot published meanwhile holds any of
   the import's rows — else compaction folds them later; ``replace`` swaps the generation
   and sets its snapshot in one transaction. A crash anywhere is redone by a redelivery.

A chunk that keeps failing (``MAX_RECEIVES`` deliveries) fails the import: its rows are taken
back by the one invocation whose conditional status change succeeds; other chunks, seeing
the import failed, take back their own uncounted rows.
"""

from __future__ import annotations

import json
import time
from contextlib import suppress
from typing import Any

from .. import auth, aws, values
from ..config import settings
from ..errors import ApiError, Conflict, DatasetNotFound
from ..observability import logger
from ..records import Dataset, Part, ReplicaPointer, held_past, import_origin
from ..replica import cuts, layout
from ..store import changelog, workspaces
from ..store import datasets as dataset_store
from ..store import imports as import_store
from ..store import rows as row_store
from ..timeutil import now_iso
from . import convert, staging
from .validate import MAX_ERRORS, ImportFailed, error

SUB_ROWS = 5_000
MAX_RECEIVES = 5
_PUBLISH_TRIES = 3
_SWAP_RETRIES = 5
_UPSERT_SLICE = 1000


class ChunkFailed(Exception):
    """The dataset went away (deleted, or replaced under an append): the import cannot finish."""


def message(workspace: str, import_id: str, number: int) -> str:
    return json.dumps({"import_chunk": {"workspace": workspace, "import_id": import_id, "chunk": number}})


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- one chunk ---------------------------------------------------------------------------------
def run(workspace: str, import_id: str, number: int, deadline: Any, receive_count: int = 1) -> str:
    """Write chunk ``number`` of an import unless it was counted; finish the import if it was the
    last. What became of it (for logs and tests)."""
    record = import_store.get(workspace, import_id)
    if record is None:
        return "gone"
    if record["status"] == "failed":
        clean(workspace, record, number)
        return "stopped"
    if record["status"] != "running" or record.get("stage") != "write":
        return "duplicate" if record["status"] == "succeeded" else "early"
    if number not in import_store.done_chunks(record):
        try:
            write(workspace, record, number)
        except import_store.ImportStopped:
            clean(workspace, import_store.get(workspace, import_id) or record, number)
            return "stopped"
        except ChunkFailed as exc:
            fail(workspace, import_id, ImportFailed([error(str(exc))]))
            return "failed"
        except Exception as exc:
            if receive_count < MAX_RECEIVES:
                raise
            logger.exception("import chunk abandoned after repeated failures", extra={"import_id": import_id})
            fail(workspace, import_id, ImportFailed([error(storage_message(exc))]))
            return "failed"
    return finish_if_complete(workspace, import_id, deadline)


def storage_message(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.message} (the import was retried {MAX_RECEIVES} times; nothing of it was kept)"
    return f"the import failed {MAX_RECEIVES} times on an internal error; nothing of it was kept"


def write(workspace: str, record: dict[str, Any], number: int) -> None:
    """Write one chunk and count it (``ImportStopped`` / ``ChunkFailed`` when it must not)."""
    import_id = record["id"]
    plan = record["plan"]
    targets = plan["targets"]
    mode = record.get("mode") or "append"
    fresh = import_store.start_chunk(workspace, import_id, number)
    started = _now_ms()
    dataset = _live_dataset(workspace, record)
    rows, columns = staging.read(workspace, import_id, number, targets)
    if record.get("upsert_on") is not None:
        _upsert(workspace, dataset, targets, columns, str(record["upsert_on"]))
        merged = {"start": started, "end": _now_ms(), "rows": len(rows)}
        import_store.complete_chunk(workspace, import_id, number, rows=len(rows), info=merged, extra=[])
        return
    generation, row_start = int(plan["generation"]), int(plan["row_start"])
    indexes = [row_start + row for row in rows]
    ids = convert.row_ids(indexes, [convert.row_seed(import_id, row + 1) for row in rows])
    at = str(plan["at"])
    converted = convert.Converted(len(rows), rows, columns)
    items = convert.build_items(dataset, generation, targets, converted, range(len(rows)), indexes, ids, at)
    logged = None
    if mode == "append" and indexes:
        # Logged before written, like every write: replica readers fetch these rows until the
        # import's snapshot version holds them.
        logged = changelog.record(dataset, changelog.spans_of(indexes), import_origin(import_id), generation)
        if not fresh:
            items = _unwritten(dataset, generation, items, indexes, plan, import_id)
    for start in range(0, len(items), SUB_ROWS):
        if start:
            _still_writing(workspace, import_id, dataset.id, generation, mode)
        row_store.batch_write(row_store.put_requests(items[start : start + SUB_ROWS]))
    part = (
        staging.write_snapshot_part(dataset, int(plan["version"]), number, targets, indexes, ids, at, columns)
        if indexes
        else None
    )
    info: dict[str, Any] = {
        "start": started,
        "end": _now_ms(),
        "rows": len(rows),
        # [rows, bytes, first, last]: the key follows from the version and the chunk number
        "part": [part.rows, part.bytes, part.first, part.last] if part else None,
        "logged": logged,
    }
    extra: list[dict[str, Any]] = []
    if mode == "append" and rows:
        extra = [
            {"Update": dataset_store.count_update(workspace, dataset.id, len(rows))},
            {"ConditionCheck": dataset_store.state_check(workspace, dataset.id, generation)},
        ]
    try:
        import_store.complete_chunk(workspace, import_id, number, rows=len(rows), info=info, extra=extra)
    except import_store.DatasetMoved as exc:
        raise ChunkFailed(_why_gone(workspace, dataset.id)) from exc


def _live_dataset(workspace: str, record: dict[str, Any]) -> Dataset:
    try:
        dataset = dataset_store.get(workspace, str(record["dataset_id"]))
    except DatasetNotFound as exc:
        raise ChunkFailed("the dataset was deleted while the file was being imported") from exc
    plan = record["plan"]
    appending = (record.get("mode") or "append") != "replace" and "generation" in plan
    if appending and dataset.generation != int(plan["generation"]):
        raise ChunkFailed("the dataset's rows were replaced while the file was being imported")
    if record.get("mode") == "replace":
        return dataset.with_generation(int(plan["generation"]))
    return dataset


def _why_gone(workspace: str, dataset_id: str) -> str:
    if dataset_store.state(workspace, dataset_id) is None:
        return "the dataset was deleted while the file was being imported"
    return "the dataset's rows were replaced while the file was being imported"


def _still_writing(workspace: str, import_id: str, dataset_id: str, generation: int, mode: str) -> None:
    if import_store.status(workspace, import_id) != "running":
        raise import_store.ImportStopped
    state = dataset_store.state(workspace, dataset_id)
    if state is None:
        raise ChunkFailed("the dataset was deleted while the file was being imported")
    if mode == "append" and int(state.get("generation", 0)) != generation:
        raise ChunkFailed("the dataset's rows were replaced while the file was being imported")


def _unwritten(
    dataset: Dataset,
    generation: int,
    items: list[dict[str, Any]],
    indexes: list[int],
    plan: dict[str, Any],
    import_id: str,
) -> list[dict[str, Any]]:
    """Items of a redelivered chunk still to write: not there, and not touched by an API write
    since the import began (an update or delete of an imported row must stand)."""
    if not indexes:
        return items
    low, high = min(indexes), max(indexes)
    meter = row_store.ReadMeter()
    there: set[int] = set()
    for pk in row_store.partitions(dataset, generation):
        there.update(int(item["sk"]) for item in row_store.query_range(pk, low, high, meter))
    origin = import_origin(import_id)
    after = int(plan["started_position"]) - changelog.CLOCK_ALLOWANCE
    for entry in changelog.since(dataset.id, generation, after, meter):
        if entry.origin == origin:
            continue
        for start, stop in entry.spans:
            there.update(range(max(start, low), min(stop, high + 1)))
    return [item for item in items if int(item["sk"]) not in there]


def _upsert(
    workspace: str, dataset: Dataset, targets: list[dict[str, Any]], columns: list[list[Any]], column: str
) -> None:
    from ..logic import upsert  # the index engine's merge path: the same rules as the rows API

    principal = auth.Principal(workspace, "import", frozenset())
    rows = []
    for position in range(len(columns[0]) if columns else 0):
        row = {}
        for target, stored in zip(targets, columns, strict=True):
            value = stored[position]
            if value is not None:
                row[target["name"]] = values.from_store(value, target["type"])
        rows.append(row)
    for start in range(0, len(rows), _UPSERT_SLICE):
        upsert.upsert(principal, dataset.id, rows[start : start + _UPSERT_SLICE], column)


def clean(workspace: str, record: dict[str, Any], number: int) -> None:
    """Take back what a chunk of a failed import wrote without being counted (its own rows and
    snapshot part); safe to repeat. ``replace`` rows go with their generation's purge."""
    plan = record.get("plan") or {}
    if not plan or record.get("upsert_on") is not None:
        return
    if "version" in plan:
        _delete_object(layout.dataset_prefix(workspace, str(record["dataset_id"])) + _part_name(plan, number))
    if (record.get("mode") or "append") == "replace" or number in import_store.done_chunks(record):
        return
    ranges = plan.get("chunks") or []
    if number < len(ranges):
        first, last = ranges[number]
        _delete_rows(
            record, plan, int(plan["row_start"]) + int(first), int(plan["row_start"]) + int(last) + 1
        )


def _part_name(plan: dict[str, Any], number: int) -> str:
    return f"v={int(plan['version'])}/part-{number:05d}.parquet"


def _delete_object(key: str) -> None:
    aws.client("s3").delete_object(Bucket=settings().replica_bucket, Key=key)


def _delete_rows(record: dict[str, Any], plan: dict[str, Any], start: int, stop: int) -> None:
    shards = int(plan.get("shards") or 1)
    dataset_id, generation = str(record["dataset_id"]), int(plan["generation"])
    keys = [
        {"pk": f"{dataset_id}#{generation}.{index % shards}", "sk": index} for index in range(start, stop)
    ]
    row_store.batch_write(row_store.delete_requests(keys))


# --- finishing --------------------------------------------------------------------------------
def finish_if_complete(workspace: str, import_id: str, deadline: Any, owner: str | None = None) -> str:
    """Finish the import if every chunk is counted (taking its lease unless ``owner`` holds it)."""
    record = import_store.get(workspace, import_id)
    if record is None or record["status"] != "running" or record.get("stage") != "write":
        return "written"
    if len(import_store.done_chunks(record)) < int(record.get("chunks_total") or 0):
        return "written"
    holder = owner
    if holder is None:
        holder = f"finish-{time.time_ns()}"
        taken = import_store.acquire(
            workspace,
            import_id,
            holder,
            now=int(time.time()),
            until=deadline.lease_until(),
            started_at=now_iso(),
        )
        if taken is None:
            return "written"  # another invocation is finishing it (or the coordinator, which re-checks)
        record = taken
    try:
        finish(workspace, record, holder)
    except ImportFailed as exc:
        fail(workspace, import_id, exc)
        return "failed"
    except Exception:
        if owner is None:
            _release_quietly(workspace, import_id, holder)
        raise
    return "succeeded"


def _release_quietly(workspace: str, import_id: str, owner: str) -> None:
    try:
        import_store.release(workspace, import_id, owner)
    except Exception:  # noqa: BLE001 - the lease lapses by itself; the retry must still happen
        logger.exception("could not release import lease", extra={"import_id": import_id})


def max_concurrent(record: dict[str, Any]) -> int:
    """How many chunks were being written at once, at most (from their start and end times)."""
    events: list[tuple[int, int]] = []
    for info in (record.get("chunk_info") or {}).values():
        if isinstance(info, dict) and "start" in info and "end" in info:
            events += [(int(info["start"]), 1), (int(info["end"]), -1)]
    running = peak = 0
    for _, step in sorted(events, key=lambda event: (event[0], event[1])):
        running += step
        peak = max(peak, running)
    return peak


def finish(workspace: str, record: dict[str, Any], owner: str) -> None:
    """Publish the import's rows and record its success (under the import's lease)."""
    outcome: dict[str, Any] = {
        "status": "succeeded",
        "stage": "done",
        "finished_at": now_iso(),
        "max_concurrent_chunks": max_concurrent(record),
    }
    mode = record.get("mode") or "append"
    if mode == "replace":
        _swap(workspace, record, owner, outcome)
    else:
        if record.get("upsert_on") is None:
            _publish(workspace, record)
        import_store.finish(workspace, record["id"], owner, outcome)
    staging.remove(workspace, record["id"])
    logger.info("import succeeded", extra={"import_id": record["id"], "rows": record.get("rows_imported")})


def _our_parts(record: dict[str, Any]) -> list[Part]:
    plan = record["plan"]
    folder = layout.dataset_prefix(record["workspace"], str(record["dataset_id"]))
    parts = []
    for number, info in (record.get("chunk_info") or {}).items():
        if info.get("part"):
            rows, size, first, last = (int(value) for value in info["part"])
            parts.append(Part(folder + _part_name(plan, int(number)), rows, size, first, last))
    return sorted(parts, key=lambda part: part.first)


def _publish(workspace: str, record: dict[str, Any]) -> bool:
    """Point the dataset at a snapshot that holds the import's rows (best effort; whether it did).

    The new version is the current snapshot's parts (copied: versions expire one by one) plus
    the import's own parts. Its cut moves past the import's log items up to the first item of
    another writer (``cuts.past_held_items``), so readers do not read them; the import stays
    named among the origins readers skip while some of its items are past the cut. Only a
    snapshot holding none of the import's rows qualifies as the base: one whose cut is before
    the import began (less the clock allowance). Otherwise, or when the pointer keeps moving,
    compaction folds the import's rows later.
    """
    plan = record["plan"]
    generation, version = int(plan["generation"]), int(plan["version"])
    ours = _our_parts(record)
    logged = [int(info["logged"]) for info in (record.get("chunk_info") or {}).values() if info.get("logged")]
    if not ours or not logged:
        return False
    floor = int(plan["started_position"]) - changelog.CLOCK_ALLOWANCE
    target = version
    for attempt in range(_PUBLISH_TRIES):
        try:
            dataset = dataset_store.get(workspace, str(record["dataset_id"]))
        except DatasetNotFound:
            break
        if dataset.generation != generation:
            break
        current = dataset.replica
        base = current if current is not None and current.generation == generation else None
        if base is not None and base.cut >= floor:
            break  # that snapshot may hold some of the import's rows
        if base is not None and base.version >= target:
            target = layout.allocate_version(dataset)
        parts = _gather(dataset, target, [*(base.parts if base else ()), *ours], len(ours))
        held = (*(base.imports if base else ()), (str(record["id"]), max(logged)))
        cut = cuts.past_held_items(
            dataset,
            base.cut if base else 0,
            {import_origin(import_id) for import_id, _ in held},
            str(record["id"]),
        )
        pointer = ReplicaPointer(
            version=target,
            generation=generation,
            cut=cut,
            rows=sum(part.rows for part in parts),
            parts=tuple(sorted(parts, key=lambda part: part.first)),
            # Imports with log items past the cut: readers skip those items.
            imports=held_past(held, cut),
            created_at=now_iso(),
            cause="import",
        )
        layout.record_version(dataset, pointer)
        try:
            dataset_store.set_replica(dataset, pointer, expected=current)
        except Conflict:
            layout.forget_description(dataset, target)  # its files are this import's: kept for the retry
            continue
        if target != version:
            layout.delete_prefix(layout.version_prefix(dataset, version))
        if attempt:  # copies of an earlier base that this one does not have must not stay in the folder
            _keep_only(layout.version_prefix(dataset, target), {part.key for part in pointer.parts})
        return True
    layout.delete_prefix(layout.dataset_prefix(workspace, str(record["dataset_id"])) + f"v={version}/")
    if target != version:
        layout.delete_prefix(layout.dataset_prefix(workspace, str(record["dataset_id"])) + f"v={target}/")
    logger.info("import left its rows to compaction", extra={"import_id": record["id"]})
    return False


def _keep_only(folder: str, keys: set[str]) -> None:
    s3 = aws.client("s3")
    bucket = settings().replica_bucket
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=folder).get("Contents", [])
    stray = [{"Key": obj["Key"]} for obj in listed if obj["Key"] not in keys]
    if stray:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": stray, "Quiet": True})


def _gather(dataset: Dataset, version: int, parts: list[Part], first_copy: int) -> list[Part]:
    """``parts`` as files of ``version``'s folder: those elsewhere are copied in (server side)."""
    s3 = aws.client("s3")
    bucket = settings().replica_bucket
    folder = layout.version_prefix(dataset, version)
    gathered: list[Part] = []
    number = first_copy
    for part in parts:
        if part.key.startswith(folder):
            gathered.append(part)
            continue
        key = layout.part_key(dataset, version, number)
        number += 1
        s3.copy_object(Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": part.key})
        gathered.append(Part(key, part.rows, part.bytes, part.first, part.last))
    return gathered


def _swap(workspace: str, record: dict[str, Any], owner: str, outcome: dict[str, Any]) -> None:
    plan = record["plan"]
    generation = int(plan["generation"])
    rows = int(record.get("rows_imported") or 0)
    try:
        dataset = dataset_store.get(workspace, str(record["dataset_id"]))
    except DatasetNotFound as exc:
        raise ImportFailed([error("the dataset was deleted while the file was being imported")]) from exc
    parts = _our_parts(record)
    pointer = ReplicaPointer(
        version=int(plan["version"]),
        generation=generation,
        cut=0,  # nothing of the new generation is logged before the swap
        rows=sum(part.rows for part in parts),
        parts=tuple(sorted(parts, key=lambda part: part.first)),
        created_at=now_iso(),
        cause="replace",
    )
    layout.record_version(dataset, pointer)
    for _ in range(_SWAP_RETRIES):
        old_generation = dataset.generation
        try:
            import_store.swap_generation(
                workspace,
                record["id"],
                owner,
                dataset,
                generation=generation,
                rows=rows,
                next_row_index=int(record.get("rows_total") or 0),
                outcome=outcome,
                replica=pointer,
            )
        except import_store.DatasetMoved:
            # An old row was deleted meanwhile (its count moved): read the counts again.
            try:
                dataset = dataset_store.get(workspace, dataset.id)
            except DatasetNotFound as exc:
                raise ImportFailed(
                    [error("the dataset was deleted while the file was being imported")]
                ) from exc
            continue
        from ..jobs import purge

        purge.request_generation(workspace, dataset.id, dataset.shards, old_generation)
        return
    raise import_store.DatasetMoved


# --- failing ----------------------------------------------------------------------------------
def fail(workspace: str, import_id: str, failure: ImportFailed) -> None:
    """End a running import as failed (whoever holds it) and take back what it wrote."""
    changes: dict[str, Any] = {
        "errors": failure.errors[:MAX_ERRORS],
        "reason": failure.reason,
        "finished_at": now_iso(),
    }
    current = import_store.fail_running(workspace, import_id, changes)
    if current is None:
        return  # ended by someone else, who takes back what was written
    undo(workspace, current)
    logger.warning("import failed", extra={"import_id": import_id, "reason": failure.reason})


def undo(workspace: str, record: dict[str, Any]) -> None:
    """Take back everything a failed import wrote and gave (it is marked failed already).

    ``append``: its rows are removed by key and the rows it counted are subtracted, unless the
    dataset was deleted or replaced meanwhile (those counts went with it); the reservation it
    holds goes back to the plan. ``replace``: the new generation is purged and the dataset's
    replace flag dropped. Rows merged by ``upsert-on`` are ordinary writes and stay. A dataset
    the import created is removed (while it holds no row of anyone else).
    """
    plan = record.get("plan") or {}
    import_id = record["id"]
    staging.remove(workspace, import_id)
    if not plan:
        return
    dataset_id = str(record.get("dataset_id") or plan.get("dataset_id"))
    if "version" in plan:
        layout.delete_prefix(layout.dataset_prefix(workspace, dataset_id) + f"v={int(plan['version'])}/")
    reserved = int(plan.get("reserved", 0))
    if record.get("upsert_on") is None:
        imported = int(record.get("rows_imported") or 0)
        if (record.get("mode") or "append") == "replace":
            dataset_store.clear_replacing(workspace, dataset_id, import_id)
            from ..jobs import purge

            purge.request_generation(workspace, dataset_id, int(plan["shards"]), int(plan["generation"]))
        else:
            start = int(plan["row_start"])
            _delete_rows(
                {**record, "dataset_id": dataset_id}, plan, start, start + int(record.get("rows_total") or 0)
            )
            try:
                dataset_store.add_row_count(
                    workspace, dataset_id, -imported, generation=int(plan["generation"])
                )
            except (DatasetNotFound, Conflict):
                reserved -= imported  # the delete (or the swap) gave the counted rows back
        workspaces.release_rows(workspace, max(reserved, 0))
        import_store.set_fields(workspace, import_id, {"rows_imported": 0})
    if plan.get("created_dataset"):
        remove_created_dataset(workspace, import_id, dataset_id)


def remove_created_dataset(workspace: str, import_id: str, dataset_id: str) -> None:
    """A failed import leaves no dataset behind: the one it created goes (unless rows of another
    writer landed in it meanwhile); the report stays, readable by its id."""
    import_store.unlink_dataset(workspace, import_id)
    try:
        dataset = dataset_store.get(workspace, dataset_id)
    except DatasetNotFound:
        return
    if dataset.row_count:
        logger.warning(
            "dataset created by a failed import kept: it holds other rows", extra={"import_id": import_id}
        )
        return
    from ..logic import datasets as dataset_logic

    with suppress(DatasetNotFound, Conflict):
        dataset_logic.delete(auth.Principal(workspace, "import", frozenset()), dataset_id)
