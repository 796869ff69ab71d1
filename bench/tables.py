"""The bench dataset as stored and as an Arrow table, built with the product's own code."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from . import data


def stored_dataset(dataset_id: str, shards: int) -> dict[str, Any]:
    """The stored form of a dataset declared with ``data.COLUMNS`` (as ``POST /v1/datasets`` builds it)."""
    from datasets_core.logic import indexes

    columns = [
        {"name": column["name"], "type": column["type"], "attr": f"c{ordinal}", "indexed": False}
        for ordinal, column in enumerate(data.COLUMNS)
    ]
    indexed = [str(column["name"]) for column in data.COLUMNS if column.get("indexed")]
    return {
        "id": dataset_id,
        "generation": 0,
        "shards": shards,
        "columns": indexes.with_indexes(columns, indexed, status="ready"),
        "next_column": len(columns),
    }


def unindexed(column: dict[str, Any]) -> dict[str, Any]:
    """``column`` without its index slot."""
    return {key: value for key, value in column.items() if key not in ("slot", "index_status")} | {
        "indexed": False
    }


def arrow_table(count: int) -> pa.Table:
    """``count`` bench rows as Arrow columns, typed as a Parquet writer would type them."""
    rows = data.rows(0, count)
    return pa.table(
        {
            "city": pa.array([row["city"] for row in rows], pa.string()),
            "amount": pa.array([row["amount"] for row in rows], pa.float64()),
            "ordered_at": pa.array([row["ordered_at"] for row in rows], pa.string()).cast(
                pa.timestamp("us", tz="UTC")
            ),
            "status": pa.array([row["status"] for row in rows], pa.string()),
            "note": pa.array([row["note"] for row in rows], pa.string()),
        }
    )
