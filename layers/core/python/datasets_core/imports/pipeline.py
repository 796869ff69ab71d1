"""The import of one dropped file, from queue message to rows.

1. **Identify.** The import id is derived from (bucket, key, version or ETag): every
   delivery of one object version is the same import. A finished import is never redone;
   an unfinished one is taken over through a lease on its record (``store.imports``).
2. **Validate** the whole file before writing anything: resolve every file column to a
   dataset column (declared, or inferred over the whole file), convert every row, count the
   bad ones. More than ``max-bad-rows`` fails the import with the first 100 errors. The
   decisions (target columns, first row index, target generation) are stored on the record.
3. **Write** chunk by chunk in 25-item batches. Row keys and ids are functions of the import
   id and the row number, so writing a chunk twice overwrites it. After each chunk, one
   transaction moves the checkpoint, ``rows_imported`` and the dataset's ``row_count``.
4. **Continue** when the Lambda deadline nears: release the lease, enqueue a continuation
   message, return. The continuation (or any redelivery) resumes at the checkpoint.
5. **Finish.** ``append`` rows are live as they land. ``replace`` rows go to a fresh
   generation that one conditional write makes live, after which the old generation is
   purged in the background.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import S3Model
from botocore.exceptions import ClientError

from .. import auth, aws, values
from ..columns import normal_name
from ..config import settings
from ..errors import ApiError, DatasetNameTaken, DatasetNotFound, PlanLimitExceeded
from ..jobs import purge
from ..logic import datasets as dataset_logic
from ..models import ColumnType, CreateDataset, column_name_problem
from ..observability import logger
from ..records import Column, Dataset
from ..store import changelog, workspaces
from ..store import datasets as dataset_store
from ..store import imports as import_store
from ..store import rows as row_store
from ..timeutil import now_iso
from . import convert
from .mapping import JsonTypes, Kind, TextTypes, fits, natural_type
from .models import DropKey, ImportOptions, import_id_of
from .readers import CHUNK_ROWS, Chunk, FileProblem, Reader, open_reader

MAX_ERRORS = 100
# Received this often without finishing, the import gives up (the queue's maxReceiveCount).
MAX_RECEIVES = 5
_SWAP_RETRIES = 5
_UPSERT_SLICE = 1000


@dataclass(frozen=True)
class Deadline:
    """When to stop starting chunks: ``remaining_ms()`` below ``margin_ms``."""

    remaining_ms: Callable[[], int]
    margin_ms: int

    def near(self) -> bool:
        return self.remaining_ms() < self.margin_ms

    def lease_until(self) -> int:
        # The invocation cannot outlive its remaining time; a crashed run's lease lapses then.
        return int(time.time() + self.remaining_ms() / 1000) + 2

    @staticmethod
    def of(context: Any, margin_ms: int) -> Deadline:
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            return Deadline(context.get_remaining_time_in_millis, margin_ms)
        return Deadline(lambda: 15 * 60 * 1000, margin_ms)


@dataclass(frozen=True)
class Source:
    bucket: str
    key: str
    size: int
    version: str | None
    etag: str | None


class ImportFailed(Exception):
    """The import ends as failed; ``errors`` are the report's ``[{row, column, message}]``."""

    def __init__(
        self, errors: list[dict[str, Any]], rejected: int = 0, rows_total: int | None = None
    ) -> None:
        super().__init__(errors[0]["message"] if errors else "import failed")
        self.errors = errors
        self.rejected = rejected
        self.rows_total = rows_total


def _error(message: str, column: str | None = None, row: int | None = None) -> dict[str, Any]:
    return {"row": row, "column": column, "message": message}


