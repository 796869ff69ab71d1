"""From a ``RowsQuery`` to an access path, and running it.

Plans (``meta.plan``):

- ``index:<column>``: a Query on the column's index slot (``store/index.py``). An ``eq``,
  ``in``, ``is``, range or ``starts_with`` filter on an indexed column narrows the key range;
  an ``order`` on it (alone) is read in index order and stops after the page. ``in`` is
  several ranges read in turn. The total of a filter the key range captures exactly is
  counted on the index (``Select=COUNT``).
- ``scan`` with no filter, no search and ``row_index`` order: the shards merged in key
  order, stopping after the page; ``total`` from the dataset's counter.
- ``scan``: every shard read in full, then filtered, ordered and paged in memory.

Whatever the path, rows go through the same in-memory predicates and order
(``query.evaluate``), so plans differ in cost, never in answer. Shard streams are merged
with the query's exact sort key.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidQuery
from ..store import rows as row_store
from . import cursor, evaluate, index_plan
from .ast import Filter, RowsQuery

_LOOKAHEAD = 1  # one extra row tells whether there is a next page


@dataclass
class Result:
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int | None = None
    plan: str = "scan"
    items_read: int = 0
    next_cursor: str | None = None
    distinct: list[dict[str, Any]] | None = None


@dataclass
class _Stream:
    """Candidate rows, with how far they already honour the query."""

    rows: Iterator[dict[str, Any]]
    plan: str
    ordered: bool  # yields rows in the query's order
    counted_total: int | None = None  # total known without reading every match


def run(dataset: dict[str, Any], query: RowsQuery) -> Result:
    columns = dataset.get("columns", [])
    if query.cursor is not None and query.page.offset:
        raise InvalidQuery("Use either 'cursor' or 'offset', not both.", {"parameter": "cursor"})
    position = cursor.decode(dataset, query, query.cursor) if query.cursor else None
    meter = row_store.ReadMeter()
    order_key = evaluate.sort_key(query.order, columns)
    stream = _choose(dataset, query, meter, order_key, position)
    keep = _row_test(query, columns)

    if query.distinct is not None:
        matched = [row for row in stream.rows if keep(row)]
        values = evaluate.distinct_values(matched, query.distinct, columns)
        return Result(plan=stream.plan, items_read=meter.items_read, distinct=values)

    after = order_key(position.as_row()) if position is not None else None
    start, stop = query.page.offset, query.page.offset + query.page.limit
    if stream.ordered:
        # The stream already starts at the cursor; the check keeps cut index keys exact.
        matched_iter = (row for row in stream.rows if keep(row) and (after is None or order_key(row) > after))
        head = list(itertools.islice(matched_iter, stop + _LOOKAHEAD))
        window, more = head[start:stop], len(head) > stop
        if not query.count:
            total = None
        elif stream.counted_total is not None:
            total = stream.counted_total
        elif position is None:
            total = len(head) + sum(1 for _ in matched_iter)
        else:  # a cursor page's stream starts mid-way: count the whole query separately
            whole = _choose(dataset, query, meter, order_key, None)
            total = sum(1 for row in whole.rows if keep(row))
    else:
        matched = sorted((row for row in stream.rows if keep(row)), key=order_key)
        total = len(matched) if query.count else None
        if after is not None:
            matched = [row for row in matched if order_key(row) > after]
        window, more = matched[start:stop], len(matched) > stop
    next_cursor = cursor.encode(dataset, query, window[-1]) if more and window else None
    return Result(
        rows=[_clean(row) for row in window],
        total=total,
        plan=stream.plan,
        items_read=meter.items_read,
        next_cursor=next_cursor,
    )


def matching_items(dataset: dict[str, Any], filters: tuple[Filter, ...]) -> list[dict[str, Any]]:
    """Stored items of the rows matching ``filters`` (for bulk writes by condition)."""
    query = RowsQuery(filters=filters)
    columns = dataset.get("columns", [])
    meter = row_store.ReadMeter()
    stream = _choose(dataset, query, meter, evaluate.sort_key((), columns), None)
    keep = evaluate.compile_filters(filters, columns)
    return [row["_item"] for row in stream.rows if keep(row)]


def _choose(
    dataset: dict[str, Any],
    query: RowsQuery,
    meter: row_store.ReadMeter,
    order_key: Callable[[dict[str, Any]], Any],
    position: cursor.Position | None,
) -> _Stream:
    path = index_plan.choose(dataset, query)
    if path is not None:
        return _index_stream(dataset, query, path, meter, order_key, position)
    if _is_plain_row_order(query):
        return _merged_row_order(dataset, query, meter, position)
    return _Stream(_decoded(dataset, _all_items(dataset, meter)), "scan", ordered=False)


def _index_stream(
    dataset: dict[str, Any],
    query: RowsQuery,
    path: index_plan.IndexPath,
    meter: row_store.ReadMeter,
    order_key: Callable[[dict[str, Any]], Any],
    position: cursor.Position | None,
) -> _Stream:
    # An ordered walk resumes after the cursor's key; walks by row_index resume in each range.
    after = index_plan.resume_key(path, position) if path.ordered and not path.by_row_index else None
    exact = _memo_key(dataset, order_key)
    wanted = query.page.offset + query.page.limit + _LOOKAHEAD
    shards = int(dataset["shards"])
    # Each shard holds about 1/shards of any window; pages grow if a shard holds more.
    page_size = min(-(-wanted // shards) + 1, 1000)
    ranges: list[tuple[index_plan.Range, ...]]
    if path.by_row_index:
        ranges = [(bounds,) for bounds in index_plan.resume_ranges(path, position)]
    else:
        ranges = [path.ranges]
    walks = [
        index_plan.walk_shard(dataset, path, shard, part, meter, exact, page_size, after)
        for shard in range(shards)
        for part in ranges
    ]
    merged = heapq.merge(*walks, key=exact)
    counted = None
    if query.count and not query.search and not query.filters:
        counted = int(dataset.get("row_count", 0))
    elif query.count and path.ordered and path.exact and not query.search:
        counted = index_plan.count(dataset, path, meter)
    return _Stream(_decoded(dataset, merged), f"index:{path.column['name']}", path.ordered, counted)


def _memo_key(
    dataset: dict[str, Any], order_key: Callable[[dict[str, Any]], Any]
) -> Callable[[dict[str, Any]], Any]:
    """The exact order key of a stored item (decoding it once, kept on the item)."""

    def key(item: dict[str, Any]) -> Any:
        if "_row" not in item:
            item["_row"] = row_store.from_item(dataset, item)
        return order_key(item["_row"])

    return key


def _decoded(dataset: dict[str, Any], items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        row = item.get("_row") or row_store.from_item(dataset, item)
        row["_item"] = item
        yield row


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "_item"}


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
    if query.filters or query.search is not None or query.distinct is not None:
        return False
    return not query.order or (len(query.order) == 1 and query.order[0].column == "row_index")


def _merged_row_order(
    dataset: dict[str, Any], query: RowsQuery, meter: row_store.ReadMeter, position: cursor.Position | None
) -> _Stream:
    """Rows in row_index order, merged from every shard, read lazily.

    Rows are dealt to shards round-robin (``row_index % shards``), so each shard holds about
    ``1/shards`` of any window: reading each in pages of that share (plus a little) bounds
    the cost by the window, not the dataset. A cursor starts each shard after its row_index.
    """
    descending = bool(query.order) and query.order[0].descending
    partitions = row_store.partitions(dataset)
    wanted = query.page.offset + query.page.limit + _LOOKAHEAD
    page_size = min(wanted // len(partitions) + 2, 1000)
    after = position.row_index if position is not None else None
    streams = [
        row_store.query_partition(pk, meter, descending=descending, page_size=page_size, after_sk=after)
        for pk in partitions
    ]
    merged = heapq.merge(*streams, key=lambda item: item["sk"], reverse=descending)
    # No filter, no search: the total is the dataset's counter on every page, a cursor's too
    # (a cursor page must not read the whole dataset to count it).
    total = int(dataset.get("row_count", 0))
    return _Stream(_decoded(dataset, merged), "scan", ordered=True, counted_total=total)
