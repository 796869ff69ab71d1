"""Dataset items in the ``meta`` table.

- ``WS#<ws>`` / ``DS#<id>``: the dataset (name, description, columns, counters, shard count).
- ``WS#<ws>`` / ``DSNAME#<casefolded name>``: reserves the name, so uniqueness per workspace is
  enforced by a conditional write, not by a read-then-write race.
- ``WS#<ws>`` / ``PURGE#<id>``: a deleted dataset whose rows are still being removed.

Every read is keyed by the caller's workspace, so another workspace's dataset is simply
not found.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from ..config import settings
from ..errors import Conflict, DatasetNameTaken, DatasetNotFound, PlanLimitExceeded
from ..jsonutil import to_native
from . import workspaces
from .tables import cancellation_codes, error_code, meta, query_all, ws_pk


def dataset_key(workspace: str, dataset_id: str) -> dict[str, str]:
    return {"pk": ws_pk(workspace), "sk": f"DS#{dataset_id}"}


def _name_key(workspace: str, name: str) -> dict[str, str]:
    return {"pk": ws_pk(workspace), "sk": f"DSNAME#{name.casefold()}"}


def create(workspace: str, item: dict[str, Any]) -> dict[str, Any]:
    """Write a new dataset item, reserving its name and counting it against the plan."""
    table_name = settings().meta_table
    limit_condition, limit_values = workspaces.below_limit_condition(
        "dataset_count", "max_datasets", settings().default_max_datasets
    )
    full_item = {**dataset_key(workspace, item["id"]), **item, "name_lower": item["name"].casefold()}
    try:
        meta().meta.client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table_name,
                        "Item": {**_name_key(workspace, item["name"]), "dataset_id": item["id"]},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": table_name,
                        "Item": full_item,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
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
        )
    except ClientError as exc:
        codes = cancellation_codes(exc)
        if codes and codes[0] == "ConditionalCheckFailed":
            raise DatasetNameTaken(item["name"]) from exc
        if len(codes) > 2 and codes[2] == "ConditionalCheckFailed":
            usage = workspaces.get(workspace)
            raise PlanLimitExceeded(
                "This workspace has reached its dataset limit.",
                {"limit": usage["max_datasets"], "current": usage["dataset_count"], "resource": "datasets"},
            ) from exc
        raise
    return to_native(full_item)


def get(workspace: str, dataset_id: str, *, consistent: bool = True) -> dict[str, Any]:
    item = meta().get_item(Key=dataset_key(workspace, dataset_id), ConsistentRead=consistent).get("Item")
    if not item:
        raise DatasetNotFound(dataset_id)
    return to_native(item)


def list_all(workspace: str) -> list[dict[str, Any]]:
    """Every dataset of a workspace (bounded by the plan's dataset limit)."""
    items = query_all(
        meta(), KeyConditionExpression=Key("pk").eq(ws_pk(workspace)) & Key("sk").begins_with("DS#")
    )
    return [to_native(item) for item in items]


def update(
    workspace: str,
    dataset_id: str,
    changes: dict[str, Any],
    *,
    expected_updated_at: str,
    rename_from: str | None = None,
) -> dict[str, Any]:
    """Apply ``changes`` (top-level attributes) if the dataset is unchanged since it was read.

    A rename moves the name reservation in the same transaction.
    """
    table_name = settings().meta_table
    names = {f"#f{i}": field for i, field in enumerate(changes)}
    values: dict[str, Any] = {f":v{i}": value for i, value in enumerate(changes.values())}
    values[":expected"] = expected_updated_at
    sets = [f"#f{i} = :v{i}" for i in range(len(changes))]
    update: dict[str, Any] = {
        "TableName": table_name,
        "Key": dataset_key(workspace, dataset_id),
        "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": "attribute_exists(pk) AND updated_at = :expected",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    transact: list[dict[str, Any]] = [{"Update": update}]
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
            current = meta().get_item(Key=dataset_key(workspace, dataset_id), ConsistentRead=True).get("Item")
            if not current:
                raise DatasetNotFound(dataset_id) from exc
            raise Conflict("The dataset was changed by another request; retry.") from exc
        raise
    return get(workspace, dataset_id)


def delete(workspace: str, dataset: dict[str, Any], at: str) -> None:
    """Remove the dataset and its name at once; leave a purge marker for its rows."""
    table_name = settings().meta_table
    try:
        meta().meta.client.transact_write_items(
            TransactItems=[
                {
                    "Delete": {
                        "TableName": table_name,
                        "Key": dataset_key(workspace, dataset["id"]),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
                {"Delete": {"TableName": table_name, "Key": _name_key(workspace, dataset["name"])}},
                {
                    "Put": {
                        "TableName": table_name,
                        "Item": {
                            "pk": ws_pk(workspace),
                            "sk": f"PURGE#{dataset['id']}",
                            "dataset_id": dataset["id"],
                            "shards": dataset["shards"],
                            "generation": dataset.get("generation", 0),
                            "row_count": dataset.get("row_count", 0),
                            "deleted_at": at,
                        },
                    }
                },
                {
                    "Update": {
                        "TableName": table_name,
                        "Key": workspaces.workspace_key(workspace),
                        "UpdateExpression": "ADD dataset_count :minus_one",
                        "ExpressionAttributeValues": {":minus_one": -1},
                    }
                },
            ]
        )
    except ClientError as exc:
        codes = cancellation_codes(exc)
        if (codes and codes[0] == "ConditionalCheckFailed") or error_code(
            exc
        ) == "ConditionalCheckFailedException":
            raise DatasetNotFound(dataset["id"]) from exc
        raise


def finish_purge(workspace: str, dataset_id: str, rows_removed: int) -> None:
    """Drop the purge marker and give the removed rows back to the workspace's row budget."""
    table_name = settings().meta_table
    meta().meta.client.transact_write_items(
        TransactItems=[
            {
                "Delete": {
                    "TableName": table_name,
                    "Key": {"pk": ws_pk(workspace), "sk": f"PURGE#{dataset_id}"},
                }
            },
            {
                "Update": {
                    "TableName": table_name,
                    "Key": workspaces.workspace_key(workspace),
                    "UpdateExpression": "ADD row_count :minus",
                    "ExpressionAttributeValues": {":minus": -rows_removed},
                }
            },
        ]
    )


def allocate_row_indexes(workspace: str, dataset_id: str, count: int) -> int:
    """Reserve ``count`` consecutive row indexes with one atomic counter update; the first."""
    try:
        response = meta().update_item(
            Key=dataset_key(workspace, dataset_id),
            UpdateExpression="ADD next_row_index :n",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":n": count},
            ReturnValues="UPDATED_NEW",
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            raise DatasetNotFound(dataset_id) from exc
        raise
    return int(response["Attributes"]["next_row_index"]) - count


def add_row_count(workspace: str, dataset_id: str, delta: int, *, workspace_too: bool = False) -> None:
    """Move the dataset's exact ``row_count`` (and, when asked, the workspace's) by ``delta``.

    A dataset deleted meanwhile is left alone: its purge gives its rows back to the workspace.
    """
    if not delta:
        return
    table_name = settings().meta_table
    transact: list[dict[str, Any]] = [
        {
            "Update": {
                "TableName": table_name,
                "Key": dataset_key(workspace, dataset_id),
                "UpdateExpression": "ADD row_count :d",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":d": delta},
            }
        }
    ]
    if workspace_too:
        transact.append(
            {
                "Update": {
                    "TableName": table_name,
                    "Key": workspaces.workspace_key(workspace),
                    "UpdateExpression": "ADD row_count :d",
                    "ExpressionAttributeValues": {":d": delta},
                }
            }
        )
    try:
        meta().meta.client.transact_write_items(TransactItems=transact)
    except ClientError as exc:
        if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
            return
        raise


def save_columns(
    workspace: str, dataset_id: str, columns: list[dict[str, Any]], next_column: int, expected_next: int
) -> None:
    """Store a grown column list if nobody else grew it meanwhile (``Conflict`` otherwise)."""
    try:
        meta().update_item(
            Key=dataset_key(workspace, dataset_id),
            UpdateExpression="SET #columns = :columns, next_column = :next",
            ConditionExpression="attribute_exists(pk) AND next_column = :expected",
            ExpressionAttributeNames={"#columns": "columns"},
            ExpressionAttributeValues={
                ":columns": columns,
                ":next": next_column,
                ":expected": expected_next,
            },
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            current = meta().get_item(Key=dataset_key(workspace, dataset_id), ConsistentRead=True).get("Item")
            if not current:
                raise DatasetNotFound(dataset_id) from exc
            raise Conflict("The dataset's columns changed meanwhile; retry.") from exc
        raise


def purge_marker(workspace: str, dataset_id: str) -> dict[str, Any] | None:
    item = meta().get_item(Key={"pk": ws_pk(workspace), "sk": f"PURGE#{dataset_id}"}, ConsistentRead=True)
    return to_native(item["Item"]) if "Item" in item else None


def finish_reindex(workspace: str, dataset_id: str, built: list[str], cleared_slots: list[int]) -> None:
    """Mark backfilled indexes ready and free cleared slots (retrying if the columns moved)."""
    for _ in range(5):
        try:
            dataset = get(workspace, dataset_id)
        except DatasetNotFound:
            return
        columns = []
        for column in dataset.get("columns", []):
            column = dict(column)
            if column["name"] in built and column.get("slot"):
                column["index_status"] = "ready"
            if column.get("retired_slot") in cleared_slots:
                column.pop("retired_slot")
            columns.append(column)
        expected = int(dataset.get("next_column", len(columns)))
        try:
            save_columns(workspace, dataset_id, columns, expected, expected)
            return
        except Conflict:
            continue


def find_by_name(workspace: str, name: str) -> dict[str, Any] | None:
    """The dataset of a workspace with this name (case-insensitively), or None."""
    reservation = meta().get_item(Key=_name_key(workspace, name), ConsistentRead=True).get("Item")
    if not reservation:
        return None
    try:
        return get(workspace, str(reservation["dataset_id"]))
    except DatasetNotFound:
        return None


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
