"""Import records in the ``meta`` table: ``WS#<ws>`` / ``IMP#<import id>``.

Keyed by the workspace, so another workspace's import is simply not found; ``gsi1``
(``WS#<ws>#DS#<dataset id>#IMPORTS``, ``<created_at>#<id>``) lists a dataset's imports.

Besides what the API shows, a record carries the import's private state:

- ``owner`` / ``lease_until`` (epoch seconds): the invocation working on it. Only the owner
  may move the record; a lease that outlived its invocation (a crash) can be taken over.
- ``plan``: what validation decided (target columns, first row index, target generation),
  so a continuation writes exactly what the first run validated.
- ``checkpoint``: the reader position of the next chunk to write. It moves in the same
  transaction as ``rows_imported`` and the dataset's ``row_count``, so a chunk is counted
  exactly once however often it is written.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from ..config import settings
from ..jsonutil import to_native
from ..records import Dataset
from . import datasets as dataset_store
from . import workspaces
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
    "rows_total",
    "rows_imported",
    "rows_rejected",
    "errors",
    "created_at",
    "started_at",
    "finished_at",
)


class LostLease(Exception):
    """Another invocation owns the import now (or it finished); this one must stop writing."""


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


def get(workspace: str, import_id: str) -> dict[str, Any] | None:
    item = meta().get_item(Key=import_key(workspace, import_id), ConsistentRead=True).get("Item")
    return to_native(item) if item else None


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
    return {name: record.get(name) for name in PUBLIC_FIELDS}


def acquire(
    workspace: str, import_id: str, owner: str, *, now: int, until: int, started_at: str
) -> dict[str, Any] | None:
    """Take the lease of an unfinished import nobody else holds; the record, or None."""
    try:
        response = meta().update_item(
            Key=import_key(workspace, import_id),
            UpdateExpression=(
                "SET #status = :running, #owner = :owner, lease_until = :until, "
                "started_at = if_not_exists(started_at, :at)"
            ),
            ConditionExpression=(
                "attribute_exists(pk) AND #status IN (:queued, :running) "
                "AND (attribute_not_exists(lease_until) OR lease_until < :now)"
            ),
            ExpressionAttributeNames={"#status": "status", "#owner": "owner"},
            ExpressionAttributeValues={
                ":running": "running",
                ":queued": "queued",
                ":owner": owner,
                ":until": until,
                ":now": now,
                ":at": started_at,
            },
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise
    return to_native(response["Attributes"])


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


def finish(workspace: str, import_id: str, owner: str, changes: dict[str, Any]) -> None:
    """Record the outcome and drop the private working state."""
    update = _update(
        workspace, import_id, owner, changes, remove=("owner", "lease_until", "plan", "checkpoint")
    )
    _run([{"Update": update}])


def commit_chunk(
    workspace: str,
    import_id: str,
    owner: str,
    *,
    expected_row: int,
    checkpoint: dict[str, int],
    written: int,
    lease_until: int,
    dataset_id: str | None,
) -> None:
    """Move the checkpoint past a written chunk, counting its rows (on the dataset too, if given)."""
    update = _update(
        workspace,
        import_id,
        owner,
        {"checkpoint": checkpoint, "lease_until": lease_until},
    )
    update["UpdateExpression"] += ", rows_imported = rows_imported + :written"
    update["ConditionExpression"] += " AND checkpoint.#row = :expected"
    update["ExpressionAttributeNames"]["#row"] = "row"
    update["ExpressionAttributeValues"].update({":written": written, ":expected": expected_row})
    transact: list[dict[str, Any]] = [{"Update": update}]
    if dataset_id is not None and written:
        transact.append({"Update": dataset_store.count_update(workspace, dataset_id, written)})
    _run(transact)


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
    finish_update = _update(
        workspace, import_id, owner, outcome, remove=("owner", "lease_until", "plan", "checkpoint")
    )
    transact: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": table_name,
                "Key": dataset_store.dataset_key(workspace, dataset.id),
                "UpdateExpression": "SET generation = :gen",
                "ConditionExpression": "attribute_exists(pk) AND generation = :old_gen",
                "ExpressionAttributeValues": {":gen": generation, ":old_gen": dataset.generation},
            }
        },
        {
            "Update": {
                "TableName": table_name,
                "Key": dataset_store.state_key(workspace, dataset.id),
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
