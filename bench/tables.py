"""The bench dataset as stored and as an Arrow table, built with the product's own code."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
from msgspec.structs import replace

from . import data

if TYPE_CHECKING:
    from datasets_core.records import Dataset


def stored_dataset(dataset_id: str, shards: int) -> Dataset:
    """The stored form of a dataset declared with ``data.COLUMNS`` (as ``POST /v1/datasets`` builds it)."""
    from datasets_core.columns import ColumnType
    from datasets_core.logic import indexes
    from datasets_core.records import Column, Dataset

    columns = [
        Column(name=str(column["name"]), type=ColumnType(column["type"]), attr=f"c{ordinal}")
        for ordinal, column in enumerate(data.COLUMNS)
    ]
    indexed = [str(column["name"]) for column in data.COLUMNS if column.get("indexed")]
    return Dataset(
        workspace="bench",
        id=dataset_id,
        name=dataset_id,
        columns=tuple(indexes.with_indexes(columns, indexed, status="ready")),
        next_column=len(columns),
        shards=shards,
        created_at="2026-01-01T00:00:00.000Z",
        updated_at="2026-01-01T00:00:00.000Z",
    )


def unindexed(dataset: Dataset) -> Dataset:
    """``dataset`` with no index slot on any column."""
    return replace(
        dataset, columns=tuple(replace(column, slot=None, index_status=None) for column in dataset.columns)
    )


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
