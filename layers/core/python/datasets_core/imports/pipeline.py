"""The import of one dropped file, from queue message to rows (SPEC §7).

1. **Identify.** An upload made through ``POST .../uploads`` carries the import id it was
   promised (``x-amz-meta-import-id``); any other object's id is a digest of (bucket, key,
   version) — or (bucket, key, ETag, sequencer) where the bucket names no version — so every
   delivery of one S3 event is the same import and a new PUT is a new one. A finished import
   is never redone; an unfinished one is taken over through a lease on its record.
2. **Detect** (CSV with new columns, JSON Lines): one pass over the whole file votes on each
   new column's type (``validate.Detection``, by majority), unless ``types`` settles it.
3. **Convert**: a second pass converts every row with the decided types and counts the bad
   ones; good rows go to staging parts (``staging``), one per ``IMPORT_PART_ROWS`` rows. More
   bad rows than ``max-bad-rows`` fails the import with a ``reason`` and the first 100
   errors, having written nothing: not a row, not a column, not a dataset. With ``preview``
   the import stops here until ``POST /v1/imports/{id}/commit``.
4. **Prepare**: reserve the rows against the plan, create the dataset (if the file is its
   first) with the file's columns, add new columns, allocate the row indexes (``append``) or
   a new generation (``replace``, which from now on refuses row writes with 409), and a
   snapshot version.
5. **Write**: one message per staging part on the import queue; concurrent invocations write
   the chunks (``chunks``), each counted once; the one completing the set finishes the
   import (a new snapshot version from the file's rows, or the generation swap).

Steps 2 and 3 checkpoint between chunks and continue in a new invocation when the Lambda
deadline nears (a continuation message), so a file of any size is validated in bounded runs.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import S3Model
from botocore.exceptions import ClientError
from msgspec import Struct

from .. import aws, jsonutil, values
from ..config import settings
from ..deadline import Deadline
from ..errors import ApiError, DatasetNameTaken, DatasetNotFound, PlanLimitExceeded
from ..models import ColumnType, CreateDataset
from ..observability import logger
from ..records import Column, Dataset
from ..replica import layout
from ..store import changelog, workspaces
from ..store import datasets as dataset_store
from ..store import imports as import_store
from ..timeutil import now_iso
from . import chunks, staging, validate
from .models import IMPORT_ID, META_IMPORT_ID, DropKey, ImportOptions, import_id_of
from .readers import CHUNK_ROWS, FileProblem, Reader, open_reader
from .validate import MAX_ERRORS, ImportFailed, error

MAX_RECEIVES = chunks.MAX_RECEIVES
PREVIEW_ROWS = 20
PREVIEW_BYTES = 64 * 1024
PREVIEW_DAYS = 7  # as long as staging parts live (infra/storage.py STAGING_RETENTION)
# More chunks than this would outgrow the import record (400 KB; a chunk adds ~100 bytes); at
# the default part size that is a file of 100,000,000 rows (chunk-rows raises it).
MAX_CHUNKS = 1000
# A file for a dataset that a replace import is writing waits this long between tries.
WAIT_SECONDS = 30
_SEND_BATCH = 10


class Source(Struct, frozen=True):
    bucket: str
    key: str
    size: int
    version: str | None
    etag: str | None
    sequencer: str | None = None


class _Wait(Exception):
    """The dataset is busy with a replace import: try again in a while."""


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
    if "import_continuation" in message or "import_chunk" in message:
        task = message.get("import_continuation") or message.get("import_chunk")
        if not isinstance(task, dict) or not all(
            isinstance(task.get(k), str) for k in ("workspace", "import_id")
        ):
            logger.error("malformed import task; dropped", extra={"body": body[:500]})
            return ["unreadable"]
        if "import_chunk" in message:
            number = task.get("chunk")
            if not isinstance(number, int) or number < 0:
                logger.error("malformed import chunk; dropped", extra={"body": body[:500]})
                return ["unreadable"]
            # A chunk is bounded work (one staging part) and starts its own invocation
            # (batch size 1): it always fits.
            return [chunks.run(task["workspace"], task["import_id"], number, deadline, receive_count)]
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
            sequencer=obj.sequencer or None,
        )
        outcomes.append(import_object(source, deadline, receive_count))
    return outcomes


def continuation_message(workspace: str, import_id: str) -> str:
    return json.dumps({"import_continuation": {"workspace": workspace, "import_id": import_id}})


def _enqueue(body: str, delay_seconds: int = 0) -> None:
    aws.client("sqs").send_message(
        QueueUrl=settings().import_queue_url, MessageBody=body, DelaySeconds=delay_seconds
    )


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
    metadata = _metadata(source)
    if metadata is None:
        logger.warning("dropped file is gone; nothing to import", extra={"key": source.key})
        return "gone"
    import_id = _import_id(drop.workspace, source, metadata)
    existing = import_store.get(drop.workspace, import_id)
    if existing is not None and not existing.get("awaiting"):
        if existing["status"] in import_store.TERMINAL:
            logger.info("file already imported; delivery ignored", extra={"import_id": import_id})
            return "duplicate"
        return run(drop.workspace, import_id, deadline, receive_count)
    options = ImportOptions.from_metadata(metadata)
    problem = options if isinstance(options, str) else None
    chosen = options if isinstance(options, ImportOptions) else ImportOptions()
    found = dataset_store.find_by_name(drop.workspace, drop.dataset_name)
    record: dict[str, Any] = {
        "id": import_id,
        # An upload was promised into a dataset (by id: a rename meanwhile changes nothing).
        "dataset_id": (existing or {}).get("dataset_id") or (found.id if found is not None else None),
        "dataset_name": drop.dataset_name,
        "source": {
            "bucket": source.bucket,
            "key": source.key,
            "size": source.size,
            "version": source.version,
            "etag": source.etag,
            "sequencer": source.sequencer,
        },
        "format": drop.format,
        "mode": chosen.mode if problem is None else None,
        "upsert_on": chosen.upsert_on,
        "max_bad_rows": chosen.max_bad_rows,
        "types": chosen.types or None,
        "preview": chosen.preview,
        "chunk_rows": chosen.chunk_rows,
        "status": "queued",
        "stage": "detect",
        "reason": None,
        "rows_total": None,
        "rows_imported": 0,
        "rows_rejected": 0,
        "errors": [],
        "created_at": existing["created_at"] if existing is not None else now_iso(),
        "started_at": None,
        "finished_at": None,
    }
    if problem:
        record.update(
            status="failed", stage="failed", reason=problem, errors=[error(problem)], finished_at=now_iso()
        )
        if found is None:
            record["expires_at_epoch"] = int(time.time()) + import_store.ORPHAN_REPORT_DAYS * 86400
    if existing is not None:
        if not import_store.claim_upload(drop.workspace, import_id, record):
            return import_object(source, deadline, receive_count)  # claimed meanwhile: as a known import
    else:
        stored, created = import_store.create(drop.workspace, record)
        if not created:
            return "duplicate" if stored["status"] in import_store.TERMINAL else "busy"
    if problem:
        logger.warning("import refused", extra={"import_id": import_id, "reason": problem})
        return "failed"
    return run(drop.workspace, import_id, deadline, receive_count)


def _import_id(workspace: str, source: Source, metadata: dict[str, str]) -> str:
    promised = {name.lower(): value for name, value in metadata.items()}.get(META_IMPORT_ID, "").strip()
    if promised and IMPORT_ID.match(promised):
        record = import_store.get(workspace, promised)
        # The promise holds for the key it was made for (a copied header names nothing else).
        if record is not None and record.get("source", {}).get("key") == source.key:
            return promised
    return import_id_of(source.bucket, source.key, source.version, source.etag, source.sequencer)


def _object_args(source: Source) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"Bucket": source.bucket, "Key": source.key}
    if source.version:
        kwargs["VersionId"] = source.version
    elif source.etag:
        # No version to name: insist on the bytes the event announced (a later PUT of the key is
        # an import of its own).
        kwargs["IfMatch"] = f'"{source.etag}"'
    return kwargs


def _gone(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "NoSuchVersion", "404", "InvalidArgument", "PreconditionFailed", "412")


def _metadata(source: Source) -> dict[str, str] | None:
    """The user metadata of exactly the object the event names (None: it is gone)."""
    try:
        head = aws.client("s3").head_object(**_object_args(source))
    except ClientError as exc:
        if _gone(exc):
            return None
        raise
    return dict(head.get("Metadata") or {})


@contextmanager
def _downloaded(source: Source, file_format: str) -> Iterator[str | None]:
    """A local copy of exactly the object the event names (None if it is gone)."""
    try:
        response = aws.client("s3").get_object(**_object_args(source))
    except ClientError as exc:
        if _gone(exc):
            yield None
            return
        raise
    with tempfile.NamedTemporaryFile(suffix="." + file_format) as handle:
        shutil.copyfileobj(response["Body"], handle, 1024 * 1024)
        handle.flush()
        yield handle.name


def _source_of(record: dict[str, Any]) -> Source:
    src = record["source"]
    return Source(
        src["bucket"],
        src["key"],
        int(src.get("size") or 0),
        src.get("version"),
        src.get("etag"),
        src.get("sequencer"),
    )


# --- running an import ------------------------------------------------------------------------
def run(workspace: str, import_id: str, deadline: Deadline, receive_count: int = 1) -> str:
    """Take an import as far as this invocation can; the outcome."""
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
        return _advance(workspace, record, owner, deadline)
    except ImportFailed as exc:
        _fail(workspace, record, owner, exc)
        return "failed"
    except import_store.LostLease:
        logger.warning("import taken over by another invocation", extra={"import_id": import_id})
        return "busy"
    except Exception as exc:
        if receive_count >= MAX_RECEIVES:
            logger.exception("import abandoned after repeated failures", extra={"import_id": import_id})
            _fail(workspace, record, owner, ImportFailed([error(chunks.storage_message(exc))]))
            return "failed"
        _release_quietly(workspace, import_id, owner)
        raise


def _release_quietly(workspace: str, import_id: str, owner: str) -> None:
    try:
        import_store.release(workspace, import_id, owner)
    except Exception:  # noqa: BLE001 - the lease lapses by itself; the retry must still happen
        logger.exception("could not release import lease", extra={"import_id": import_id})


def _hand_over(workspace: str, import_id: str, owner: str, delay_seconds: int = 0) -> None:
    import_store.release(workspace, import_id, owner)
    _enqueue(continuation_message(workspace, import_id), delay_seconds)


def _advance(workspace: str, record: dict[str, Any], owner: str, deadline: Deadline) -> str:
    stage = record.get("stage") or "detect"
    if stage in ("detect", "convert"):
        with _downloaded(_source_of(record), record["format"]) as path:
            if path is None:
                raise ImportFailed([error("the file was deleted (or replaced) before its import finished")])
            try:
                reader = open_reader(path, record["format"], CHUNK_ROWS)
                if stage == "detect":
                    detected = _detect(workspace, record, owner, reader, deadline)
                    if detected is None:
                        return "continued"
                    record = detected
                converted = _convert(workspace, record, owner, reader, deadline)
            except FileProblem as exc:
                message = f"the file cannot be imported: {exc.message}"
                raise ImportFailed([error(message, exc.column, exc.row)], reason=message) from exc
            if converted is None:
                return "continued"
            record = converted
    stage = record.get("stage")
    if stage == "preview":
        import_store.release(workspace, record["id"], owner)
        return "preview"
    if stage == "prepare":
        prepared = _prepare(workspace, record, owner)
        if prepared is None:
            return "waiting"
        record = prepared
    return _fan_out(workspace, record, owner, deadline)


def _dataset_of(workspace: str, record: dict[str, Any]) -> Dataset | None:
    if not record.get("dataset_id"):
        return None
    try:
        return dataset_store.get(workspace, str(record["dataset_id"]))
    except DatasetNotFound as exc:
        message = "the dataset was deleted while the file was being imported"
        raise ImportFailed([error(message)], reason=message) from exc


# --- detect ------------------------------------------------------------------------------------
def _detect(
    workspace: str, record: dict[str, Any], owner: str, reader: Reader, deadline: Deadline
) -> dict[str, Any] | None:
    """Vote on the types of the file's new columns (or hand over); the record with its targets."""
    dataset = _dataset_of(workspace, record)
    types = dict(record.get("types") or {})
    checkpoint = record.get("checkpoint") or {}
    detection = None
    if validate.needs_detection(reader, dataset, types):
        detection = validate.Detection(reader.style, checkpoint.get("detection"))
        settled = validate.settled_columns(dataset, types)
        advanced = False
        for chunk in reader.chunks(checkpoint.get("position")):
            if advanced and deadline.near():
                state = {"position": chunk.start, "detection": detection.state()}
                import_store.save(workspace, record["id"], owner, {"checkpoint": state})
                _hand_over(workspace, record["id"], owner)
                return None
            detection.add(chunk, settled)
            advanced = True
    found = validate.targets(reader, dataset, record.get("upsert_on"), types, detection)
    changes = {"stage": "convert", "targets": found, "checkpoint": {}}
    import_store.save(workspace, record["id"], owner, changes)
    return {**record, **changes}


