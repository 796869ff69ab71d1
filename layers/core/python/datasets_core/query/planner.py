"""From a ``RowsQuery`` to an access path, and running it.

Plans (``meta.plan``):

- ``scan``: read every partition (shard) of the dataset, then filter, search, order and
  page in memory. Always correct; costs the dataset's size.
- ``scan`` with no filter, no search and ``row_index`` order is served by merging the
  shards in key order and stopping after ``offset + limit`` rows; ``total`` comes from the
  dataset's counter.
- ``index:<column>`` (see ``query.index_plan``): a Query on the column's index slot.

Whatever the path, the rows it yields go through the same in-memory predicates and order
(``query.evaluate``), so plans differ in cost, never in answer.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..store import rows as row_store
from . import evaluate
from .ast import Filter, RowsQuery


@dataclass
class Result:
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int | None = None
    plan: str = "scan"
    items_read: int = 0
    next_cursor: str | None = None
    distinct: list[dict[str, Any]] | None = None


def run(dataset: dict[str, Any], query: RowsQuery) -> Result:
    columns = dataset.get("columns", [])
    meter = row_store.ReadMeter()
    if _is_plain_row_order(query):
        return _merged_prefix(dataset, query, meter)
    keep = _row_test(query, columns)
    candidates = (row_store.from_item(dataset, item) for item in _all_items(dataset, meter))
    matched = [row for row in candidates if keep(row)]
    if query.distinct is not None:
        values = evaluate.distinct_values(matched, query.distinct, columns)
        return Result(plan="scan", items_read=meter.items_read, distinct=values)
    ordered = evaluate.sort_rows(matched, query.order, columns)
    window = ordered[query.page.offset : query.page.offset + query.page.limit]
    return Result(
        rows=window,
        total=len(matched) if query.count else None,
        plan="scan",
        items_read=meter.items_read,
    )


def matching_items(dataset: dict[str, Any], filters: tuple[Filter, ...]) -> list[dict[str, Any]]:
    """Stored items of the rows matching ``filters`` (for bulk writes by condition)."""
    keep = evaluate.compile_filters(filters, dataset.get("columns", []))
    meter = row_store.ReadMeter()
    return [item for item in _all_items(dataset, meter) if keep(row_store.from_item(dataset, item))]


def _row_test(query: RowsQuery, columns: list[dict[str, Any]]) -> Callable[[dict[str, Any]], bool]:
    """One compiled test for the query's filters and search (compiled once, run per row)."""
    keep = evaluate.compile_filters(query.filters, columns)
    if query.search is None:
        return keep
    found = evaluate.compile_search(query.search, columns)
    return lambda row: keep(row) and found(row)


def _all_items(dataset: dict[str, Any], meter: row_store.ReadMeter) -> Iterator[dict[str, Any]]:
    for pk in row_store.partitions(dataset):
        yield from row_store.query_partition(pk, meter)


def _is_plain_row_order(query: RowsQuery) -> bool:
    if query.filters or query.search is not None or query.distinct is not None or query.cursor:
        return False
    return not query.order or (len(query.order) == 1 and query.order[0].column == "row_index")


def _merged_prefix(dataset: dict[str, Any], query: RowsQuery, meter: row_store.ReadMeter) -> Result:
    """The first ``offset + limit`` rows in row_index order, merged from every shard.

    Rows are dealt to shards round-robin (``row_index % shards``), so each shard holds about
    ``1/shards`` of any window: reading each lazily in pages of that share (plus a little)
    bounds the cost by the window, not the dataset. ``total`` is the dataset's exact counter.
    """
    descending = bool(query.order) and query.order[0].descending
    wanted = query.page.offset + query.page.limit
    partitions = row_store.partitions(dataset)
    page_size = min(wanted // len(partitions) + 2, 1000)
    streams = [
        row_store.query_partition(pk, meter, descending=descending, page_size=page_size) for pk in partitions
    ]
    merged = heapq.merge(*streams, key=lambda item: item["sk"], reverse=descending)
    window: list[dict[str, Any]] = []
    for position, item in enumerate(merged):
        if position >= wanted:
            break
        if position >= query.page.offset:
            window.append(row_store.from_item(dataset, item))
    return Result(
        rows=window,
        total=int(dataset.get("row_count", 0)) if query.count else None,
        plan="scan",
        items_read=meter.items_read,
    )
