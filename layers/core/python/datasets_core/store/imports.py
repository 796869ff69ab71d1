"""Import records in the ``meta`` table: ``WS#<ws>`` / ``IMP#<import id>``.

Keyed by the workspace, so another workspace's import is simply not found; ``gsi1``
(``WS#<ws>#DS#<dataset id>#IMPORTS``, ``<created_at>#<id>``) lists a dataset's imports.

Besides what the API shows, a record carries the import's private state:

- ``owner`` / ``lease_until`` (epoch seconds): the invocation working on it. Only the owner
  may move the record; a lease that outlived its invocation (a crash) can be taken over.
- ``plan``: what validation decided (target columns, first row index, target generation),
  so a continuation writes exactly what the first run validated.
- ``stage``: where the import is — ``detect`` (tallying types over the whole file),
  ``convert`` (validating and converting into staging parts), ``preview`` (waiting for a
  commit), ``write`` (chunks being written by concurrent invocations), then its outcome.
- ``checkpoint``: the reader position the next run of a stage resumes at, with what the stage
  has gathered so far (type tallies, bad rows, staging parts written).
- The completion set of the write stage: ``chunks_started`` and ``chunks_done`` (number sets)
  and ``chunk_info`` (per chunk: when it ran, its rows, its snapshot part, its change-log
  position). A chunk is counted by the one transaction that adds it to ``chunks_done`` (a
  condition refuses a second), with ``rows_imported`` and the dataset's ``row_count``, so it
  counts exactly once however often it is delivered; whoever completes the set finishes.
"""

from __future__ import annotations

import time
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from ..config import settings
from ..jsonutil import to_native
from ..records import Dataset, ReplicaPointer
from . import datasets as dataset_store
from . import leases, workspaces
from .tables import cancellation_codes, error_code, meta, query_all, ws_pk

TERMINAL = ("succeeded", "failed")
PUBLIC_FIELDS = (
    "id",
    "dataset_id",
    "dataset_name",
    "source",
    "format",
    "mode",
    "upsert_on",
    "max_bad_rows",
    "status",
    "reason",
    "types",
    "preview",
    "rows_total",
    "rows_imported",
    "rows_rejected",
    "errors",
    "created_at",
    "started_at",
    "finished_at",
    "chunks_total",
    "chunks_done",
    "max_concurrent_chunks",
)
# A report of an import that left no dataset (its file failed) is kept this long.
ORPHAN_REPORT_DAYS = 30


class LostLease(Exception):
    """Another invocation owns the import now (or it finished); this one must stop writing."""


class ImportStopped(Exception):
    """The import is no longer writing (it failed, or finished); a chunk must not count."""


def import_key(workspace: str, import_id: str) -> dict[str, str]:
    return {"pk": ws_pk(workspace), "sk": f"IMP#{import_id}"}


def _list_pk(workspace: str, dataset_id: str) -> str:
    return f"WS#{workspace}#DS#{dataset_id}#IMPORTS"