# --- messages ---------------------------------------------------------------------------------
def handle_message(body: str, deadline: Deadline, receive_count: int = 1) -> list[str]:
    """Process one queue message; what became of each file in it (for logs and tests).

    Raises only for transient trouble (the message is retried); anything a retry cannot fix
    is logged and recorded, and the message is done.
    """
    try:
        message = json.loads(body)
    except ValueError:
        logger.error("import queue message is not JSON; dropped", extra={"body": body[:500]})
        return ["unreadable"]
    if not isinstance(message, dict):
        logger.error("import queue message is not an object; dropped", extra={"body": body[:500]})
        return ["unreadable"]
    if message.get("Event") == "s3:TestEvent":
        return ["test-event"]
    if "import_continuation" in message:
        task = message["import_continuation"]
        if not isinstance(task, dict) or not all(
            isinstance(task.get(k), str) for k in ("workspace", "import_id")
        ):
            logger.error("malformed import continuation; dropped", extra={"body": body[:500]})
            return ["unreadable"]
        return [run(task["workspace"], task["import_id"], deadline, receive_count)]
    if deadline.near():
        # Too late in this invocation to start a file (its validation alone may not fit): put the
        # message back for a fresh invocation rather than fail it into the long visibility wait.
        _enqueue(body)
        return ["deferred"]
    try:
        event = parse(event=message, model=S3Model)
    except ValidationError:
        logger.error("import queue message is not an S3 event; dropped", extra={"body": body[:500]})
        return ["unreadable"]
    outcomes = []
    for record in event.Records:
        if not record.eventName.startswith("ObjectCreated"):
            outcomes.append("ignored")
            continue
        obj = record.s3.object
        if obj is None:
            outcomes.append("ignored")
            continue
        source = Source(
            bucket=record.s3.bucket.name,
            key=unquote_plus(obj.key),  # S3 events URL-encode keys, with '+' for a space
            size=int(obj.size or 0),
            version=obj.versionId or None,
            etag=obj.eTag or None,
        )
        outcomes.append(import_object(source, deadline, receive_count))
    return outcomes


def continuation_message(workspace: str, import_id: str) -> str:
    return json.dumps({"import_continuation": {"workspace": workspace, "import_id": import_id}})


# --- a new object -----------------------------------------------------------------------------
def import_object(source: Source, deadline: Deadline, receive_count: int = 1) -> str:
    drop = DropKey.parse(source.key, settings().drop_prefix)
    if isinstance(drop, str):
        logger.warning("dropped file ignored", extra={"key": source.key, "reason": drop})
        return "ignored"
    if not workspaces.exists(drop.workspace):
        logger.warning(
            "dropped file refused: unknown workspace",
            extra={"key": source.key, "workspace": drop.workspace},
        )
        return "refused"
    import_id = import_id_of(source.bucket, source.key, source.version or source.etag or "")
    existing = import_store.get(drop.workspace, import_id)
    if existing is not None:
        if existing["status"] in import_store.TERMINAL:
            logger.info("file already imported; delivery ignored", extra={"import_id": import_id})
            return "duplicate"
        return run(drop.workspace, import_id, deadline, receive_count)
    with _downloaded(source, drop.format) as (path, metadata):
        if path is None:
            logger.warning("dropped file is gone; nothing to import", extra={"key": source.key})
            return "gone"
        options = ImportOptions.from_metadata(metadata)
        record: dict[str, Any] = {
            "id": import_id,
            "dataset_name": drop.dataset_name,
            "source": {
                "bucket": source.bucket,
                "key": source.key,
                "size": source.size,
                "version": source.version,
                "etag": source.etag,
            },
            "format": drop.format,
            "mode": options.mode if isinstance(options, ImportOptions) else None,
            "upsert_on": options.upsert_on if isinstance(options, ImportOptions) else None,
            "max_bad_rows": options.max_bad_rows if isinstance(options, ImportOptions) else 0,
            "status": "queued",
            "rows_total": None,
            "rows_imported": 0,
            "rows_rejected": 0,
            "errors": [],
            "created_at": now_iso(),
            "started_at": None,
            "finished_at": None,
        }
        problem = options if isinstance(options, str) else None
        try:
            dataset = _dataset_for(drop.workspace, drop.dataset_name, import_id)
            record["dataset_id"] = dataset.id
        except ApiError as exc:
            record["dataset_id"] = None
            problem = f"the dataset '{drop.dataset_name}' cannot be created: {exc.message}"
        if problem:
            record.update(status="failed", errors=[_error(problem)], finished_at=now_iso())
        stored, created = import_store.create(drop.workspace, record)
        if problem:
            logger.warning("import refused", extra={"import_id": import_id, "reason": problem})
            return "failed"
        if not created and stored["status"] in import_store.TERMINAL:
            return "duplicate"
        return run(drop.workspace, import_id, deadline, receive_count, path=path)


def _dataset_for(workspace: str, name: str, import_id: str) -> Dataset:
    """The workspace's dataset of that name, created (with no columns) when there is none."""
    found = dataset_store.find_by_name(workspace, name)
    if found is not None:
        return found
    with suppress(DatasetNameTaken):  # another file for the same new dataset won the race
        dataset_logic.create_dataset(workspace, CreateDataset(name=name))
    found = dataset_store.find_by_name(workspace, name)
    if found is None:  # pragma: no cover - created and deleted within this instant
        raise DatasetNameTaken(name)
    return found


