"""Dataset items in the ``meta`` table.

Per dataset, under ``WS#<ws>``:

- ``DS#<id>``: the dataset (name, description, columns, shard count, generation, replica
  pointer) — read by every request, written only when the dataset itself changes.
- ``DS#<id>#N#<k>`` (k < ``COUNT_SHARDS``): the row count in shards, moved by writers with an
  ``ADD`` on a random shard and summed on read, so counting is not one item's 1,000 writes/s.
- ``DS#<id>#STATE``: the ``row_index`` allocator (one ``ADD`` per insert request) and the
  ``replacing`` flag of a running replace import. Small, so writers touch a few bytes, not
  the column list.
- ``DSNAME#<casefolded name>``: reserves the name, so uniqueness per workspace is enforced
  by a conditional write, not by a read-then-write race.

``get`` reads all of a dataset's items with one strongly consistent Query. Every read is
keyed by the caller's workspace, so another workspace's dataset is simply not found.
"""

from __future__ import annotations

import random
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from ..config import settings
from ..errors import Conflict, DatasetNameTaken, DatasetNotFound, PlanLimitExceeded
from ..jsonutil import to_native
from ..records import Column, Dataset, ReplicaPointer
from . import workspaces
from .tables import cancellation_codes, error_code, meta, query_all, ws_pk

COUNT_SHARDS = 4
_STATE = "#STATE"
_COUNT = "#N#"
_DELETE_RETRIES = 10


class ReplacedMeanwhile(Conflict):
    """A replace import swapped the dataset's rows while a row write was under way: the write
    landed among the replaced rows, so it is undone and refused (SPEC §7)."""

    def __init__(self, dataset_id: str) -> None:
        super().__init__(
            "A replace import swapped this dataset's rows while this write ran; nothing was "
            "written. Retry against the new rows.",
            {"dataset_id": dataset_id},
        )


class ReplaceInProgress(Conflict):
    """Row writes wait while a replace import swaps the dataset's rows (SPEC §7)."""

    def __init__(self, dataset_id: str, import_id: str) -> None:
        super().__init__(
            "A replace import is writing this dataset's rows; row writes are refused until it "
            "finishes. Retry shortly.",
            {"dataset_id": dataset_id, "import_id": import_id, "retry_after_seconds": 5},
        )


def dataset_key(workspace: str, dataset_id: str) -> dict[str, str]:
    return {"pk": ws_pk(workspace), "sk": f"DS#{dataset_id}"}


def state_key(workspace: str, dataset_id: str) -> dict[str, str]:
    return {"pk": ws_pk(workspace), "sk": f"DS#{dataset_id}{_STATE}"}


def count_key(workspace: str, dataset_id: str, shard: int) -> dict[str, str]:
    return {"pk": ws_pk(workspace), "sk": f"DS#{dataset_id}{_COUNT}{shard}"}


def _name_key(workspace: str, name: str) -> dict[str, str]:
    return {"pk": ws_pk(workspace), "sk": f"DSNAME#{name.casefold()}"}


# --- reading ------------------------------------------------------------------------------------
def _assemble(workspace: str, items: list[dict[str, Any]]) -> dict[str, Dataset]:
    """Datasets (with row counts and state) from the items of a ``DS#`` query."""
    bases: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    replacing: dict[str, str | None] = {}
    for item in items:
        sk = str(item["sk"])[3:]
        dataset_id, _, rest = sk.partition("#")
        if not rest:
            bases[dataset_id] = item
        elif rest == _STATE[1:]:
            replacing[dataset_id] = item.get("replacing")
        elif rest.startswith(_COUNT[1:]):
            counts[dataset_id] = counts.get(dataset_id, 0) + int(item.get("rows", 0))
    return {
        dataset_id: Dataset.from_item(
            workspace,
            to_native(item),
            row_count=counts.get(dataset_id, 0),
            replacing=replacing.get(dataset_id),
        )
        for dataset_id, item in bases.items()
    }


