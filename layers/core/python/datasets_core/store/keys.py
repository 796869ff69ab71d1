"""API key records in the ``meta`` table: ``KEY#<id>`` / ``KEY``, listed per workspace via gsi1."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from ..errors import KeyNotFound
from ..jsonutil import to_native
from .tables import error_code, meta, query_all

_PUBLIC_FIELDS = ("id", "name", "scopes", "created_at", "expires_at", "last_used_at", "revoked_at")


def _pk(key_id: str) -> dict[str, str]:
    return {"pk": f"KEY#{key_id}", "sk": "KEY"}


def put_key(
    *,
    key_id: str,
    workspace: str,
    name: str,
    scopes: list[str],
    secret_hash: str,
    created_at: str,
    expires_at: str | None,
    overwrite: bool = False,
) -> dict[str, Any]:
    item = {
        **_pk(key_id),
        "id": key_id,
        "workspace": workspace,
        "name": name,
        "scopes": sorted(scopes),
        "secret_hash": secret_hash,
        "created_at": created_at,
        "expires_at": expires_at,
        "gsi1pk": f"WS#{workspace}#KEYS",
        "gsi1sk": f"{created_at}#{key_id}",
    }
    kwargs: dict[str, Any] = {"Item": item}
    if not overwrite:
        kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
    meta().put_item(**kwargs)
    return public(item)


def get_key(key_id: str) -> dict[str, Any] | None:
    item = meta().get_item(Key=_pk(key_id), ConsistentRead=True).get("Item")
    return to_native(item) if item else None


def touch_key(key_id: str, at: str) -> None:
    meta().update_item(
        Key=_pk(key_id),
        UpdateExpression="SET last_used_at = :at",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={":at": at},
    )


def list_keys(workspace: str) -> list[dict[str, Any]]:
    items = query_all(
        meta(), IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq(f"WS#{workspace}#KEYS")
    )
    return [public(to_native(item)) for item in items]


def revoke_key(key_id: str, at: str, workspace: str | None = None) -> None:
    """Mark a key revoked; ``workspace`` (when given) must own it, else ``KeyNotFound``."""
    condition = "attribute_exists(pk) AND attribute_not_exists(revoked_at)"
    values: dict[str, Any] = {":at": at}
    if workspace is not None:
        condition += " AND workspace = :ws"
        values[":ws"] = workspace
    try:
        meta().update_item(
            Key=_pk(key_id),
            UpdateExpression="SET revoked_at = :at",
            ConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            raise KeyNotFound(key_id) from exc
        raise


def public(item: dict[str, Any]) -> dict[str, Any]:
    return {field: item.get(field) for field in _PUBLIC_FIELDS}