@contextmanager
def _downloaded(source: Source, file_format: str) -> Iterator[tuple[str | None, dict[str, str]]]:
    """A local copy of exactly the version the event names (None if it is gone) and its metadata."""
    kwargs: dict[str, Any] = {"Bucket": source.bucket, "Key": source.key}
    if source.version:
        kwargs["VersionId"] = source.version
    try:
        response = aws.client("s3").get_object(**kwargs)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "NoSuchVersion", "404", "InvalidArgument"):
            yield None, {}
            return
        raise
    suffix = "." + file_format
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        shutil.copyfileobj(response["Body"], handle, 1024 * 1024)
        handle.flush()
        yield handle.name, dict(response.get("Metadata") or {})


# --- running an import ------------------------------------------------------------------------
def run(
    workspace: str, import_id: str, deadline: Deadline, receive_count: int = 1, *, path: str | None = None
) -> str:
    """Validate and/or write as much of an import as this invocation can; the outcome."""
    logger.append_keys(import_id=import_id, workspace=workspace)
    owner = uuid.uuid4().hex
    record = import_store.acquire(
        workspace,
        import_id,
        owner,
        now=int(time.time()),
        until=deadline.lease_until(),
        started_at=now_iso(),
    )
    if record is None:
        current = import_store.get(workspace, import_id)
        if current is None or current["status"] in import_store.TERMINAL:
            return "duplicate"
        # Another invocation holds it; it finishes or hands over through its own message.
        return "busy"
    try:
        if path is not None:
            return _work(workspace, record, owner, path, deadline)
        source = Source(
            record["source"]["bucket"],
            record["source"]["key"],
            int(record["source"].get("size") or 0),
            record["source"].get("version"),
            record["source"].get("etag"),
        )
        with _downloaded(source, record["format"]) as (local, _metadata):
            if local is None:
                raise ImportFailed([_error("the file was deleted before its import finished")])
            return _work(workspace, record, owner, local, deadline)
    except ImportFailed as exc:
        _fail(workspace, record, owner, exc)
        return "failed"
    except import_store.LostLease:
        logger.warning("import taken over by another invocation", extra={"import_id": import_id})
        return "busy"
    except Exception as exc:
        if receive_count >= MAX_RECEIVES:
            logger.exception("import abandoned after repeated failures", extra={"import_id": import_id})
            _fail(workspace, record, owner, ImportFailed([_error(_storage_message(exc))]))
            return "failed"
        _release_quietly(workspace, import_id, owner)
        raise