def get(workspace: str, dataset_id: str) -> Dataset:
    """The dataset with its row count and state, strongly consistent (``DatasetNotFound``)."""
    items = query_all(
        meta(),
        KeyConditionExpression=Key("pk").eq(ws_pk(workspace)) & Key("sk").begins_with(f"DS#{dataset_id}"),
        ConsistentRead=True,
    )
    found = _assemble(workspace, items).get(dataset_id)
    if found is None:
        raise DatasetNotFound(dataset_id)
    return found


def list_all(workspace: str) -> list[Dataset]:
    """Every dataset of a workspace (bounded by the plan's dataset limit)."""
    items = query_all(
        meta(), KeyConditionExpression=Key("pk").eq(ws_pk(workspace)) & Key("sk").begins_with("DS#")
    )
    return list(_assemble(workspace, items).values())


def find_by_name(workspace: str, name: str) -> Dataset | None:
    """The dataset of a workspace with this name (case-insensitively), or None."""
    reservation = meta().get_item(Key=_name_key(workspace, name), ConsistentRead=True).get("Item")
    if not reservation:
        return None
    try:
        return get(workspace, str(reservation["dataset_id"]))
    except DatasetNotFound:
        return None


def state(workspace: str, dataset_id: str) -> dict[str, Any] | None:
    """The allocator/flag item (strongly consistent), None once the dataset is deleted."""
    item = meta().get_item(Key=state_key(workspace, dataset_id), ConsistentRead=True).get("Item")
    return to_native(item) if item else None


# --- creating, changing, deleting ---------------------------------------------------------------
def create(dataset: Dataset) -> Dataset:
    """Write a new dataset (with its counters), reserving its name and counting it against the plan."""
    workspace = dataset.workspace
    table_name = settings().meta_table
    limit_condition, limit_values = workspaces.below_limit_condition(
        "dataset_count", "max_datasets", settings().default_max_datasets
    )

    def put(key: dict[str, str], attributes: dict[str, Any]) -> dict[str, Any]:
        item = {**key, **attributes}
        return {
            "Put": {"TableName": table_name, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}
        }

    transact = [
        put(_name_key(workspace, dataset.name), {"dataset_id": dataset.id}),
        put(dataset_key(workspace, dataset.id), dataset.to_item()),
        put(state_key(workspace, dataset.id), {"next_row_index": 0, "generation": dataset.generation}),
        *(put(count_key(workspace, dataset.id, shard), {"rows": 0}) for shard in range(COUNT_SHARDS)),
        {
            "Update": {
                "TableName": table_name,
                "Key": workspaces.workspace_key(workspace),
                "UpdateExpression": "ADD dataset_count :one",
                "ConditionExpression": limit_condition,
                "ExpressionAttributeValues": {":one": 1, **limit_values},
            }
        },
    ]
    try:
        meta().meta.client.transact_write_items(TransactItems=transact)
    except ClientError as exc:
        codes = cancellation_codes(exc)
        if codes and codes[0] == "ConditionalCheckFailed":
            raise DatasetNameTaken(dataset.name) from exc
        if codes and codes[-1] == "ConditionalCheckFailed":
            usage = workspaces.get(workspace)
            raise PlanLimitExceeded(
                "This workspace has reached its dataset limit.",
                {"limit": usage["max_datasets"], "current": usage["dataset_count"], "resource": "datasets"},
            ) from exc
        raise
    return dataset


