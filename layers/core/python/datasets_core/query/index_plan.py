"""Choosing an index for a query, and the key ranges that serve it.

A column's index is usable when the column holds a slot and its index is ``ready`` (a new
index is backfilled first). Preference: a filter that pins values (``eq``, ``is``, ``in``),
then an ``order`` on an indexed column, then a range or ``starts_with`` filter. Negated
filters (except ``not.is.null``), ``neq`` and ``contains`` cannot narrow a key range.
Every served filter on the chosen column narrows the read (their ranges are intersected).

Ranges are conservative: they contain every matching row (values cut at the key-size limit
widen them), and the planner re-checks every filter in memory, so the answer never depends
on the range being tight — only the cost does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..columns import ColumnType
from ..store import encoding
from ..store import index as index_store
from ..store.index import HIGH_VALUES, LOW, Range
from ..store.rows import ReadMeter
from .ast import Filter, RowsQuery
from .cursor import Position

_PINNING = ("eq", "is", "in")
_RANGE_OPS = ("gt", "gte", "lt", "lte", "starts_with")
_NULLS = index_store.group_range(encoding.NULL)
_VALUES = Range(LOW, HIGH_VALUES)

_Served = tuple[Filter, list[Range]]  # a filter an index can serve, and its key ranges


@dataclass(frozen=True)
class IndexPath:
    column: dict[str, Any]
    ranges: tuple[Range, ...]  # in walk order
    descending: bool
    ordered: bool  # the walk yields rows in the query's order
    exact: bool  # the ranges match exactly the rows of the query's filters (all on this column)
    by_row_index: bool = False  # pinned values, no order: each range is walked on its own
    #                             and the walks merged by row_index (the default order)

    @property
    def slot(self) -> int:
        return int(self.column["slot"])


def ready_columns(dataset: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        column["name"]: column
        for column in dataset.get("columns", [])
        if column.get("slot") and column.get("index_status", "ready") == "ready"
    }


def choose(dataset: dict[str, Any], query: RowsQuery) -> IndexPath | None:
    indexed = ready_columns(dataset)
    if not indexed:
        return None
    served = [
        (flt, ranges)
        for flt in query.filters
        if flt.column in indexed and (ranges := _ranges(flt, indexed[flt.column])) is not None
    ]
    order_column = query.order[0].column if len(query.order) == 1 else None
    pinned = [pair for pair in served if _pins(pair[0])]

    if order_column in indexed:
        term = query.order[0]
        own = [pair for pair in served if pair[0].column == order_column]
        if pinned and not own and pinned[0][0].column != order_column:
            return _unordered(indexed, pinned[0][0].column, served, query)
        ranges = _intersection(own) if own else None
        walk = _walk_order(ranges, term.descending, term.effective_nulls_first)
        exact = bool(own) and _exact_all(own, query, indexed)
        return IndexPath(indexed[order_column], walk, term.descending, True, exact)
    if pinned:
        return _unordered(indexed, pinned[0][0].column, served, query)
    if served:
        return _unordered(indexed, served[0][0].column, served, query)
    return None


def _pins(flt: Filter) -> bool:
    """Whether ``flt`` keeps only single values (``not.is.null`` keeps every value: it does not)."""
    return flt.op in _PINNING and not flt.negated


def _unordered(
    indexed: dict[str, dict[str, Any]], column: str, served: list[_Served], query: RowsQuery
) -> IndexPath:
    own = [pair for pair in served if pair[0].column == column]
    # A pinned value's entries are in row_index order (ties sort by row_index), and so is any
    # part of them, so with no explicit order the walks of several pinned values (cut by
    # the column's other filters) merge into the default order.
    pinned = any(_pins(flt) for flt, _ in own) and not query.order
    ranges = tuple(sorted(_intersection(own), key=lambda bounds: bounds.low))
    return IndexPath(indexed[column], ranges, False, pinned, _exact_all(own, query, indexed), pinned)


def _intersection(pairs: list[_Served]) -> list[Range]:
    """The key ranges every filter of ``pairs`` (all on one column) allows: ``gte`` and ``lt``
    together read the span between them, not everything above the first."""
    ranges = pairs[0][1]
    for _, others in pairs[1:]:
        ranges = [
            Range(max(a.low, b.low), min(a.high, b.high))
            for a in ranges
            for b in others
            if max(a.low, b.low) <= min(a.high, b.high)
        ]
    return ranges


def _exact_all(own: list[_Served], query: RowsQuery, indexed: dict[str, dict[str, Any]]) -> bool:
    """Whether the ranges hold exactly the query's matches: every filter is one of ``own``
    and none was widened by a value cut at the key-size limit."""
    return len(own) == len(query.filters) and all(_exact(flt, indexed) for flt, _ in own)


def _walk_order(ranges: list[Range] | None, descending: bool, nulls_first: bool) -> tuple[Range, ...]:
    """Ranges in the order a walk visits them (each range is read in the walk's direction)."""
    if ranges is None:
        return (_NULLS, _VALUES) if nulls_first else (_VALUES, _NULLS)
    return tuple(sorted(ranges, key=lambda bounds: bounds.low, reverse=descending))


def _exact(flt: Filter, indexed: dict[str, dict[str, Any]]) -> bool:
    """Whether the filter's ranges hold exactly its matches (no value cut at the key limit)."""
    kind = indexed[flt.column]["type"]
    operands = flt.value if flt.op == "in" else (flt.value,)
    for operand in operands:
        if operand is None or isinstance(operand, bool):
            continue
        if flt.op == "starts_with":
            size = len(encoding.casefold_prefix(operand))
        else:
            size = len(encoding.encode(operand, kind))
        if size > encoding.MAX_VALUE_BYTES:
            return False
    return True


def _ranges(flt: Filter, column: dict[str, Any]) -> list[Range] | None:
    """Key ranges holding every row ``flt`` matches, or None when the index cannot help."""
    kind = ColumnType(column["type"])
    if flt.negated:
        return [_VALUES] if flt.op == "is" and flt.value is None else None
    if flt.op == "eq" or (flt.op == "is" and flt.value is not None):
        return [_group(flt.value, kind)]
    if flt.op == "is":
        return [_NULLS]
    if flt.op == "in":
        groups = {_group(value, kind) for value in flt.value}
        return sorted(groups, key=lambda bounds: bounds.low)
    if flt.op == "starts_with":
        if kind is not ColumnType.STRING:
            return None
        prefix = encoding.cut(encoding.casefold_prefix(flt.value))
        return [index_store.group_range(prefix)]
    if flt.op in _RANGE_OPS:
        full = encoding.encode(flt.value, kind)
        key, was_cut = encoding.cut(full), len(full) > encoding.MAX_VALUE_BYTES
        after_ties = index_store.group_range(key).high
        if flt.op in ("gt", "gte"):
            low = after_ties if flt.op == "gt" and not was_cut else key
            return [Range(low, HIGH_VALUES)]
        high = key if flt.op == "lt" and not was_cut else after_ties
        return [Range(LOW, high)]
    return None


def _group(value: Any, kind: ColumnType) -> Range:
    return index_store.group_range(encoding.cut(encoding.encode(value, kind)))


def resume_key(path: IndexPath, position: Position | None) -> bytes | None:
    """The index sort key of a cursor's row: an ordered walk resumes right after it."""
    if position is None:
        return None
    value = position.values.get(path.column["name"]) if position.values else None
    return encoding.sort_key(value, path.column["type"], position.row_index)


def resume_ranges(path: IndexPath, position: Position | None) -> tuple[Range, ...]:
    """A ``by_row_index`` path's ranges, each cut to start after the cursor's row.

    Each such range lies in one pinned value's group (``eq``, ``in``, ``is``), whose keys are
    the group's value part (the range's low bound) followed by the row_index: the first key
    after row ``r`` is ``low + row_index(r + 1)``, whatever value the cursor's row held.
    """
    if position is None:
        return path.ranges
    resumed = []
    for bounds in path.ranges:
        low = max(bounds.low, bounds.low + encoding.row_index_suffix(position.row_index + 1))
        if low <= bounds.high:
            resumed.append(Range(low, bounds.high))
    return tuple(resumed)


def walk_shard(
    dataset: dict[str, Any],
    path: IndexPath,
    shard: int,
    ranges: tuple[Range, ...],
    meter: ReadMeter,
    exact_key: Callable[[dict[str, Any]], Any],
    page_size: int,
    after: bytes | None,
) -> Iterator[dict[str, Any]]:
    return index_store.walk(
        dataset, path.slot, shard, list(ranges), path.descending, meter, exact_key, page_size, after
    )


def count(dataset: dict[str, Any], path: IndexPath, meter: ReadMeter) -> int:
    return index_store.count(dataset, path.slot, list(path.ranges), meter)