# --- convert -----------------------------------------------------------------------------------
class _Staging:
    """Good rows gathered into staging parts of ``IMPORT_PART_ROWS`` rows."""

    def __init__(
        self,
        workspace: str,
        import_id: str,
        found: list[dict[str, Any]],
        state: dict[str, Any],
        part_rows: int | None = None,
    ):
        self.workspace, self.import_id, self.found = workspace, import_id, found
        self.part_rows = part_rows or settings().import_part_rows
        self.ranges: list[list[int]] = [list(r) for r in state.get("ranges", [])]
        self.rows: list[int] = []
        self.columns: list[list[Any]] = [[] for _ in found]

    def add(self, first: int, positions: list[int], columns: list[list[Any]], size: int) -> None:
        if len(positions) == size:
            self.rows.extend(range(first, first + size))
            for cells, column in zip(self.columns, columns, strict=True):
                cells.extend(column)
        else:
            self.rows.extend(first + position for position in positions)
            for cells, column in zip(self.columns, columns, strict=True):
                cells.extend(column[position] for position in positions)
        while len(self.rows) >= self.part_rows:
            self.flush(self.part_rows)

    def flush(self, size: int | None = None) -> None:
        """Write the first ``size`` gathered rows (all of them by default) as the next part."""
        if not self.rows:
            return
        if len(self.ranges) >= MAX_CHUNKS:
            message = (
                f"the file has too many rows: at most {MAX_CHUNKS * self.part_rows} "
                f"in chunks of {self.part_rows}"
            )
            raise ImportFailed([error(message)], reason=message)
        size = len(self.rows) if size is None else size
        rows, columns = self.rows[:size], [cells[:size] for cells in self.columns]
        staging.write(self.workspace, self.import_id, len(self.ranges), self.found, rows, columns)
        self.ranges.append([rows[0], rows[-1]])
        self.rows = self.rows[size:]
        self.columns = [cells[size:] for cells in self.columns]


