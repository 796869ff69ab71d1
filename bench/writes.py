"""DynamoDB write requests per imported row, counted on the boto3 client of the write path.

Runs in this process against the stack's DynamoDB endpoint, so every request the write
path sends can be counted with a botocore event hook (the stack itself is another process).
The rows are the items the import's converter builds (``imports.convert``), written with
``store.rows.batch_write(put_requests(items))``, the call an import chunk writes rows with
(``imports/chunks.py``, ``write``).
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Any

from . import tables
from .report import Figure

ROWS = 10_000
TARGET = Fraction(1, 25)
_WRITE_CALLS = ("BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")


def figures(shards: int) -> list[Figure]:
    from datasets_core.imports import convert
    from datasets_core.store import rows as row_store
    from datasets_core.store.tables import rows as rows_table

    dataset = tables.stored_dataset("ds_bench_writes", shards)
    items = convert.bench_conversion(tables.arrow_table(ROWS), dataset)
    client = rows_table().meta.client  # the client batch_write sends with
    calls: Counter[str] = Counter()

    def count(model: Any, **_kwargs: Any) -> None:
        calls[model.name] += 1

    client.meta.events.register("before-call.dynamodb", count)
    try:
        written = row_store.batch_write(row_store.put_requests(items))
    finally:
        client.meta.events.unregister("before-call.dynamodb", count)
    if len(written) != ROWS:
        raise RuntimeError(f"{len(written)} of {ROWS} rows were written")
    batches = calls["BatchWriteItem"]
    others = {name: calls[name] for name in _WRITE_CALLS if name != "BatchWriteItem" and calls[name]}
    per_row = Fraction(batches, ROWS)
    return [
        Figure(
            "DynamoDB write requests per imported row",
            f"1/{float(1 / per_row):.4g}" if batches else "0",
            f"≤ 1/{1 / TARGET}",
            per_row <= TARGET,
            note=(
                f"{batches} BatchWriteItem for {ROWS:,} rows (other writes: {others or 'none'}); "
                "in-process: imports.convert items written by store.rows.batch_write, as the import "
                "pipeline writes them, against the stack's DynamoDB"
            ),
        )
    ]
