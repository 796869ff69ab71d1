"""Choosing an index for a query, and the key ranges that serve it.

A column's index is usable when the column holds a slot and its index is ``ready`` (a new
index is backfilled first). Preference: a filter that pins values (``eq``, ``is``, ``in``),
then an ``order`` on an indexed column, then a range or ``starts_with`` filter. Only
top-level filters (ANDed with the rest) on plain indexed columns can narrow a range; filters
inside ``or``/``and`` groups, JSON paths, negations (except ``not.is.null``), ``neq``,
``contains`` and ``match`` cannot. Every served filter on the chosen column narrows the read
(their ranges are intersected). The ranges come from the operator registry.

Ranges are conservative: they contain every matching row (values cut at the key-size limit
widen them), and the planner re-checks every condition in memory, so the answer never
depends on the range being tight — only the cost does.
"""

from __future__ import annotations

from msgspec import Struct

from ..records import Column, Dataset
from ..store import encoding
from ..store.index import HIGH_VALUES, LOW, Range, group_range
from .ast import Filter, RowsQuery
from .cursor import Position
from .operators import REGISTRY, range_is_exact

_NULLS = group_range(encoding.NULL)
_VALUES = Range(LOW, HIGH_VALUES)

_Served = tuple[Filter, list[Range]]  # a filter an index can serve, and its key ranges


class IndexPath(Struct, frozen=True):
    column: Column
    ranges: tuple[Range, ...]  # in walk order
    descending: bool
    ordered: bool  # the walk yields rows in the query's order
    exact: bool  # the ranges match exactly the rows of the query's conditions (all on this column)
    by_row_index: bool = False  # pinned values, no order: each range is walked on its own
    #                             and the walks merged by row_index (the default order)
    pinned: bool = False  # a filter pins single values (eq/in/is): the read is the matches

    @property
    def slot(self) -> int:
        return int(self.column.slot or 0)


def choose(dataset: Dataset, query: RowsQuery) -> IndexPath | None:
    indexed = dataset.ready_indexes
    if not indexed:
        return None
    served: list[_Served] = []
    for flt in query.filters:
        if not isinstance(flt, Filter) or flt.ref.path or flt.column not in indexed:
            continue
        ranges = REGISTRY[flt.op].ranges(flt.value, indexed[flt.column].type, flt.negated)
        if ranges is not None:
            served.append((flt, ranges))
    order_ref = query.order[0].ref if len(query.order) == 1 else None
    order_column = order_ref.name if order_ref is not None and not order_ref.path else None
    pinned = [pair for pair in served if _pins(pair[0])]

    if order_column in indexed:
        term = query.order[0]
        own = [pair for pair in served if pair[0].column == order_column]
        if pinned and not own and pinned[0][0].column != order_column:
            return _unordered(indexed, pinned[0][0].column, served, query)
        ranges = _intersection(own) if own else None
        walk = _walk_order(ranges, term.descending, term.effective_nulls_first)
        exact = bool(own) and _exact_all(own, query, indexed)
        return IndexPath(
            indexed[order_column], walk, term.descending, True, exact, pinned=any(_pins(f) for f, _ in own)
        )
    if pinned:
        return _unordered(indexed, pinned[0][0].column, served, query)
    if served:
        return _unordered(indexed, served[0][0].column, served, query)
    return None


def _pins(flt: Filter) -> bool:
    """Whether ``flt`` keeps only single values (``not.is.null`` keeps every value: it does not)."""
    return REGISTRY[flt.op].pins and not flt.negated


def _unordered(indexed: dict[str, Column], column: str, served: list[_Served], query: RowsQuery) -> IndexPath:
    own = [pair for pair in served if pair[0].column == column]
    # A pinned value's entries are in row_index order (ties sort by row_index), and so is any
    # part of them, so with no explicit order the walks of several pinned values (cut by
    # the column's other filters) merge into the default order.
    pins = any(_pins(flt) for flt, _ in own)
    by_row_index = pins and not query.order
    ranges = tuple(sorted(_intersection(own), key=lambda bounds: bounds.low))
    exact = _exact_all(own, query, indexed)
    return IndexPath(indexed[column], ranges, False, by_row_index, exact, by_row_index, pinned=pins)


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


def _exact_all(own: list[_Served], query: RowsQuery, indexed: dict[str, Column]) -> bool:
    """Whether the ranges hold exactly the query's matches: every condition is one of ``own``
    and none was widened by a value cut at the key-size limit."""
    return len(own) == len(query.filters) and all(
        range_is_exact(flt, indexed[flt.column].type) for flt, _ in own
    )


def _walk_order(ranges: list[Range] | None, descending: bool, nulls_first: bool) -> tuple[Range, ...]:
    """Ranges in the order a walk visits them (each range is read in the walk's direction)."""
    if ranges is None:
        return (_NULLS, _VALUES) if nulls_first else (_VALUES, _NULLS)
    return tuple(sorted(ranges, key=lambda bounds: bounds.low, reverse=descending))


def resume_key(path: IndexPath, position: Position | None) -> bytes | None:
    """The index sort key of a cursor's row: an ordered walk resumes right after it."""
    if position is None:
        return None
    value = position.values[0] if position.values else None
    return encoding.sort_key(value, path.column.type, position.row_index)


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