def _convert(
    workspace: str, record: dict[str, Any], owner: str, reader: Reader, deadline: Deadline
) -> dict[str, Any] | None:
    """Convert every row into staging parts and count the bad ones (or hand over)."""
    found: list[dict[str, Any]] = record["targets"]
    upsert_on = record.get("upsert_on")
    state = dict(record.get("checkpoint") or {})
    parts = _Staging(workspace, record["id"], found, state, record.get("chunk_rows"))
    rows_total, bad = int(state.get("rows", 0)), int(state.get("bad", 0))
    errors: list[dict[str, Any]] = list(state.get("errors", []))
    bad_by_column: dict[str, int] = dict(state.get("bad_by_column", {}))
    preview: list[dict[str, Any]] = list(state.get("preview", []))
    advanced = False
    for chunk in reader.chunks(state.get("position")):
        if advanced and deadline.near():
            parts.flush()
            state = {
                "position": chunk.start,
                "ranges": parts.ranges,
                "rows": rows_total,
                "bad": bad,
                "errors": errors,
                "bad_by_column": bad_by_column,
                "preview": preview,
            }
            import_store.save(workspace, record["id"], owner, {"checkpoint": state})
            _hand_over(workspace, record["id"], owner)
            return None
        converted = validate.convert_chunk(chunk, found, reader.style, upsert_on)
        first = chunk.first_row - 1  # reports and staging number data rows from 0
        rows_total += chunk.size
        bad += len(converted.problems)
        for position in sorted(converted.problems):
            column, message = converted.problems[position]
            if column is not None:  # (problems of a whole row hint at no column's type)
                bad_by_column[column] = bad_by_column.get(column, 0) + 1
            if len(errors) < MAX_ERRORS:
                errors.append(error(message, column, first + position))
        positions = converted.good_positions()
        if len(preview) < PREVIEW_ROWS:
            preview += _preview_rows(found, converted.columns, positions[: PREVIEW_ROWS - len(preview)])
        parts.add(first, positions, converted.columns, chunk.size)
        advanced = True
    parts.flush()
    changes: dict[str, Any] = {
        "rows_total": rows_total,
        "rows_rejected": bad,
        "errors": errors,
        "chunks_total": len(parts.ranges),
        "checkpoint": {"ranges": parts.ranges, "bad_by_column": bad_by_column},
    }
    if record.get("preview") and not record.get("committed"):
        # The preview shows bad rows too: a commit with other types may be what fixes them.
        changes.update(stage="preview", status="queued", preview_data=_preview(found, preview))
        # Uncommitted, it goes when its staging parts expire (the replica bucket's lifecycle).
        changes["expires_at_epoch"] = int(time.time()) + PREVIEW_DAYS * 86400
    else:
        _refuse_bad_rows({**record, **changes})
        changes["stage"] = "prepare"
    import_store.save(workspace, record["id"], owner, changes)
    return {**record, **changes}


