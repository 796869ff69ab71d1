"""The audit trail of rows: one item per change, beside the rows, expiring through TTL.

``pk = <dataset_id>#changes#<row id>``, ``sk`` = microseconds since the epoch (plus a
per-process sequence so two changes in the same microsecond keep their order). Newest
first is one Query with ``ScanIndexForward=False``. Imports do not write the trail (a file
of a million rows would double its cost); the import record is their audit.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from boto3.dynamodb.conditions import Key

from .. import jsonutil
from ..config import settings
from .rows import WriteIncomplete, batch_write, put_requests
from .tables import query_all, rows

_sequence = itertools.count()


def change_pk(dataset_id: str, row_id: str) -> str:
    return f"{dataset_id}#changes#{row_id}"


def entry(
    dataset_id: str, row_id: str, op: str, key_id: str, at: str, changes: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The item recording that ``key_id`` did ``op`` on a row at ``at``."""
    micros = time.time_ns() // 1000
    return {
        "pk": change_pk(dataset_id, row_id),
        "sk": micros * 1000 + next(_sequence) % 1000,
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
    items = query_all(
        rows(), KeyConditionExpression=Key("pk").eq(change_pk(dataset_id, row_id)), ScanIndexForward=False
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
