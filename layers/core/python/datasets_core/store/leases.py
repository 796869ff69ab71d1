"""Leases on work records in the meta table (a background job, an import): one invocation at a
time works on a record; a crashed invocation's lease lapses at its deadline and a redelivery
takes over."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ..jsonutil import to_native
from .tables import error_code, meta


def take(
    key: dict[str, str],
    owner: str,
    *,
    until: int,
    now: int,
    also: str = "",
    also_values: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Mark an unfinished record (``queued`` or ``running``) ``running`` by ``owner`` until
    ``until`` if nobody holds it at ``now``; the record as it is then, or None. ``also``: more
    of the update expression (``, name = :v`` or `` ADD n :v``), with ``also_values``."""
    try:
        response = meta().update_item(
            Key=key,
            UpdateExpression="SET #status = :running, #owner = :owner, lease_until = :until" + also,
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
                **(also_values or {}),
            },
            ReturnValues="ALL_NEW",
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise
    return to_native(response["Attributes"])
