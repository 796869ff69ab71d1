"""Per-key request counters and the rate plans of workspaces, in the ``meta`` table.

- ``RATE#WS#<ws>`` / ``PLAN``: the workspace's per-key limit (``limit`` requests per
  ``window_seconds``); absent: the configured defaults.
- ``RATE#KEY#<key id>`` / ``<window start epoch>``: requests a key was granted in one fixed
  window (``granted``), expiring by TTL (``expires_at_epoch``) soon after the window ends.

Both live under ``RATE#`` partition keys only, so the functions' grant for them (IAM
``dynamodb:LeadingKeys``) reaches no other item, and the counter update may name only its
own attributes.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from msgspec import Struct

from ..config import settings
from .tables import error_code, meta

PLAN_SK = "PLAN"
# A window's item outlives its window by this much (TTL deletes lazily, and late readers of
# the same window must still find it while it is current).
_TTL_SLACK_SECONDS = 300


class RatePlan(Struct, frozen=True):
    limit: int  # requests per window, per key
    window_seconds: int


def plan_key(workspace: str) -> dict[str, str]:
    return {"pk": f"RATE#WS#{workspace}", "sk": PLAN_SK}


def counter_key(key_id: str, window_start: int) -> dict[str, str]:
    return {"pk": f"RATE#KEY#{key_id}", "sk": str(window_start)}


def default_plan() -> RatePlan:
    return RatePlan(settings().default_rate_limit, settings().default_rate_window_seconds)


def get_plan(workspace: str) -> RatePlan:
    """The workspace's per-key limit (eventually consistent: a plan change is not urgent)."""
    item = meta().get_item(Key=plan_key(workspace)).get("Item")
    if not item:
        return default_plan()
    return RatePlan(int(item["limit"]), int(item["window_seconds"]))


def set_plan(workspace: str, limit: int, window_seconds: int) -> RatePlan:
    meta().put_item(Item={**plan_key(workspace), "limit": limit, "window_seconds": window_seconds})
    return RatePlan(limit, window_seconds)


def take(key_id: str, window_start: int, window_seconds: int, wanted: int, limit: int) -> int:
    """Take up to ``wanted`` requests of the key's window: how many were granted (0: none left).

    One conditional ``ADD``: it succeeds while the window's count is below the limit, and the
    count it returns tells how much of ``wanted`` fitted (the count may pass the limit by less
    than ``wanted``; the surplus is never granted, so the grants of all callers together never
    pass it).
    """
    try:
        answer = meta().update_item(
            Key=counter_key(key_id, window_start),
            UpdateExpression="ADD #granted :wanted SET expires_at_epoch = :expires",
            ConditionExpression="attribute_not_exists(#granted) OR #granted < :limit",
            ExpressionAttributeNames={"#granted": "granted"},
            ExpressionAttributeValues={
                ":wanted": wanted,
                ":limit": limit,
                ":expires": window_start + window_seconds + _TTL_SLACK_SECONDS,
            },
            ReturnValues="UPDATED_NEW",
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return 0
        raise
    count = int(answer["Attributes"]["granted"])
    before = count - wanted
    return max(0, min(wanted, limit - before))


def counted(key_id: str, window_start: int) -> int:
    """The requests granted to a key in a window (for tests and operators)."""
    item: dict[str, Any] = (
        meta().get_item(Key=counter_key(key_id, window_start), ConsistentRead=True).get("Item") or {}
    )
    return int(item.get("granted", 0))