def _refuse_bad_rows(record: dict[str, Any]) -> None:
    """``ImportFailed`` when the file has more bad rows than ``max-bad-rows`` allows."""
    bad, total = int(record.get("rows_rejected") or 0), int(record.get("rows_total") or 0)
    allowed = int(record.get("max_bad_rows") or 0)
    if bad > allowed:
        by_column = (record.get("checkpoint") or {}).get("bad_by_column") or {}
        raise ImportFailed(
            list(record.get("errors") or []),
            rejected=bad,
            rows_total=total,
            reason=_bad_rows_reason(bad, total, allowed, record["targets"], by_column),
        )


def _bad_rows_reason(
    bad: int, total: int, allowed: int, found: list[dict[str, Any]], bad_by_column: dict[str, int]
) -> str:
    reason = (
        f"{bad} of the file's {total} rows are bad and max-bad-rows allows {allowed}; nothing was "
        "imported (errors lists the first 100)"
    )
    hints = validate.typing_hints(found, bad_by_column)
    return reason + (". " + "; ".join(hints) if hints else "")


def _preview_rows(
    found: list[dict[str, Any]], columns: list[list[Any]], positions: list[int]
) -> list[dict[str, Any]]:
    return [
        {
            target["name"]: values.from_store(column[position], target["type"])
            for target, column in zip(found, columns, strict=True)
        }
        for position in positions
    ]


