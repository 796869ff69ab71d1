"""In-memory evaluation of a parsed rows query: filters, search, order and distinct values.

The scan plan runs it over the rows it reads, index plans use it for what their key
condition does not cover, and it is the reference the DynamoDB conditions must agree with.
Rows are in their API form (``{"id", "row_index", "created_at", "updated_at", <column>: ...}``,
values normalised, a missing column meaning null).

Decisions:

- Filters follow ``operators`` (SQL three-valued logic: comparisons never match nulls).
- ``search`` is a casefolded substring match over the text (``values.text_of``) of every
  *user* column; ``id`` and the timestamps are left out, or ``search=2024`` would match
  every row created that year.
- Order: each term in its column's order (``operators.order_key``); nulls last ascending and
  first descending unless ``nullsfirst``/``nullslast`` says otherwise; remaining ties by
  ``row_index`` ascending, always, so the order is total and pages never overlap.
- Distinct values: grouped by ``eq`` equality (``1`` and ``1.0`` are one value, json objects
  regardless of key order); sorted by count descending, then by value in the column's
  order with null as the last value of its count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import total_ordering
from typing import Any, TypeVar

from .. import values
from .ast import Filter, OrderTerm
from .operators import REGISTRY, equality_key, field_of, fields, order_key

Row = Mapping[str, Any]
R = TypeVar("R", bound=Mapping[str, Any])
Columns = Iterable[Mapping[str, Any]]


def compile_filters(filters: Sequence[Filter], columns: Columns) -> Callable[[Row], bool]:
    """A predicate true for the rows every filter matches (resolves columns once)."""
    known = fields(columns)
    checks = [(flt, REGISTRY[flt.op], field_of(flt.column, known).type) for flt in filters]

    def matches_all(row: Row) -> bool:
        return all(op.test(row.get(flt.column), flt.value, kind, flt.negated) for flt, op, kind in checks)

    return matches_all


def matches(row: Row, filters: Sequence[Filter], columns: Columns) -> bool:
    """Whether ``row`` passes every filter (over many rows, ``compile_filters`` resolves columns once)."""
    return not filters or compile_filters(filters, columns)(row)


def compile_search(text: str, columns: Columns) -> Callable[[Row], bool]:
    """A predicate true for rows where some user column's text contains ``text``, casefolded."""
    needle = text.casefold()
    targets = [(field.name, field.type) for field in fields(columns).values() if not field.metadata]

    def found(row: Row) -> bool:
        for name, kind in targets:
            value = row.get(name)
            if value is not None and needle in values.text_of(value, kind).casefold():
                return True
        return False

    return found


def search_matches(row: Row, text: str, columns: Columns) -> bool:
    """Whether ``row`` matches ``search=text``."""
    return compile_search(text, columns)(row)


@total_ordering
class _Descending:
    """Wraps a key to invert its order, so one ascending key serves mixed directions."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and bool(self.key == other.key)

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.key < self.key)

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"desc({self.key!r})"


def sort_key(order: Sequence[OrderTerm], columns: Columns) -> Callable[[Row], tuple[Any, ...]]:
    """The key of a row in ``order``: ascending comparison of keys is the query's total order.

    Usable with ``sorted``, ``heapq.merge`` (merging shard streams) and for comparing a row
    with a cursor position.
    """
    known = fields(columns)
    terms = [(t.column, field_of(t.column, known).type, t.descending, t.effective_nulls_first) for t in order]

    def key(row: Row) -> tuple[Any, ...]:
        parts: list[Any] = []
        for column, kind, descending, nulls_first in terms:
            value = row.get(column)
            if value is None:
                parts.append((0 if nulls_first else 2, None))
            else:
                value_key = order_key(value, kind)
                parts.append((1, _Descending(value_key) if descending else value_key))
        parts.append(row.get("row_index", 0))
        return tuple(parts)

    return key


def sort_rows(rows: Iterable[R], order: Sequence[OrderTerm], columns: Columns) -> list[R]:
    """``rows`` in ``order`` (row_index ascending when empty, and as the final tie-break)."""
    return sorted(rows, key=sort_key(order, columns))


def distinct_values(rows: Iterable[Row], column: str, columns: Columns) -> list[dict[str, Any]]:
    """``[{"value", "count"}]`` of ``column`` over ``rows``, nulls counted as the value null."""
    kind = field_of(column, fields(columns)).type
    groups: dict[Any, list[Any]] = {}  # equality key (None for null) → [first value seen, count]
    for row in rows:
        value = row.get(column)
        group = None if value is None else equality_key(value, kind)
        entry = groups.get(group)
        if entry is None:
            groups[group] = [value, 1]
        else:
            entry[1] += 1

    def rank(entry: list[Any]) -> tuple[Any, ...]:
        value, count = entry
        return (-count, 1, None) if value is None else (-count, 0, order_key(value, kind))

    return [{"value": value, "count": count} for value, count in sorted(groups.values(), key=rank)]
