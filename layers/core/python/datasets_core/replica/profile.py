"""``GET /v1/datasets/{id}/profile`` (SPEC §8): per column, exact statistics of the replica.

Each statistic is one Arrow kernel over the column (a hash for distinct values and the top
values, min/max, a decimal256 sum), so a profile of a million rows costs a few passes over
columns already in memory. The semantics are those of the query language: ``count`` and
``distinct`` count non-null values as SQL's ``count(col)`` and ``count(distinct col)`` (equality
as ``eq`` decides it), ``min``/``max`` follow ``order=`` (text casefolded, then exact), ``top`` is
by count descending then by value in that order. Columns Arrow cannot hold natively (JSON,
numbers too wide for decimal128) are profiled row by row with the same keys.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..columns import ColumnType
from ..query.ast import Ref
from ..query.columnar import ColumnData, casefold
from ..query.operators import equality_key, order_key
from ..records import Column
from . import engine
from .table import ReplicaTable

TOP_VALUES = 10


def profile(table: ReplicaTable, positions: pa.Array) -> dict[str, Any]:
    """The profile of the rows at ``positions`` (every row of ``table`` unless filtered)."""
    rows = len(positions)
    datas = [table.column(Ref(column.name)) for column in table.dataset.columns]  # views built once

    def one(pair: tuple[Column, ColumnData]) -> dict[str, Any]:
        return _column_profile(pair[0], pair[1], positions, rows)

    # Arrow's kernels release the GIL: columns are profiled side by side on every core.
    with ThreadPoolExecutor(max_workers=max(1, min(len(datas), os.cpu_count() or 1))) as pool:
        columns = list(pool.map(one, zip(table.dataset.columns, datas, strict=True)))
    return {"row_count": rows, "columns": columns}


def _column_profile(column: Column, data: ColumnData, positions: pa.Array, rows: int) -> dict[str, Any]:
    if data.native and column.type is not ColumnType.JSON:
        stats = _native(column, data, positions)
    else:
        stats = _by_row(column, data, positions)
    nulls = rows - stats["count"]
    described: dict[str, Any] = {
        "name": column.name,
        "type": str(column.type),
        "count": stats["count"],
        "nulls": nulls,
        # Six decimals: a rate is for reading; the exact counts are beside it.
        "null_rate": round(nulls / rows, 6) if rows else 0,
        "distinct": stats["distinct"],
        "min": stats["min"],
        "max": stats["max"],
        "top": stats["top"],
    }
    if column.type is ColumnType.NUMBER:
        described["sum"] = stats["sum"]
        described["mean"] = stats["mean"]
    return described


def _native(column: Column, data: ColumnData, positions: pa.Array) -> dict[str, Any]:
    def picked(array: pa.Array) -> pa.Array:
        return engine.picked(array, positions)

    values_ = picked(data.comparable)
    count = len(values_) - values_.null_count
    # One hash pass gives both the distinct count and the top values (count_distinct is a
    # second, slower pass over the same hashes).
    counted = pc.value_counts(values_.drop_null() if values_.null_count else values_)
    stats: dict[str, Any] = {"count": count, "distinct": len(counted)}
    if column.type is ColumnType.STRING:
        stats["min"], stats["max"] = _text_extremes(picked(data.array), picked(data.fold))
    else:
        extremes = pc.min_max(values_)
        stats["min"], stats["max"] = (
            engine.api_value(extremes["min"].as_py()),
            engine.api_value(extremes["max"].as_py()),
        )
    stats["top"] = _top(counted, text=column.type is ColumnType.STRING)
    if column.type is ColumnType.NUMBER:
        scale = values_.type.scale if pa.types.is_decimal(values_.type) else 0
        total = pc.sum(values_.cast(pa.decimal256(76, scale))).as_py()
        stats["sum"] = engine.mean_or_sum("sum", total, count)
        stats["mean"] = engine.mean_or_sum("avg", total, count)
    return stats


def _text_extremes(texts: pa.Array, folded: pa.Array) -> tuple[str | None, str | None]:
    """Min and max in text order: the casefolded extreme, then the exact extreme among its
    spellings (as ``order=`` ranks ``Apple`` and ``apple``)."""
    if len(texts) == texts.null_count:
        return None, None
    folded_extremes = pc.min_max(folded)
    low = pc.min(texts.filter(pc.equal(folded, folded_extremes["min"]))).as_py()
    high = pc.max(texts.filter(pc.equal(folded, folded_extremes["max"]))).as_py()
    return low, high


def _top(counted: pa.StructArray, text: bool) -> list[dict[str, Any]]:
    """The most frequent values (of ``value_counts``): count descending, then value in the
    column's order."""
    if not len(counted):
        return []
    found = counted.field("values")
    keys: dict[str, pa.Array] = {"count": counted.field("counts")}
    sort_keys = [("count", "descending")]
    if text:
        keys["fold"] = casefold(found)
        sort_keys.append(("fold", "ascending"))
    keys["value"] = found
    sort_keys.append(("value", "ascending"))
    keyed = pa.table(keys)
    first = pc.select_k_unstable(keyed, min(TOP_VALUES, keyed.num_rows), sort_keys=sort_keys)
    first = first.take(pc.sort_indices(keyed.take(first), sort_keys=sort_keys))
    chosen = keyed.take(first)
    cells = [engine.api_value(cell) for cell in chosen.column("value").to_pylist()]
    return [
        {"value": cell, "count": count}
        for cell, count in zip(cells, chosen.column("count").to_pylist(), strict=True)
    ]


def _by_row(column: Column, data: ColumnData, positions: pa.Array) -> dict[str, Any]:
    """The same statistics row by row, with the query language's equality and order keys."""
    kind = column.type
    present = [cell for cell in (data.objects[p] for p in positions.to_pylist()) if cell is not None]
    groups: dict[Any, list[Any]] = {}
    for cell in present:
        entry = groups.setdefault(equality_key(cell, kind), [cell, 0])
        entry[1] += 1
    ranked = sorted(groups.values(), key=lambda entry: (-entry[1], order_key(entry[0], kind)))
    in_order = sorted((entry[0] for entry in groups.values()), key=lambda cell: order_key(cell, kind))
    stats: dict[str, Any] = {
        "count": len(present),
        "distinct": len(groups),
        "min": in_order[0] if in_order else None,
        "max": in_order[-1] if in_order else None,
        "top": [{"value": cell, "count": count} for cell, count in ranked[:TOP_VALUES]],
    }
    if kind is ColumnType.NUMBER:
        total = engine.exact_sum(present)
        stats["sum"] = engine.mean_or_sum("sum", total, len(present))
        stats["mean"] = engine.mean_or_sum("avg", total, len(present))
    return stats