def _preview(found: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns = [
        {
            "name": target["name"],
            "type": target["type"],
            "new": target["attr"] is None,
            **({"detected": target["detected"]} if target.get("detected") else {}),
        }
        for target in found
    ]
    # The record stays far below DynamoDB's 400 KB: wide rows shorten the preview.
    while rows and len(jsonutil.dumps(rows)) > PREVIEW_BYTES:
        rows = rows[:-1]
    return {"columns": columns, "rows": jsonutil.loads(jsonutil.dumps(rows))}


# --- prepare ------------------------------------------------------------------------------------
def _prepare(workspace: str, record: dict[str, Any], owner: str) -> dict[str, Any] | None:
    """Reserve, create or grow the dataset, allocate where the rows go; the record ready to write."""
    import_id = record["id"]
    _refuse_bad_rows(record)  # a previewed file is committed as it was validated
    found: list[dict[str, Any]] = record["targets"]
    rows_total = int(record.get("rows_total") or 0)
    good = rows_total - int(record.get("rows_rejected") or 0)
    mode = record.get("mode") or "append"
    upsert_on = record.get("upsert_on")
    reserved = good if upsert_on is None else 0
    if reserved:
        try:
            workspaces.reserve_rows(workspace, reserved)
        except PlanLimitExceeded as exc:
            raise ImportFailed([error(exc.message)], reason=exc.message) from exc
    created = False
    dataset: Dataset | None = None
    try:
        dataset = _dataset_of(workspace, record)
        if dataset is None:
            dataset, created = _dataset_for(workspace, record["dataset_name"], found, good)
            import_store.link_dataset(workspace, import_id, owner, dataset.id, record["created_at"])
        dataset, found = _grow(dataset, found)
        plan: dict[str, Any] = {
            "targets": found,
            "shards": dataset.shards,
            "reserved": reserved,
            "created_dataset": created,
            "at": record.get("started_at") or now_iso(),  # every row of the import: one timestamp
            "chunks": (record.get("checkpoint") or {}).get("ranges", []),
        }
        if upsert_on is None:
            if mode == "replace":
                plan["generation"] = dataset_store.allocate_generation(workspace, dataset.id)
                plan["row_start"] = 0
                try:
                    import_store.set_replacing(workspace, dataset.id, import_id)
                except import_store.DatasetMoved as exc:
                    raise _Wait from exc
            else:
                plan["generation"] = dataset.generation
                try:
                    plan["row_start"] = (
                        dataset_store.allocate_row_indexes(workspace, dataset.id, rows_total)
                        if rows_total
                        else 0
                    )
                except dataset_store.ReplaceInProgress as exc:
                    raise _Wait from exc
                # Before any of its log items: a snapshot cut before this holds none of its rows.
                plan["started_position"] = changelog.now_position()
            plan["version"] = layout.allocate_version(dataset)
        changes = {"stage": "write", "plan": plan, "chunk_info": {}, "dataset_id": dataset.id}
        import_store.save(workspace, import_id, owner, changes)
    except _Wait:
        if reserved:
            workspaces.release_rows(workspace, reserved)
        _hand_over(workspace, import_id, owner, WAIT_SECONDS)
        logger.info("import waits for a replace of its dataset", extra={"import_id": import_id})
        return None
    except DatasetNotFound as exc:
        _give_back(workspace, import_id, reserved, dataset if created else None)
        message = "the dataset was deleted while the file was being imported"
        raise ImportFailed([error(message)], reason=message) from exc
    except ApiError as exc:
        _give_back(workspace, import_id, reserved, dataset if created else None)
        if exc.status >= 500 or exc.status == 409:
            raise  # transient (a concurrent schema change): the message is retried
        message = f"the dataset '{record['dataset_name']}' cannot take the file: {exc.message}"
        raise ImportFailed([error(message)], reason=message) from exc
    except BaseException:
        _give_back(workspace, import_id, reserved, dataset if created else None)
        raise
    return {**record, **changes}


def _give_back(workspace: str, import_id: str, reserved: int, created: Dataset | None) -> None:
    if reserved:
        workspaces.release_rows(workspace, reserved)
    if created is not None:
        chunks.remove_created_dataset(workspace, import_id, created.id)


def _dataset_for(workspace: str, name: str, found: list[dict[str, Any]], rows: int) -> tuple[Dataset, bool]:
    """The workspace's dataset of that name, or a new one with the file's columns (and shards
    for its rows); whether it is new."""
    from ..logic import datasets as dataset_logic

    existing = dataset_store.find_by_name(workspace, name)
    if existing is not None:
        return existing, False
    request = CreateDataset.model_validate(
        {"name": name, "columns": [{"name": t["name"], "type": t["type"]} for t in found]}
    )
    try:
        return dataset_logic.create_dataset(workspace, request, expected_rows=rows), True
    except DatasetNameTaken:  # another file for the same new dataset won the race
        existing = dataset_store.find_by_name(workspace, name)
        if existing is None:  # pragma: no cover - created and deleted within this instant
            raise
        return existing, False


def _grow(dataset: Dataset, found: list[dict[str, Any]]) -> tuple[Dataset, list[dict[str, Any]]]:
    """Add the file's new columns to the dataset; targets with every ``attr`` assigned."""
    known = {column.name: column for column in dataset.columns}
    for target in found:
        column = known.get(target["name"])
        if column is not None and column.type.value != target["type"]:
            # The dataset got this column (another type) from a write since the file was validated.
            message = (
                f"column '{target['name']}' became a {column.type.value} column while the file was "
                f"validated as {target['type']}"
            )
            raise ImportFailed([error(message, target["name"])], reason=message)
    new = [target for target in found if target["name"] not in known]
    if new:
        attrs = {target["name"]: f"c{dataset.next_column + offset}" for offset, target in enumerate(new)}
        columns = [
            *dataset.columns,
            *(Column(t["name"], ColumnType(t["type"]), attrs[t["name"]]) for t in new),
        ]
        # A concurrent schema change raises Conflict: the message is retried and re-prepared.
        dataset = dataset_store.save_columns(dataset, columns, dataset.next_column + len(new))
        known = {column.name: column for column in dataset.columns}
    return dataset, [{**target, "attr": known[target["name"]].attr} for target in found]


# --- write ---------------------------------------------------------------------------------------
def _fan_out(workspace: str, record: dict[str, Any], owner: str, deadline: Deadline) -> str:
    """Send one message per chunk (a file of one chunk is written here and now)."""
    import_id = record["id"]
    total = int(record.get("chunks_total") or 0)
    if total <= 1:
        if total == 1 and 0 not in import_store.done_chunks(record):
            try:
                chunks.write(workspace, record, 0)
            except chunks.ChunkFailed as exc:
                chunks.fail(workspace, import_id, ImportFailed([error(str(exc))]))
                return "failed"
        return chunks.finish_if_complete(workspace, import_id, deadline, owner=owner)
    if not record.get("fanned_out"):
        sqs = aws.client("sqs")
        bodies = [chunks.message(workspace, import_id, number) for number in range(total)]
        for start in range(0, total, _SEND_BATCH):
            batch = bodies[start : start + _SEND_BATCH]
            response = sqs.send_message_batch(
                QueueUrl=settings().import_queue_url,
                Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(batch)],
            )
            if response.get("Failed"):
                raise RuntimeError(f"{len(response['Failed'])} chunk messages were not sent")
        import_store.save(workspace, import_id, owner, {"fanned_out": True})
    import_store.release(workspace, import_id, owner)
    # Chunks that completed the set while this run held the lease could not finish: check again.
    return chunks.finish_if_complete(workspace, import_id, deadline)