def create(workspace: str, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Store a new record unless one exists; ``(record as stored, created)``."""
    # Unset fields stay absent (not NULL), so ``if_not_exists`` can fill them in later.
    present = {name: value for name, value in record.items() if value is not None}
    item = {**import_key(workspace, record["id"]), **present, "workspace": workspace}
    if record.get("dataset_id"):
        item["gsi1pk"] = _list_pk(workspace, record["dataset_id"])
        item["gsi1sk"] = f"{record['created_at']}#{record['id']}"
    try:
        meta().put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        existing = get(workspace, record["id"])
        if existing is None:  # pragma: no cover - a record is never deleted
            raise
        return existing, False
    return to_native(item), True


def claim_upload(workspace: str, import_id: str, record: dict[str, Any]) -> bool:
    """Fill in the record a presigned upload promised, now that its file arrived (once: False
    when another delivery claimed it first)."""
    present = {name: value for name, value in record.items() if value is not None and name != "id"}
    names = {f"#f{i}": name for i, name in enumerate(present)}
    values = {f":v{i}": value for i, value in enumerate(present.values())}
    try:
        meta().update_item(
            Key=import_key(workspace, import_id),
            UpdateExpression="SET "
            + ", ".join(f"#f{i} = :v{i}" for i in range(len(present)))
            + " REMOVE awaiting"
            + ("" if "expires_at_epoch" in present else ", expires_at_epoch"),
            ConditionExpression="awaiting = :upload",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={**values, ":upload": "upload"},
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def get(workspace: str, import_id: str) -> dict[str, Any] | None:
    item = meta().get_item(Key=import_key(workspace, import_id), ConsistentRead=True).get("Item")
    return to_native(item) if item else None


def status(workspace: str, import_id: str) -> str | None:
    """Just the import's status (a cheap read for chunks that check it as they write)."""
    item = (
        meta()
        .get_item(
            Key=import_key(workspace, import_id),
            ConsistentRead=True,
            ProjectionExpression="#status",
            ExpressionAttributeNames={"#status": "status"},
        )
        .get("Item")
    )
    return str(item["status"]) if item else None


def list_for_dataset(workspace: str, dataset_id: str) -> list[dict[str, Any]]:
    """A dataset's imports, newest first."""
    items = query_all(
        meta(),
        IndexName="gsi1",
        KeyConditionExpression=Key("gsi1pk").eq(_list_pk(workspace, dataset_id)),
        ScanIndexForward=False,
    )
    return [to_native(item) for item in items]


def public(record: dict[str, Any]) -> dict[str, Any]:
    shown = {name: record.get(name) for name in PUBLIC_FIELDS}
    done = record.get("chunks_done")
    if isinstance(done, (set, frozenset, list)):
        shown["chunks_done"] = len(done)
    elif record.get("chunks_total") is not None:
        shown["chunks_done"] = 0
    shown["preview"] = bool(record.get("preview"))
    return shown


def done_chunks(record: dict[str, Any]) -> set[int]:
    return {int(k) for k in record.get("chunks_done") or ()}


def acquire(
    workspace: str, import_id: str, owner: str, *, now: int, until: int, started_at: str
) -> dict[str, Any] | None:
    """Take the lease of an unfinished import nobody else holds; the record, or None."""
    return leases.take(
        import_key(workspace, import_id),
        owner,
        until=until,
        now=now,
        also=", started_at = if_not_exists(started_at, :at)",
        also_values={":at": started_at},
    )


def _update(
    workspace: str, import_id: str, owner: str, changes: dict[str, Any], remove: tuple[str, ...] = ()
) -> dict[str, Any]:
    names = {"#owner": "owner", **{f"#f{i}": name for i, name in enumerate(changes)}}
    names.update({f"#r{i}": name for i, name in enumerate(remove)})
    values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(changes.values())}
    values[":owner"] = owner
    parts = []
    if changes:
        parts.append("SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(changes))))
    if remove:
        parts.append("REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove))))
    return {
        "TableName": settings().meta_table,
        "Key": import_key(workspace, import_id),
        "UpdateExpression": " ".join(parts),
        "ConditionExpression": "#owner = :owner",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def save(workspace: str, import_id: str, owner: str, changes: dict[str, Any]) -> None:
    """Change fields of an import this invocation owns (``LostLease`` otherwise)."""
    _run([{"Update": _update(workspace, import_id, owner, changes)}])


def release(workspace: str, import_id: str, owner: str) -> None:
    """Give the lease up so that a continuation (or a redelivery) can take the import over."""
    _run([{"Update": _update(workspace, import_id, owner, {"lease_until": 0}, remove=("owner",))}])


# Private working state, dropped when an import ends.
WORKING_STATE = (
    "owner",
    "lease_until",
    "plan",
    "checkpoint",
    "chunks_started",
    "chunk_info",
    "preview_data",
    "targets",
    "fanned_out",
)


def finish(workspace: str, import_id: str, owner: str, changes: dict[str, Any]) -> None:
    """Record the outcome and drop the private working state."""
    update = _update(workspace, import_id, owner, changes, remove=WORKING_STATE)
    _run([{"Update": update}])


def set_fields(workspace: str, import_id: str, changes: dict[str, Any]) -> None:
    """Change fields of an import nobody holds (a failed one's final counts)."""
    names = {f"#f{i}": name for i, name in enumerate(changes)}
    values = {f":v{i}": value for i, value in enumerate(changes.values())}
    meta().update_item(
        Key=import_key(workspace, import_id),
        UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(changes))),
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
    )


def swap_generation(
    workspace: str,
    import_id: str,
    owner: str,
    dataset: Dataset,
    *,
    generation: int,
    rows: int,
    next_row_index: int,
    outcome: dict[str, Any],
    replica: ReplicaPointer | None = None,
) -> None:
    """Make ``generation`` the dataset's live rows and finish the import, in one transaction.

    The counters are set to the new rows (conditioned on holding what was read: a delete of an
    old row meanwhile makes it retry), the replace flag is dropped, and the workspace gets the
    replaced rows back (the new ones were reserved before writing). Readers switch from all old
    rows to all new rows at this write.
    """
    table_name = settings().meta_table
    counts = dataset_store.counts(workspace, dataset.id)
    old_rows = sum(counts.values())
    finish_update = _update(workspace, import_id, owner, outcome, remove=WORKING_STATE)
    transact: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": table_name,
                "Key": dataset_store.dataset_key(workspace, dataset.id),
                "UpdateExpression": "SET generation = :gen"
                + (", replica = :replica" if replica is not None else " REMOVE replica"),
                "ConditionExpression": "attribute_exists(pk) AND generation = :old_gen",
                "ExpressionAttributeValues": {
                    ":gen": generation,
                    ":old_gen": dataset.generation,
                    **({":replica": replica.to_item()} if replica is not None else {}),
                },
            }
        },
        {
            "Update": {
                "TableName": table_name,
                "Key": dataset_store.state_key(workspace, dataset.id),
                # The state carries the live generation too: a row write that began before the
                # swap cannot count its rows (written to the old generation) after it.
                "UpdateExpression": "SET next_row_index = :next, generation = :gen REMOVE replacing",
                "ConditionExpression": "replacing = :import",
                "ExpressionAttributeValues": {
                    ":next": next_row_index,
                    ":import": import_id,
                    ":gen": generation,
                },
            }
        },
        *(
            {
                "Update": {
                    "TableName": table_name,
                    "Key": dataset_store.count_key(workspace, dataset.id, shard),
                    "UpdateExpression": "SET #rows = :rows",
                    "ConditionExpression": "#rows = :old",
                    "ExpressionAttributeNames": {"#rows": "rows"},
                    "ExpressionAttributeValues": {":rows": rows if shard == 0 else 0, ":old": old},
                }
            }
            for shard, old in counts.items()
        ),
        {"Update": finish_update},
    ]
    if old_rows:
        transact.append(
            {"Update": {"TableName": table_name, **workspaces.release_update(workspace, old_rows)}}
        )
    _run(transact)


