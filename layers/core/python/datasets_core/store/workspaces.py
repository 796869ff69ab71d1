"""Workspace item (``WS#<ws>`` / ``WORKSPACE``): plan limits and usage counters.

A plan value that was never set falls back to the configured default, also inside the
conditional writes that enforce it (see ``datasets.create``).
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from ..config import settings
from ..errors import PlanLimitExceeded
from ..jsonutil import to_native
from .tables import error_code, meta, ws_pk

WORKSPACE_SK = "WORKSPACE"


def workspace_key(workspace: str) -> dict[str, str]:
    return {"pk": ws_pk(workspace), "sk": WORKSPACE_SK}


def get(workspace: str) -> dict[str, Any]:
    """Plan and usage: ``{max_rows, max_datasets, row_count, dataset_count}``."""
    item = to_native(meta().get_item(Key=workspace_key(workspace), ConsistentRead=True).get("Item") or {})
    return {
        "max_rows": item.get("max_rows", settings().default_max_rows),
        "max_datasets": item.get("max_datasets", settings().default_max_datasets),
        "row_count": item.get("row_count", 0),
        "dataset_count": item.get("dataset_count", 0),
    }


def set_plan(
    workspace: str, *, max_rows: int | None = None, max_datasets: int | None = None
) -> dict[str, Any]:
    sets, values = [], {}
    if max_rows is not None:
        sets.append("max_rows = :r")
        values[":r"] = max_rows
    if max_datasets is not None:
        sets.append("max_datasets = :d")
        values[":d"] = max_datasets
    if sets:
        meta().update_item(
            Key=workspace_key(workspace),
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeValues=values,
        )
    return get(workspace)


def below_limit_condition(counter: str, limit: str, default: int) -> tuple[str, dict[str, Any]]:
    """Condition "``counter`` + 1 stays within ``limit``", using ``default`` when no limit is set."""
    condition = (
        f"(attribute_not_exists({limit}) AND (attribute_not_exists({counter}) OR {counter} < :default_limit))"
        f" OR (attribute_exists({limit}) AND (attribute_not_exists({counter}) OR {counter} < {limit}))"
    )
    return condition, {":default_limit": default}


class _LimitReached(Exception):
    pass


def reserve_rows(workspace: str, count: int) -> None:
    """Count ``count`` new rows against the plan, or ``plan_limit_exceeded`` (nothing changed).

    Rows are reserved before they are written and given back (``release_rows``) if the write
    fails, so concurrent writers can never overshoot the limit together.
    """
    allowed = get(workspace)["max_rows"] - count
    try:
        if allowed < 0:
            raise _LimitReached
        meta().update_item(
            Key=workspace_key(workspace),
            UpdateExpression="ADD row_count :n",
            ConditionExpression="attribute_not_exists(row_count) OR row_count <= :allowed",
            ExpressionAttributeValues={":n": count, ":allowed": allowed},
        )
    except (ClientError, _LimitReached) as exc:
        if isinstance(exc, ClientError) and error_code(exc) != "ConditionalCheckFailedException":
            raise
        usage = get(workspace)
        raise PlanLimitExceeded(
            f"Writing {count} row(s) would pass this workspace's limit of {usage['max_rows']} rows.",
            {
                "limit": usage["max_rows"],
                "current": usage["row_count"],
                "requested": count,
                "resource": "rows",
            },
        ) from exc


def release_rows(workspace: str, count: int) -> None:
    if count:
        meta().update_item(
            Key=workspace_key(workspace),
            UpdateExpression="ADD row_count :n",
            ExpressionAttributeValues={":n": -count},
        )


def exists(workspace: str) -> bool:
    """Whether a workspace was ever provisioned: it has a plan/usage item or at least one key."""
    if meta().get_item(Key=workspace_key(workspace), ConsistentRead=True).get("Item"):
        return True
    page = meta().query(
        IndexName="gsi1",
        KeyConditionExpression=Key("gsi1pk").eq(f"{ws_pk(workspace)}#KEYS"),
        Limit=1,
    )
    return bool(page.get("Items"))
