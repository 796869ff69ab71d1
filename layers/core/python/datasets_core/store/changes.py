"""The audit trail of rows: one item per change, beside the rows, expiring through TTL.

``pk = <dataset_id>#changes.<k>`` with ``k = row_index % SHARDS`` (a dataset's trail lives
in a few known partitions, so a purge finds all of it), ``sk = row_index × 10^20 +
microseconds × 1,000 + a per-process sequence`` (a row's entries are one key range, in time
order); ``rid`` is the row's id (a replace import reuses row indexes for new rows). Newest
first is one Query with ``ScanIndexForward=False``. Imports do not write the trail (a file of
a million rows would double its cost); the import record is their audit.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from .. import jsonutil
from ..config import settings
from ..rowids import row_index_of
from .rows import WriteIncomplete, batch_write, put_requests
from .tables import query_all, rows

SHARDS = 4
_ROW_SPAN = 10**20
_sequence = itertools.count()


def change_pk(dataset_id: str, row_index: int) -> str:
    return f"{dataset_id}#changes.{row_index % SHARDS}"


def partitions(dataset_id: str) -> list[str]:
    return [f"{dataset_id}#changes.{shard}" for shard in range(SHARDS)]


def entry(
    dataset_id: str, row_id: str, op: str, key_id: str, at: str, changes: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The item recording that ``key_id`` did ``op`` on a row at ``at``."""
    micros = time.time_ns() // 1000
    row_index = row_index_of(row_id) or 0
    return {
        "pk": change_pk(dataset_id, row_index),
        "sk": row_index * _ROW_SPAN + micros * 1000 + next(_sequence) % 1000,
        "rid": row_id,
        "at": at,
        "op": op,
        "key_id": key_id,
        "changes": jsonutil.dumps(changes),
        "expires_at_epoch": micros // 1_000_000 + settings().changes_retention_days * 86400,
    }


def record(entries: list[dict[str, Any]]) -> bool:
    """Store trail entries; False if DynamoDB refused some (the write itself already happened)."""
    try:
        batch_write(put_requests(entries))
    except WriteIncomplete:
        return False
    return True


def history(dataset_id: str, row_id: str, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """One page of a row's trail, newest first, and how many entries it has in all."""
    row_index = row_index_of(row_id) or 0
    items = query_all(
        rows(),
        KeyConditionExpression=Key("pk").eq(change_pk(dataset_id, row_index))
        & Key("sk").between(row_index * _ROW_SPAN, (row_index + 1) * _ROW_SPAN - 1),
        FilterExpression=Attr("rid").eq(row_id),
        ScanIndexForward=False,
    )
    now_epoch = int(time.time())
    live = [item for item in items if int(item["expires_at_epoch"]) > now_epoch]  # TTL deletes lazily
    window = live[offset : offset + limit]
    return [
        {
            "at": item["at"],
            "op": item["op"],
            "key_id": item["key_id"],
            "changes": jsonutil.loads(item["changes"]),
        }
        for item in window
    ], len(live)