def set_replacing(workspace: str, dataset_id: str, import_id: str) -> None:
    """Flag the dataset as being replaced by this import: row writes are refused until the swap."""
    try:
        meta().update_item(
            Key=dataset_store.state_key(workspace, dataset_id),
            UpdateExpression="SET replacing = :id",
            ConditionExpression=(
                "attribute_exists(pk) AND (attribute_not_exists(replacing) OR replacing = :id)"
            ),
            ExpressionAttributeValues={":id": import_id},
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            raise DatasetMoved from exc
        raise


def replace_running(workspace: str, import_id: str) -> bool:
    """Whether the import flagged as replacing a dataset is still going."""
    record = get(workspace, import_id)
    return record is not None and record["status"] not in TERMINAL


def forget_dataset(workspace: str, dataset_id: str) -> None:
    """Remove the import records of a deleted dataset (its purge)."""
    for record in list_for_dataset(workspace, dataset_id):
        meta().delete_item(Key=import_key(workspace, str(record["id"])))


def link_dataset(workspace: str, import_id: str, owner: str, dataset_id: str, created_at: str) -> None:
    """Attach the import to its dataset (listed under it from now on)."""
    save(
        workspace,
        import_id,
        owner,
        {
            "dataset_id": dataset_id,
            "gsi1pk": _list_pk(workspace, dataset_id),
            "gsi1sk": f"{created_at}#{import_id}",
        },
    )


def unlink_dataset(workspace: str, import_id: str) -> None:
    """Detach a failed import from the dataset it created (that dataset is removed): its report
    stays readable by id for ``ORPHAN_REPORT_DAYS``, and the dataset's purge does not take it."""
    meta().update_item(
        Key=import_key(workspace, import_id),
        UpdateExpression="SET dataset_id = :none, expires_at_epoch = :expires REMOVE gsi1pk, gsi1sk",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={
            ":none": None,
            ":expires": int(time.time()) + ORPHAN_REPORT_DAYS * 86400,
        },
    )


def commit(workspace: str, import_id: str, types: dict[str, str], *, revalidate: bool) -> bool:
    """Move an import out of its preview (once): straight to writing, or — with new types — back
    to validation. False when it is not waiting in a preview."""
    try:
        meta().update_item(
            Key=import_key(workspace, import_id),
            UpdateExpression="SET committed = :yes, stage = :stage, #types = :types"
            + (", #checkpoint = :none" if revalidate else "")
            + " REMOVE expires_at_epoch",
            ConditionExpression="stage = :preview AND #status = :queued AND attribute_not_exists(committed)",
            ExpressionAttributeNames={
                "#status": "status",
                "#types": "types",
                **({"#checkpoint": "checkpoint"} if revalidate else {}),
            },
            ExpressionAttributeValues={
                ":yes": True,
                ":stage": "detect" if revalidate else "prepare",
                ":types": types or None,
                ":preview": "preview",
                ":queued": "queued",
                **({":none": {}} if revalidate else {}),
            },
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def start_chunk(workspace: str, import_id: str, chunk: int) -> bool:
    """Note that a chunk is being written; False when it was started before (a redelivery, or
    a run that died): its rows may be there already. ``ImportStopped`` when the import no
    longer writes."""
    try:
        meta().update_item(
            Key=import_key(workspace, import_id),
            UpdateExpression="ADD chunks_started :set",
            ConditionExpression="#status = :running AND stage = :write AND NOT contains(chunks_started, :k)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":set": {chunk},
                ":k": chunk,
                ":running": "running",
                ":write": "write",
            },
        )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        record = get(workspace, import_id)
        if record is None or record.get("status") != "running" or record.get("stage") != "write":
            raise ImportStopped from exc
        return False
    return True


def complete_chunk(
    workspace: str,
    import_id: str,
    chunk: int,
    *,
    rows: int,
    info: dict[str, Any],
    extra: list[dict[str, Any]],
) -> bool:
    """Count a written chunk, once: add it to the completion set with its rows, and write the
    ``extra`` transaction items with it (the dataset's ``row_count`` moving, the check that its
    generation is still live). False when it was counted before; ``ImportStopped`` when the
    import no longer writes; ``DatasetMoved`` when an ``extra`` condition failed."""
    update: dict[str, Any] = {
        "TableName": settings().meta_table,
        "Key": import_key(workspace, import_id),
        "UpdateExpression": "ADD chunks_done :set, rows_imported :rows SET chunk_info.#k = :info",
        "ConditionExpression": "#status = :running AND stage = :write AND NOT contains(chunks_done, :k)",
        "ExpressionAttributeNames": {"#status": "status", "#k": str(chunk)},
        "ExpressionAttributeValues": {
            ":set": {chunk},
            ":k": chunk,
            ":rows": rows,
            ":info": info,
            ":running": "running",
            ":write": "write",
        },
    }
    transact: list[dict[str, Any]] = [{"Update": update}, *extra]
    try:
        _run(transact)
    except (LostLease, DatasetMoved) as exc:
        record = get(workspace, import_id)
        if record is not None and chunk in done_chunks(record):
            return False
        if record is None or record.get("status") != "running" or record.get("stage") != "write":
            raise ImportStopped from exc
        if isinstance(exc, DatasetMoved):
            raise
        raise  # pragma: no cover - the import condition failed for no reason visible now
    return True


def fail_running(workspace: str, import_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
    """End a running import as failed, whoever runs it (a chunk that cannot be written fails the
    import for every chunk); the record as it was then, or None when it was no longer running
    (someone else ended it: only one caller undoes its writes)."""
    names = {f"#f{i}": name for i, name in enumerate(changes)}
    values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(changes.values())}
    try:
        response = meta().update_item(
            Key=import_key(workspace, import_id),
            UpdateExpression="SET "
            + ", ".join(f"#f{i} = :v{i}" for i in range(len(changes)))
            + ", #status = :failed, stage = :failed REMOVE #owner, lease_until",
            ConditionExpression="#status = :running",
            ExpressionAttributeNames={**names, "#status": "status", "#owner": "owner"},
            ExpressionAttributeValues={**values, ":running": "running", ":failed": "failed"},
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise
    return to_native(response["Attributes"])


class DatasetMoved(Exception):
    """The dataset changed (or went away) between the read and a conditional swap."""


def _run(transact: list[dict[str, Any]]) -> None:
    try:
        if len(transact) == 1:
            update = dict(transact[0]["Update"])
            update.pop("TableName")
            meta().update_item(**update)
        else:
            meta().meta.client.transact_write_items(TransactItems=transact)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            raise LostLease from exc
        codes = cancellation_codes(exc)
        if "ConditionalCheckFailed" in codes:
            failed = transact[codes.index("ConditionalCheckFailed")]["Update"]["Key"]["sk"]
            raise (LostLease if failed.startswith("IMP#") else DatasetMoved) from exc
        raise
