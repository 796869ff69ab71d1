"""Uniqueness items: one per value of an upsert column that an upsert created a row for.

``pk = <dataset>#<generation>#u.<k>`` (k < ``SHARDS``), ``sk`` = a 63-bit hash of the
column's attribute and the value's order-preserving encoding; ``v`` holds that encoding (a
hash collision is detected, never trusted) and ``ri`` the row index. Written in the same
transaction as the row it names, so concurrent upserts of one new value create exactly one
row: the others find the item and update that row. An item is a pointer, checked on use: a
row deleted or changed to another value since makes it stale, and it is then replaced.
"""

from __future__ import annotations

import hashlib
from typing import Any

from botocore.exceptions import ClientError

from ..config import settings
from ..records import Column, Dataset
from . import encoding
from .rows import rows
from .tables import cancellation_codes

SHARDS = 4


def _key(
    dataset: Dataset, column: Column, value: Any, generation: int | None = None
) -> tuple[dict[str, Any], bytes]:
    encoded = encoding.encode(value, column.type)
    digest = int.from_bytes(hashlib.sha256(column.attr.encode() + b"\0" + encoded).digest()[:8], "big") >> 1
    gen = dataset.generation if generation is None else generation
    return {"pk": f"{dataset.id}#{gen}#u.{digest % SHARDS}", "sk": digest}, encoded


def partitions(dataset_id: str, generation: int) -> list[str]:
    return [f"{dataset_id}#{generation}#u.{shard}" for shard in range(SHARDS)]


def lookup(dataset: Dataset, column: Column, value: Any) -> int | None:
    """The row index the value's item names (None: no item, or another value's hash)."""
    key, encoded = _key(dataset, column, value)
    item = rows().get_item(Key=key, ConsistentRead=True).get("Item")
    if not item or bytes(item["v"]) != encoded:
        return None
    return int(item["ri"])


def create_with_row(
    dataset: Dataset, column: Column, value: Any, row_item: dict[str, Any], stale: int | None
) -> bool:
    """Write the value's item and its new row together; False when another writer named another
    row for the value first (``stale``: the row index a stale item holds, to be replaced)."""
    key, encoded = _key(dataset, column, value)
    table_name = settings().rows_table
    condition = "attribute_not_exists(pk)" if stale is None else "ri = :stale"
    unique: dict[str, Any] = {
        "TableName": table_name,
        "Item": {**key, "v": encoded, "ri": int(row_item["sk"])},
        "ConditionExpression": condition,
    }
    if stale is not None:
        unique["ExpressionAttributeValues"] = {":stale": stale}
    try:
        rows().meta.client.transact_write_items(
            TransactItems=[
                {"Put": unique},
                {
                    "Put": {
                        "TableName": table_name,
                        "Item": row_item,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    except ClientError as exc:
        if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
            return False
        raise
    return True
