"""Workspace plan and usage in the ``meta`` table.

- ``WS#<ws>`` / ``WORKSPACE``: plan limits (``max_rows``, ``max_datasets``; the configured
  defaults when never set) and ``dataset_count``.
- the per-key request limit: ``store.ratelimits`` (its own ``RATE#`` item).
- ``WS#<ws>`` / ``ALLOWANCE#<k>`` (k < ``ALLOWANCE_SHARDS``): the row limit held in escrow.
  Together the shards hold exactly ``max_rows`` minus the rows in use; a write reserves rows
  by taking them from one shard with a conditional ``ADD`` (never below zero), and gives them
  back to any shard. One item per workspace would cap a tenant at DynamoDB's 1,000 writes/s
  per item; spread over shards, only a reservation that no single shard can cover pays for a
  rebalancing transaction (near the limit, or when one shard ran dry). Usage is exact at
  every moment: ``max_rows - sum(allowances)``.
"""

from __future__ import annotations

import random
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from ..config import settings
from ..errors import PlanLimitExceeded
from ..jsonutil import to_native
from . import ratelimits
from .tables import cancellation_codes, error_code, meta, ws_pk

WORKSPACE_SK = "WORKSPACE"
ALLOWANCE_SHARDS = 8
_ALLOWANCE_PREFIX = "ALLOWANCE#"
_REBALANCE_TRIES = 5


def workspace_key(workspace: str) -> dict[str, str]:
    return {"pk": ws_pk(workspace), "sk": WORKSPACE_SK}


def allowance_key(workspace: str, shard: int) -> dict[str, str]:
    return {"pk": ws_pk(workspace), "sk": f"{_ALLOWANCE_PREFIX}{shard}"}


def _plan(workspace: str) -> dict[str, Any]:
    item = to_native(meta().get_item(Key=workspace_key(workspace), ConsistentRead=True).get("Item") or {})
    return {
        "max_rows": int(item.get("max_rows", settings().default_max_rows)),
        "max_datasets": int(item.get("max_datasets", settings().default_max_datasets)),
        "dataset_count": int(item.get("dataset_count", 0)),
        "exists": bool(item),
    }


def _allowances(workspace: str) -> dict[int, int]:
    """Shard → allowance, read strongly consistently in one query (empty: never initialised)."""
    page = meta().query(
        KeyConditionExpression=Key("pk").eq(ws_pk(workspace)) & Key("sk").begins_with(_ALLOWANCE_PREFIX),
        ConsistentRead=True,
    )
    return {
        int(item["sk"][len(_ALLOWANCE_PREFIX) :]): int(item["allowance"]) for item in page.get("Items", [])
    }


def get(workspace: str) -> dict[str, Any]:
    """Plan and usage: ``{max_rows, max_datasets, row_count, dataset_count}``."""
    plan = _plan(workspace)
    allowances = _allowances(workspace)
    used = plan["max_rows"] - sum(allowances.values()) if allowances else 0
    return {
        "max_rows": plan["max_rows"],
        "max_datasets": plan["max_datasets"],
        "row_count": used,
        "dataset_count": plan["dataset_count"],
    }


def _shares(total: int) -> list[int]:
    return [
        total // ALLOWANCE_SHARDS + (1 if shard < total % ALLOWANCE_SHARDS else 0)
        for shard in range(ALLOWANCE_SHARDS)
    ]


def _initialise(workspace: str, max_rows: int) -> None:
    """Create every allowance shard, holding the whole plan between them (once per workspace)."""
    table_name = settings().meta_table
    try:
        meta().meta.client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table_name,
                        "Item": {**allowance_key(workspace, shard), "allowance": share},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
                for shard, share in enumerate(_shares(max_rows))
            ]
        )
    except ClientError as exc:
        if "ConditionalCheckFailed" not in cancellation_codes(exc):
            raise  # else another request initialised them first


def set_plan(
    workspace: str,
    *,
    max_rows: int | None = None,
    max_datasets: int | None = None,
    rate_limit: int | None = None,
    rate_window_seconds: int | None = None,
) -> dict[str, Any]:
    """Change the plan; the plan and usage after it (``get``, with ``rate_limit`` and
    ``rate_window_seconds``). A new row limit re-deals the allowances: the rows still allowed
    are spread over the shards again (all in one shard, negative, when usage is above the new
    limit: nothing more can be reserved until rows go). The per-key request limit is its own
    item (``store.ratelimits``); function containers pick a change up within
    ``key_cache_seconds``."""
    rate = ratelimits.get_plan(workspace)
    if rate_limit is not None or rate_window_seconds is not None:
        rate = ratelimits.set_plan(
            workspace,
            rate.limit if rate_limit is None else rate_limit,
            rate.window_seconds if rate_window_seconds is None else rate_window_seconds,
        )
    if max_rows is not None:
        _set_row_limit(workspace, max_rows)
    if max_datasets is not None:
        meta().update_item(
            Key=workspace_key(workspace),
            UpdateExpression="SET max_datasets = :d",
            ExpressionAttributeValues={":d": max_datasets},
        )
    return {**get(workspace), "rate_limit": rate.limit, "rate_window_seconds": rate.window_seconds}