def update(
    dataset: Dataset, changes: dict[str, Any], *, expected_updated_at: str, rename_from: str | None = None
) -> Dataset:
    """Apply ``changes`` (top-level attributes) if the dataset is unchanged since it was read.

    A rename moves the name reservation in the same transaction.
    """
    workspace, dataset_id = dataset.workspace, dataset.id
    table_name = settings().meta_table
    names = {f"#f{i}": name for i, name in enumerate(changes)}
    values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(changes.values())}
    values[":expected"] = expected_updated_at
    update_item: dict[str, Any] = {
        "TableName": table_name,
        "Key": dataset_key(workspace, dataset_id),
        "UpdateExpression": "SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(changes))),
        "ConditionExpression": "attribute_exists(pk) AND updated_at = :expected",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    transact: list[dict[str, Any]] = [{"Update": update_item}]
    new_name: str = changes.get("name") or ""
    old_name: str = rename_from or ""
    renaming = bool(old_name and new_name and new_name.casefold() != old_name.casefold())
    if renaming:
        transact.append(
            {
                "Put": {
                    "TableName": table_name,
                    "Item": {**_name_key(workspace, new_name), "dataset_id": dataset_id},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            }
        )
        transact.append({"Delete": {"TableName": table_name, "Key": _name_key(workspace, old_name)}})
    try:
        meta().meta.client.transact_write_items(TransactItems=transact)
    except ClientError as exc:
        codes = cancellation_codes(exc)
        if renaming and len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
            raise DatasetNameTaken(new_name) from exc
        if codes and codes[0] == "ConditionalCheckFailed":
            # Either deleted meanwhile (→ 404) or changed meanwhile (→ 409, retry).
            get(workspace, dataset_id)
            raise Conflict("The dataset was changed by another request; retry.") from exc
        raise
    return get(workspace, dataset_id)


def delete(dataset: Dataset, extra: list[dict[str, Any]]) -> int:
    """Remove the dataset, its name and counters at once and give its rows back to the plan.

    The rows given back are exactly the count at this instant: the transaction is conditioned
    on every counter shard holding the value read, so a writer counting meanwhile makes it
    retry. ``extra`` transaction items (the purge job) are written with it. The rows left in
    the rows table are counted nowhere from now on. Returns the rows given back.
    """
    workspace, dataset_id = dataset.workspace, dataset.id
    table_name = settings().meta_table
    for _ in range(_DELETE_RETRIES):
        shards = counts(workspace, dataset_id)
        total = sum(shards.values())
        transact: list[dict[str, Any]] = [
            {
                "Delete": {
                    "TableName": table_name,
                    "Key": dataset_key(workspace, dataset_id),
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
            {"Delete": {"TableName": table_name, "Key": _name_key(workspace, dataset.name)}},
            {"Delete": {"TableName": table_name, "Key": state_key(workspace, dataset_id)}},
            *(
                {
                    "Delete": {
                        "TableName": table_name,
                        "Key": count_key(workspace, dataset_id, shard),
                        "ConditionExpression": "#rows = :rows",
                        "ExpressionAttributeNames": {"#rows": "rows"},
                        "ExpressionAttributeValues": {":rows": rows},
                    }
                }
                for shard, rows in shards.items()
            ),
            {
                "Update": {
                    "TableName": table_name,
                    "Key": workspaces.workspace_key(workspace),
                    "UpdateExpression": "ADD dataset_count :minus_one",
                    "ExpressionAttributeValues": {":minus_one": -1},
                }
            },
            *extra,
        ]
        if total:
            transact.append(
                {"Update": {"TableName": table_name, **workspaces.release_update(workspace, total)}}
            )
        try:
            meta().meta.client.transact_write_items(TransactItems=transact)
            return total
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise DatasetNotFound(dataset_id) from exc
            # A counter moved (a writer counted meanwhile) or a transaction overlapped: re-read.
            if not {"ConditionalCheckFailed", "TransactionConflict"} & set(codes):
                raise
    raise Conflict("The dataset is being written too busily to delete; retry.")


def counts(workspace: str, dataset_id: str) -> dict[int, int]:
    page = meta().query(
        KeyConditionExpression=Key("pk").eq(ws_pk(workspace))
        & Key("sk").begins_with(f"DS#{dataset_id}{_COUNT}"),
        ConsistentRead=True,
    )
    return {
        int(str(item["sk"]).rsplit("#", 1)[1]): int(item.get("rows", 0)) for item in page.get("Items", [])
    }


# --- counters and the allocator -----------------------------------------------------------------
def allocate_row_indexes(workspace: str, dataset_id: str, count: int) -> int:
    """Reserve ``count`` consecutive row indexes with one atomic update; the first.

    Refused while a replace import is writing (``ReplaceInProgress``) or once the dataset is
    gone (``DatasetNotFound``)."""
    try:
        response = meta().update_item(
            Key=state_key(workspace, dataset_id),
            UpdateExpression="ADD next_row_index :n",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(replacing)",
            ExpressionAttributeValues={":n": count},
            ReturnValues="UPDATED_NEW",
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            _refusal(workspace, dataset_id)
        raise
    return int(response["Attributes"]["next_row_index"]) - count


def _refusal(workspace: str, dataset_id: str, generation: int | None = None) -> None:
    """Raise why a conditional write on the dataset's state failed."""
    current = state(workspace, dataset_id)
    if current is None:
        raise DatasetNotFound(dataset_id)
    if current.get("replacing"):
        raise ReplaceInProgress(dataset_id, str(current["replacing"]))
    if generation is not None and state_generation(current) != generation:
        raise ReplacedMeanwhile(dataset_id)
    raise Conflict("The dataset changed meanwhile; retry.")


def generation_condition(generation: int) -> tuple[str, dict[str, Any]]:
    """A condition on the state item: ``generation`` is still the live one (the state carries
    it from a dataset's first replace on; before that the live generation is 0)."""
    if generation == 0:
        return "(attribute_not_exists(generation) OR generation = :live_gen)", {":live_gen": 0}
    return "generation = :live_gen", {":live_gen": generation}


def state_check(workspace: str, dataset_id: str, generation: int) -> dict[str, Any]:
    """The transaction ``ConditionCheck``: the dataset exists and ``generation`` is live."""
    condition, values = generation_condition(generation)
    return {
        "TableName": settings().meta_table,
        "Key": state_key(workspace, dataset_id),
        "ConditionExpression": "attribute_exists(pk) AND " + condition,
        "ExpressionAttributeValues": values,
    }


def state_generation(current: dict[str, Any]) -> int:
    """The live generation the state item records (the swap of a replace import moves it)."""
    return int(current.get("generation", 0))


def count_update(workspace: str, dataset_id: str, delta: int) -> dict[str, Any]:
    """The transaction ``Update`` moving the dataset's row count by ``delta`` (while it exists)."""
    return {
        "TableName": settings().meta_table,
        "Key": count_key(workspace, dataset_id, random.randrange(COUNT_SHARDS)),
        "UpdateExpression": "ADD #rows :d",
        "ConditionExpression": "attribute_exists(pk)",
        "ExpressionAttributeNames": {"#rows": "rows"},
        "ExpressionAttributeValues": {":d": delta},
    }


def add_row_count(
    workspace: str,
    dataset_id: str,
    delta: int,
    *,
    unless_replacing: bool = False,
    plan: bool = False,
    generation: int | None = None,
) -> None:
    """Move the dataset's exact row count by ``delta`` (with ``plan``, the workspace's usage too,
    in the same transaction: rows deleted are given back to the plan).

    ``DatasetNotFound`` when the dataset was deleted meanwhile (its rows were given back to the
    plan by the delete; the caller undoes its own write); with ``unless_replacing``,
    ``ReplaceInProgress`` when a replace import began meanwhile (nothing counted); with
    ``generation`` (the one the caller wrote its rows into), ``ReplacedMeanwhile`` when a
    replace import swapped the rows since: those rows are the replaced ones, not counted.
    """
    if not delta:
        return
    transact: list[dict[str, Any]] = [{"Update": count_update(workspace, dataset_id, delta)}]
    if unless_replacing or generation is not None:
        conditions = ["attribute_exists(pk)"]
        values: dict[str, Any] = {}
        if unless_replacing:
            conditions.append("attribute_not_exists(replacing)")
        if generation is not None:
            condition, values = generation_condition(generation)
            conditions.append(condition)
        check: dict[str, Any] = {
            "TableName": settings().meta_table,
            "Key": state_key(workspace, dataset_id),
            "ConditionExpression": " AND ".join(conditions),
        }
        if values:
            check["ExpressionAttributeValues"] = values
        transact.append({"ConditionCheck": check})
    if plan:
        transact.append(
            {"Update": {"TableName": settings().meta_table, **workspaces.release_update(workspace, -delta)}}
        )
    try:
        if len(transact) == 1:
            update = dict(transact[0]["Update"])
            update.pop("TableName")
            meta().update_item(**update)
        else:
            meta().meta.client.transact_write_items(TransactItems=transact)
    except ClientError as exc:
        if error_code(
            exc
        ) == "ConditionalCheckFailedException" or "ConditionalCheckFailed" in cancellation_codes(exc):
            _refusal(workspace, dataset_id, generation)
        raise


def clear_replacing(workspace: str, dataset_id: str, import_id: str) -> None:
    """Drop a replace flag whose import is over (it failed without clearing it)."""
    try:
        meta().update_item(
            Key=state_key(workspace, dataset_id),
            UpdateExpression="REMOVE replacing",
            ConditionExpression="replacing = :id",
            ExpressionAttributeValues={":id": import_id},
        )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise


def save_columns(dataset: Dataset, columns: list[Column] | tuple[Column, ...], next_column: int) -> Dataset:
    """Store a changed column list if nobody else changed it meanwhile (``Conflict`` otherwise)."""
    try:
        meta().update_item(
            Key=dataset_key(dataset.workspace, dataset.id),
            UpdateExpression="SET #columns = :columns, next_column = :next",
            ConditionExpression="attribute_exists(pk) AND next_column = :expected AND #columns = :current",
            ExpressionAttributeNames={"#columns": "columns"},
            ExpressionAttributeValues={
                ":columns": [column.to_item() for column in columns],
                ":next": next_column,
                ":expected": dataset.next_column,
                ":current": [column.to_item() for column in dataset.columns],
            },
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            get(dataset.workspace, dataset.id)  # DatasetNotFound when it is gone
            raise Conflict("The dataset's columns changed meanwhile; retry.") from exc
        raise
    return dataset.with_columns(columns, next_column)


def finish_reindex(workspace: str, dataset_id: str, built: list[str], cleared_slots: list[int]) -> None:
    """Mark backfilled indexes ready and free cleared slots (retrying if the columns moved)."""
    for _ in range(5):
        try:
            dataset = get(workspace, dataset_id)
        except DatasetNotFound:
            return
        columns = []
        for column in dataset.columns:
            if column.name in built and column.slot is not None and column.index_status != "ready":
                column = Column(
                    column.name, column.type, column.attr, column.slot, "ready", column.retired_slot
                )
            if column.retired_slot in cleared_slots:
                column = Column(column.name, column.type, column.attr, column.slot, column.index_status, None)
            columns.append(column)
        try:
            save_columns(dataset, columns, dataset.next_column)
            return
        except Conflict:
            continue


def allocate_generation(workspace: str, dataset_id: str) -> int:
    """A generation number no other writer will use: rows written under it stay invisible
    until ``imports.swap_generation`` makes it the dataset's live generation."""
    try:
        response = meta().update_item(
            Key=dataset_key(workspace, dataset_id),
            UpdateExpression="ADD generations_allocated :one",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":one": 1},
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            raise DatasetNotFound(dataset_id) from exc
        raise
    attributes = response["Attributes"]
    # Datasets never replaced before start at generation 0 and have no counter yet.
    return max(int(attributes["generations_allocated"]), int(attributes.get("generation", 0)) + 1)


def generations_used(workspace: str, dataset_id: str) -> int:
    """How many generations the dataset may have rows under (for purges), 0 when it is gone."""
    item = meta().get_item(Key=dataset_key(workspace, dataset_id), ConsistentRead=True).get("Item")
    if not item:
        return 0
    return max(int(item.get("generations_allocated", 0)), int(item.get("generation", 0))) + 1


def set_replica(dataset: Dataset, pointer: ReplicaPointer, *, expected: ReplicaPointer | None) -> None:
    """Point the dataset at a new snapshot if its pointer is still ``expected`` (``Conflict``)."""
    condition = "attribute_exists(pk) AND "
    values: dict[str, Any] = {":new": pointer.to_item()}
    if expected is None:
        condition += "attribute_not_exists(replica)"
    else:
        condition += "replica.version = :version AND generation = :generation"
        values[":version"] = expected.version
        values[":generation"] = pointer.generation
    try:
        meta().update_item(
            Key=dataset_key(dataset.workspace, dataset.id),
            UpdateExpression="SET replica = :new",
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            get(dataset.workspace, dataset.id)
            raise Conflict("The dataset's replica moved meanwhile.") from exc
        raise
