"""From a ``RowsQuery`` to an access path, chosen once, and the page it yields.

Plans (``meta.plan``):

- ``index:<column>``: an index range (``paths.IndexRangePath``). An ``eq``, ``in``, ``is``,
  range or ``starts_with`` filter on a ready indexed column narrows the key range; an
  ``order`` on it (alone) is read in index order and stops after the page. The total of a
  filter the key range captures exactly is counted on the index.
- ``scan``: no condition, no search, ``row_index`` order and a shallow offset: the shards
  merged in key order, stopping after the page; ``total`` from the dataset's counter.
- ``replica``: everything else (search, contains, neq, match, groups, JSON paths, filters on
  unindexed columns, distinct, aggregates, multi-column order, deep offset, ``as_of``) —
  answered from the columnar replica by the analytics function.
- ``replica+index:<column>``: the page came from the index, its total from the replica (the
  index would have read more than a page's budget to count it).

A DynamoDB path that would read more than ``READ_BUDGET`` items for one page (an unordered
range with many matches, a count with in-memory filters) gives the query to the replica.
Whatever the path, rows go through the same in-memory semantics (``query.evaluate``), so plans
differ in cost, never in answer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from msgspec import Struct, field

from ..errors import InvalidQuery
from ..records import Dataset
from . import cursor, evaluate, index_plan
from .ast import RowsQuery
from .paths import LOOKAHEAD, Candidates, IndexRangePath, Meter, OverBudget, RowOrderPath

# Items one request may read from DynamoDB before the replica answers instead (a page of
# 1,000 rows, its look-ahead and a modest count or in-memory filter on top).
READ_BUDGET = 5_000
# Beyond this offset a page answers from the replica: skipping costs what it skips otherwise.
DEEP_OFFSET = 1_000


class Result(Struct):
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int | None = None
    plan: str = "scan"
    items_read: int = 0
    next_cursor: str | None = None
    total_source: str | None = None
    total_pending: bool = False  # the total must come from the replica (over the read budget)


def needs_replica(dataset: Dataset, query: RowsQuery) -> bool:
    """Whether only the replica can answer ``query`` within a request's means."""
    if query.as_of is not None or query.aggregates or query.distinct is not None or query.search:
        return True
    if query.page.offset > DEEP_OFFSET:
        return True
    return _dynamo_path(dataset, query, Meter()) is None


def _dynamo_path(dataset: Dataset, query: RowsQuery, meter: Meter) -> IndexRangePath | RowOrderPath | None:
    path = index_plan.choose(dataset, query)
    if path is not None:
        # Several order terms are sorted in memory: only over a pinned value's matches.
        if len(query.order) > 1 and not path.pinned:
            return None
        return IndexRangePath(dataset, query, path, meter)
    if _is_plain_row_order(query):
        return RowOrderPath(dataset, query, meter)
    return None


def _is_plain_row_order(query: RowsQuery) -> bool:
    if query.filters or query.search is not None:
        return False
    return not query.order or (
        len(query.order) == 1 and query.order[0].column == "row_index" and not query.order[0].ref.path
    )


def run(dataset: Dataset, query: RowsQuery) -> Result | None:
    """The page of ``query`` from DynamoDB, or None when the replica must answer it."""
    if query.cursor is not None and query.page.offset:
        raise InvalidQuery("Use either 'cursor' or 'offset', not both.", {"parameter": "cursor"})
    if needs_replica(dataset, query):
        return None
    position = cursor.decode(dataset, query, query.cursor) if query.cursor else None
    meter = Meter(READ_BUDGET)
    path = _dynamo_path(dataset, query, meter)
    assert path is not None
    order_key = evaluate.sort_key(query.order, dataset.columns)
    try:
        candidates = path.open(order_key, position)
        return page(dataset, query, candidates, order_key, position, meter, path.plan)
    except OverBudget:
        return None


def page(
    dataset: Dataset,
    query: RowsQuery,
    candidates: Candidates,
    order_key: Callable[[dict[str, Any]], Any],
    position: cursor.Position | None,
    meter: Meter,
    plan: str,
) -> Result:
    keep = _row_test(query, dataset)
    key_of = evaluate.position_key(query.order, dataset.columns)
    after = key_of(position.values, position.row_index) if position is not None else None
    start, stop = query.page.offset, query.page.offset + query.page.limit
    total: int | None = None
    source = candidates.total_source
    pending = False
    if candidates.ordered:
        # The stream already starts at the cursor; the check keeps cut index keys exact.
        matched = (row for row in candidates.rows if keep(row) and (after is None or order_key(row) > after))
        head = list(itertools.islice(matched, stop + LOOKAHEAD))
        window, more = head[start:stop], len(head) > stop
        if query.count:
            if candidates.total is not None:
                total = candidates.total
            elif position is None:
                try:
                    total, source = len(head) + sum(1 for _ in matched), "page"
                except OverBudget:
                    pending = True
            else:  # a cursor page's stream starts mid-way: the whole count is the replica's
                pending = True
    else:
        everything = sorted((row for row in candidates.rows if keep(row)), key=order_key)
        if query.count:
            total, source = len(everything), "page"
        if after is not None:
            everything = [row for row in everything if order_key(row) > after]
        window, more = everything[start:stop], len(everything) > stop
    values_of = evaluate.order_values(query.order, dataset.columns)
    next_cursor = (
        cursor.encode(dataset, query, values_of(window[-1]), window[-1]["row_index"])
        if more and window
        else None
    )
    return Result(
        rows=[_clean(row) for row in window],
        total=total,
        plan=plan,
        items_read=meter.items_read,
        next_cursor=next_cursor,
        total_source=source,
        total_pending=pending,
    )


def matching_items(dataset: Dataset, conditions: tuple[Any, ...]) -> list[dict[str, Any]] | None:
    """Stored items of the rows matching ``conditions`` when an index serves them within the read
    budget (bulk writes, upserts); None when the replica must find them."""
    query = RowsQuery(filters=conditions, count=False)
    path = index_plan.choose(dataset, query)
    if path is None:
        return None
    meter = Meter(READ_BUDGET * 4)
    keep = evaluate.compile_conditions(conditions, dataset.columns)
    try:
        candidates = IndexRangePath(dataset, query, path, meter, consistent=True).open(
            evaluate.sort_key((), dataset.columns), None
        )
        return [row["_item"] for row in candidates.rows if keep(row)]
    except OverBudget:
        return None


def _row_test(query: RowsQuery, dataset: Dataset) -> Callable[[dict[str, Any]], bool]:
    """One compiled test for the query's conditions and search (compiled once, run per row)."""
    keep = evaluate.compile_conditions(query.filters, dataset.columns)
    if query.search is None:
        return keep
    found = evaluate.compile_search(query.search, dataset.columns)
    return lambda row: keep(row) and found(row)


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if name != "_item"}