def _set_row_limit(workspace: str, max_rows: int) -> None:
    table_name = settings().meta_table
    for _ in range(_REBALANCE_TRIES):
        plan = _plan(workspace)
        allowances = _allowances(workspace)
        if not allowances:
            _initialise(workspace, plan["max_rows"])
            continue
        remaining = max_rows - (plan["max_rows"] - sum(allowances.values()))
        shares = _shares(remaining) if remaining >= 0 else [remaining] + [0] * (ALLOWANCE_SHARDS - 1)
        transact: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": table_name,
                    "Key": workspace_key(workspace),
                    "UpdateExpression": "SET max_rows = :new",
                    "ConditionExpression": "attribute_not_exists(max_rows) OR max_rows = :old",
                    "ExpressionAttributeValues": {":new": max_rows, ":old": plan["max_rows"]},
                }
            },
            *(
                {
                    "Update": {
                        "TableName": table_name,
                        "Key": allowance_key(workspace, shard),
                        "UpdateExpression": "SET allowance = :share",
                        "ConditionExpression": "allowance = :read",
                        "ExpressionAttributeValues": {
                            ":share": shares[shard],
                            ":read": allowances.get(shard, 0),
                        },
                    }
                }
                for shard in range(ALLOWANCE_SHARDS)
            ),
        ]
        try:
            meta().meta.client.transact_write_items(TransactItems=transact)
            return
        except ClientError as exc:
            if not {"ConditionalCheckFailed", "TransactionConflict"} & set(cancellation_codes(exc)):
                raise
    raise PlanLimitExceeded("The workspace is too busy to change its plan; retry.", {"resource": "rows"})


def below_limit_condition(counter: str, limit: str, default: int) -> tuple[str, dict[str, Any]]:
    """Condition "``counter`` + 1 stays within ``limit``", using ``default`` when no limit is set."""
    condition = (
        f"(attribute_not_exists({limit}) AND (attribute_not_exists({counter}) OR {counter} < :default_limit))"
        f" OR (attribute_exists({limit}) AND (attribute_not_exists({counter}) OR {counter} < {limit}))"
    )
    return condition, {":default_limit": default}


def reserve_rows(workspace: str, count: int) -> None:
    """Count ``count`` new rows against the plan, or ``plan_limit_exceeded`` (nothing changed).

    Rows are reserved before they are written and given back (``release_rows``) if the write
    fails, so concurrent writers can never overshoot the limit together.
    """
    if count <= 0:
        return
    shard = random.randrange(ALLOWANCE_SHARDS)
    try:
        meta().update_item(
            Key=allowance_key(workspace, shard),
            UpdateExpression="ADD allowance :minus",
            ConditionExpression="allowance >= :n",
            ExpressionAttributeValues={":minus": -count, ":n": count},
        )
        return
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
    _reserve_across_shards(workspace, count)


def _reserve_across_shards(workspace: str, count: int) -> None:
    """Take ``count`` from several shards at once (one transaction), or refuse exactly."""
    table_name = settings().meta_table
    for _ in range(_REBALANCE_TRIES):
        allowances = _allowances(workspace)
        if not allowances:
            _initialise(workspace, _plan(workspace)["max_rows"])
            continue
        if sum(value for value in allowances.values() if value > 0) < count:
            break
        takes: list[tuple[int, int]] = []
        needed = count
        for shard, available in sorted(allowances.items(), key=lambda pair: -pair[1]):
            if needed <= 0 or available <= 0:
                break
            take = min(available, needed)
            takes.append((shard, take))
            needed -= take
        try:
            meta().meta.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": table_name,
                            "Key": allowance_key(workspace, shard),
                            "UpdateExpression": "ADD allowance :minus",
                            "ConditionExpression": "allowance >= :n",
                            "ExpressionAttributeValues": {":minus": -take, ":n": take},
                        }
                    }
                    for shard, take in takes
                ]
            )
            return
        except ClientError as exc:
            if (
                "ConditionalCheckFailed" not in cancellation_codes(exc)
                and error_code(exc) != "TransactionConflictException"
            ):
                raise
    usage = get(workspace)
    raise PlanLimitExceeded(
        f"Writing {count} row(s) would pass this workspace's limit of {usage['max_rows']} rows.",
        {"limit": usage["max_rows"], "current": usage["row_count"], "requested": count, "resource": "rows"},
    )


def release_rows(workspace: str, count: int) -> None:
    """Give ``count`` reserved or stored rows back to the plan."""
    if count:
        meta().update_item(**release_update(workspace, count))


def release_update(workspace: str, count: int) -> dict[str, Any]:
    """The ``Update`` giving ``count`` rows back (for transactions that must do it atomically)."""
    return {
        "Key": allowance_key(workspace, random.randrange(ALLOWANCE_SHARDS)),
        "UpdateExpression": "ADD allowance :n",
        "ExpressionAttributeValues": {":n": count},
    }


def exists(workspace: str) -> bool:
    """Whether a workspace was ever provisioned: it has a plan/usage item or at least one key."""
    if _plan(workspace)["exists"]:
        return True
    page = meta().query(
        IndexName="gsi1",
        KeyConditionExpression=Key("gsi1pk").eq(f"{ws_pk(workspace)}#KEYS"),
        Limit=1,
    )
    return bool(page.get("Items"))