# --- failing before the write stage ---------------------------------------------------------------
def _fail(workspace: str, record: dict[str, Any], owner: str, failure: ImportFailed) -> None:
    """End the import as failed. Before its write stage nothing was written but staging parts;
    after it, the chunks' rows are taken back (``chunks.fail``)."""
    current = import_store.get(workspace, record["id"]) or record
    if current.get("plan"):
        chunks.fail(workspace, record["id"], failure)
        return
    changes: dict[str, Any] = {
        "status": "failed",
        "stage": "failed",
        "reason": failure.reason,
        "finished_at": now_iso(),
        "errors": failure.errors[:MAX_ERRORS],
        "rows_imported": 0 if current.get("upsert_on") is None else current.get("rows_imported", 0),
    }
    if failure.rows_total is not None:
        changes["rows_total"] = failure.rows_total
        changes["rows_rejected"] = failure.rejected
    if not current.get("dataset_id"):
        changes["expires_at_epoch"] = int(time.time()) + import_store.ORPHAN_REPORT_DAYS * 86400
    try:
        import_store.finish(workspace, record["id"], owner, changes)
    except import_store.LostLease:
        logger.warning("import failed but another invocation owns it now", extra={"import_id": record["id"]})
    with suppress(Exception):
        staging.remove(workspace, record["id"])
    logger.warning("import failed", extra={"import_id": record["id"], "reason": failure.reason})