def _storage_message(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return f"{exc.message} (the import was retried {MAX_RECEIVES} times; nothing of it was kept)"
    return f"the import failed {MAX_RECEIVES} times on an internal error; nothing of it was kept"


def _release_quietly(workspace: str, import_id: str, owner: str) -> None:
    try:
        import_store.release(workspace, import_id, owner)
    except Exception:  # noqa: BLE001 - the lease lapses by itself; the retry must still happen
        logger.exception("could not release import lease", extra={"import_id": import_id})


def _work(workspace: str, record: dict[str, Any], owner: str, path: str, deadline: Deadline) -> str:
    try:
        reader = open_reader(path, record["format"], CHUNK_ROWS)
        validated_now = "plan" not in record
        if validated_now:
            record = _validate(workspace, record, owner, reader)
        # A run that spent its time validating may hand the writing over before the first chunk.
        return _write(workspace, record, owner, reader, deadline, may_stop=validated_now)
    except FileProblem as exc:
        raise ImportFailed(
            [_error(f"the file cannot be imported: {exc.message}", exc.column, exc.row)]
        ) from exc
    except import_store.DatasetMoved as exc:
        raise ImportFailed([_error("the dataset was deleted while the file was being imported")]) from exc


# --- validation -------------------------------------------------------------------------------
def _targets(reader: Reader, dataset: Dataset, upsert_on: str | None) -> list[dict[str, Any]]:
    """Each file column's dataset column: ``{source, name, type, attr (None: new), kind}``."""
    known = {column.name: column for column in dataset.columns}
    detected: dict[str, ColumnType | None] = {}
    kinds: dict[str, Kind] = {}
    if reader.style == "arrow":
        kinds = dict(reader.kinds)  # type: ignore[union-attr]
        names = list(kinds)
        for name, kind in kinds.items():
            detected[name] = natural_type(kind)
    elif reader.style == "text":
        names = list(reader.header)  # type: ignore[union-attr]
        text_types = {name: TextTypes() for name in names if name not in known}
        for chunk in reader.chunks():
            for name, detector in text_types.items():
                for cell in chunk.columns[name]:
                    detector.add(cell)
        detected = {name: detector.result() for name, detector in text_types.items()}
    else:
        json_types: dict[str, JsonTypes] = {}
        for chunk in reader.chunks():
            for name, cells in chunk.columns.items():
                json_detector = json_types.setdefault(name, JsonTypes())
                if name not in known:
                    for value in cells:
                        json_detector.add(value)
        names = list(json_types)
        detected = {name: detector.result() for name, detector in json_types.items()}
    targets: list[dict[str, Any]] = []
    spelled: dict[str, str] = {}  # column name (NFC) → the file's name for it
    for source in names:
        name = normal_name(source)  # as the rows API stores names: one spelling per look
        problem = column_name_problem(name)
        if problem:
            raise FileProblem(f"column '{name}' cannot be imported: {problem}", column=name)
        if name in spelled:
            raise FileProblem(f"the file names column '{name}' twice (in two Unicode spellings)", column=name)
        spelled[name] = source
        if name in known:
            column = known[name]
            column_type = column.type
            if source in kinds and not fits(kinds[source], column_type):
                raise FileProblem(
                    f"column '{name}' holds {kinds[source].value} values, but the dataset's "
                    f"'{name}' column is {column_type.value}",
                    column=name,
                )
            targets.append({"source": source, "name": name, "type": column_type.value, "attr": column.attr})
        else:
            new_type = detected.get(source)
            if new_type is not None:  # no value anywhere in the file: no column yet
                targets.append({"source": source, "name": name, "type": new_type.value, "attr": None})
    if upsert_on is not None:
        if upsert_on not in dataset.ready_indexes:
            raise FileProblem(
                f"upsert-on must name a dataset column with a ready index; '{upsert_on}' is not one",
                column=upsert_on,
            )
        if upsert_on not in spelled:
            raise FileProblem(f"the file has no '{upsert_on}' column to upsert on", column=upsert_on)
    total = len(known) + sum(1 for target in targets if target["attr"] is None)
    if total > settings().max_columns:
        raise FileProblem(
            f"the dataset would have {total} columns; at most {settings().max_columns} are allowed"
        )
    return targets


def _convert(
    chunk: Chunk, targets: list[dict[str, Any]], style: str, upsert_on: str | None
) -> convert.Converted:
    converted = convert.Converted(chunk.size, range(chunk.first_row, chunk.first_row + chunk.size), [])
    converted.flag(None, list(chunk.problems.items()))
    for target in targets:
        column_type = ColumnType(target["type"])
        cells = chunk.column(target["source"])
        if style == "arrow":
            stored, problems = convert.arrow_column(cells, column_type)
        elif style == "text":
            stored, problems = convert.text_column(cells, column_type)
        else:
            stored, problems = convert.json_column(cells, column_type)
        converted.columns.append(stored)
        converted.flag(target["name"], [(p, f"{m} ({column_type.value} column)") for p, m in problems])
        if target["name"] == upsert_on:
            missing = [(p, "the upsert column has no value") for p, v in enumerate(stored) if v is None]
            converted.flag(upsert_on, missing)
    converted.flag(None, convert.oversized(converted.columns, chunk.size))
    return converted


def _validate(workspace: str, record: dict[str, Any], owner: str, reader: Reader) -> dict[str, Any]:
    dataset = dataset_store.get(workspace, record["dataset_id"])
    upsert_on = record.get("upsert_on")
    targets = _targets(reader, dataset, upsert_on)
    errors: list[dict[str, Any]] = []
    rows_total = bad = 0
    for chunk in reader.chunks():
        converted = _convert(chunk, targets, reader.style, upsert_on)
        rows_total += chunk.size
        bad += len(converted.problems)
        for position in sorted(converted.problems):
            if len(errors) >= MAX_ERRORS:
                break
            column, message = converted.problems[position]
            errors.append(_error(message, column, chunk.first_row + position))
    allowed = int(record.get("max_bad_rows") or 0)
    if bad > allowed:
        raise ImportFailed(errors, rejected=bad, rows_total=rows_total)
    good = rows_total - bad
    dataset, targets = _grow(dataset, targets)
    mode = record.get("mode") or "append"
    if upsert_on is None and good:
        try:
            workspaces.reserve_rows(workspace, good)
        except PlanLimitExceeded as exc:
            raise ImportFailed([_error(exc.message)], rejected=bad, rows_total=rows_total) from exc
    try:
        if mode == "replace":
            generation = dataset_store.allocate_generation(workspace, dataset.id)
            row_start = 0
        else:
            generation = dataset.generation
            row_start = (
                dataset_store.allocate_row_indexes(workspace, dataset.id, rows_total) if rows_total else 0
            )
        plan = {
            "targets": targets,
            "generation": generation,
            "row_start": row_start,
            "good": good,
            "reserved": good if upsert_on is None else 0,
            "shards": dataset.shards,
        }
        changes = {
            "plan": plan,
            "checkpoint": {"row": 0},
            "rows_total": rows_total,
            "rows_rejected": bad,
            "errors": errors,
        }
        import_store.save(workspace, record["id"], owner, changes)
    except BaseException:
        if upsert_on is None and good:
            workspaces.release_rows(workspace, good)
        raise
    return {**record, **changes}


def _grow(dataset: Dataset, targets: list[dict[str, Any]]) -> tuple[Dataset, list[dict[str, Any]]]:
    """Add the file's new columns to the dataset; targets with every ``attr`` assigned."""
    new = [target for target in targets if target["attr"] is None]
    if not new:
        return dataset, targets
    attrs = {target["name"]: f"c{dataset.next_column + offset}" for offset, target in enumerate(new)}
    columns = [*dataset.columns, *(Column(t["name"], ColumnType(t["type"]), attrs[t["name"]]) for t in new)]
    # A concurrent schema change raises Conflict: the message is retried and re-validated.
    dataset = dataset_store.save_columns(dataset, columns, dataset.next_column + len(new))
    return dataset, [{**t, "attr": t["attr"] or attrs[t["name"]]} for t in targets]


# --- writing ----------------------------------------------------------------------------------
def _write(
    workspace: str, record: dict[str, Any], owner: str, reader: Reader, deadline: Deadline, *, may_stop: bool
) -> str:
    import_id = record["id"]
    plan = record["plan"]
    targets = plan["targets"]
    mode = record.get("mode") or "append"
    upsert_on = record.get("upsert_on")
    dataset = dataset_store.get(workspace, record["dataset_id"])
    generation, row_start = int(plan["generation"]), int(plan["row_start"])
    # Rows written twice (a replayed chunk) must be identical: their timestamps too.
    at = record.get("started_at") or now_iso()
    checkpoint = record.get("checkpoint") or {"row": 0}
    if mode == "replace":
        # From here until the swap, row writes to the dataset are refused (README "Concurrency").
        import_store.set_replacing(workspace, dataset.id, import_id)
    # Every run writes at least one chunk before it may hand over, so an import always advances.
    wrote = may_stop
    for chunk in reader.chunks(checkpoint if len(checkpoint) > 1 else None):
        if wrote and deadline.near():
            import_store.release(workspace, import_id, owner)
            _enqueue(continuation_message(workspace, import_id))
            logger.info(
                "import continues in a new invocation", extra={"import_id": import_id, "at": chunk.start}
            )
            return "continued"
        converted = _convert(chunk, targets, reader.style, upsert_on)
        positions = converted.good_positions()
        if upsert_on is not None:
            _upsert(workspace, dataset, targets, converted, positions, upsert_on)
        elif positions:
            indexes = [row_start + chunk.first_row - 1 + position for position in positions]
            seeds = [convert.row_seed(import_id, chunk.first_row + position) for position in positions]
            ids = convert.row_ids(indexes, seeds)
            items = convert.build_items(dataset, generation, targets, converted, positions, indexes, ids, at)
            # Logged before written, like every write: the replica's readers fetch these rows.
            changelog.record(dataset, changelog.spans_of(indexes), f"import:{import_id}", generation)
            row_store.batch_write(row_store.put_requests(items))
        import_store.commit_chunk(
            workspace,
            import_id,
            owner,
            expected_row=int(checkpoint["row"]),
            checkpoint=chunk.end,
            written=len(positions),
            lease_until=deadline.lease_until(),
            dataset_id=dataset.id if mode == "append" and upsert_on is None else None,
        )
        checkpoint = chunk.end
        wrote = True
    _finish(workspace, record, owner, dataset, generation)
    return "succeeded"


def _upsert(
    workspace: str,
    dataset: Dataset,
    targets: list[dict[str, Any]],
    converted: convert.Converted,
    positions: list[int],
    column: str,
) -> None:
    from ..logic import upsert  # the index engine's merge path: the same rules as the rows API

    principal = auth.Principal(workspace, "import", frozenset())
    rows = []
    for position in positions:
        row = {}
        for target, stored in zip(targets, converted.columns, strict=True):
            value = stored[position]
            if value is not None:
                row[target["name"]] = values.from_store(value, target["type"])
        rows.append(row)
    for start in range(0, len(rows), _UPSERT_SLICE):
        upsert.upsert(principal, dataset.id, rows[start : start + _UPSERT_SLICE], column)


def _enqueue(body: str) -> None:
    aws.client("sqs").send_message(QueueUrl=settings().import_queue_url, MessageBody=body)


def _finish(workspace: str, record: dict[str, Any], owner: str, dataset: Dataset, generation: int) -> None:
    outcome = {"status": "succeeded", "finished_at": now_iso()}
    if (record.get("mode") or "append") != "replace":
        import_store.finish(workspace, record["id"], owner, outcome)
        return
    good = int(record["plan"]["good"])
    for _ in range(_SWAP_RETRIES):
        old_generation = dataset.generation
        try:
            import_store.swap_generation(
                workspace,
                record["id"],
                owner,
                dataset,
                generation=generation,
                rows=good,
                next_row_index=int(record["rows_total"] or 0),
                outcome=outcome,
            )
        except import_store.DatasetMoved:
            # An old row was deleted meanwhile (its count moved): read the counts again.
            dataset = dataset_store.get(workspace, dataset.id)
            continue
        purge.request_generation(workspace, dataset.id, dataset.shards, old_generation)
        return
    raise import_store.DatasetMoved


def _fail(workspace: str, record: dict[str, Any], owner: str, failure: ImportFailed) -> None:
    """End the import as failed, taking back whatever of it was written."""
    current = import_store.get(workspace, record["id"]) or record
    plan = current.get("plan")
    if plan:
        _undo(workspace, current, plan)
    changes: dict[str, Any] = {
        "status": "failed",
        "finished_at": now_iso(),
        "errors": failure.errors[:MAX_ERRORS],
        "rows_imported": 0 if plan and current.get("upsert_on") is None else current.get("rows_imported", 0),
    }
    if failure.rows_total is not None:
        changes["rows_total"] = failure.rows_total
        changes["rows_rejected"] = failure.rejected
    try:
        import_store.finish(workspace, record["id"], owner, changes)
    except import_store.LostLease:
        logger.warning("import failed but another invocation owns it now", extra={"import_id": record["id"]})
    logger.warning("import failed", extra={"import_id": record["id"], "errors": failure.errors[:3]})


def _undo(workspace: str, record: dict[str, Any], plan: dict[str, Any]) -> None:
    """Remove the rows of a failed import (their keys are known) and give back what it counted.

    When the dataset was deleted meanwhile, its delete already gave back the rows the import
    had counted; only the rest of the reservation goes back, and the rows are removed anyway.
    """
    if record.get("upsert_on") is not None:
        return  # merged rows are regular writes of the rows API; they stay
    dataset_id = record["dataset_id"]
    reserved = int(plan.get("reserved", 0))
    imported = int(record.get("rows_imported") or 0)
    shards = int(plan.get("shards") or 1)
    if record.get("mode") == "replace":
        dataset_store.clear_replacing(workspace, dataset_id, record["id"])
        purge.request_generation(workspace, dataset_id, shards, int(plan["generation"]))
        workspaces.release_rows(workspace, reserved)
        return
    start, generation = int(plan["row_start"]), int(plan["generation"])
    keys = [
        {"pk": f"{dataset_id}#{generation}.{index % shards}", "sk": index}
        for index in range(start, start + int(record.get("rows_total") or 0))
    ]
    row_store.batch_write(row_store.delete_requests(keys))
    try:
        dataset_store.add_row_count(workspace, dataset_id, -imported)
    except DatasetNotFound:
        reserved -= imported
    workspaces.release_rows(workspace, reserved)
