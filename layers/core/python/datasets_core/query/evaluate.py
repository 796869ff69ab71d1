"""In-memory evaluation of a parsed rows query: conditions, search, order and distinct values.

Index paths use it for what their key range does not cover, bulk writes re-check rows with
it, and it is the row-at-a-time statement of the semantics the columnar replica evaluator
(``query.columnar``) must agree with. Rows are in their API form (``{"id", "row_index",
"created_at", "updated_at", <column>: ...}``, values normalised, a missing column meaning null).

Decisions:

- Conditions follow ``operators`` (SQL three-valued logic: comparisons never match nulls).
  Groups combine TRUE/FALSE/UNKNOWN as SQL does (``or`` is TRUE if any item is, UNKNOWN if
  none is and one is UNKNOWN); ``not.`` of a group swaps TRUE and FALSE. A row matches when
  every top-level condition is TRUE.
- ``search`` is a casefolded substring match over the text (``operators.text_of``) of every
  *user* column; ``id`` and the timestamps are left out, or ``search=2024`` would match
  every row created that year.
- Order: each term in its field's order (``operators.order_key``); nulls last ascending and
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

from ..records import Column
from .ast import Condition, Group, OrderTerm
from .fields import Field, field_of, fields, resolve
from .operators import REGISTRY, equality_key, order_key, text_of

Row = Mapping[str, Any]
R = TypeVar("R", bound=Mapping[str, Any])
Columns = Iterable[Column]
Truth = Callable[[Row], "bool | None"]


def compile_conditions(conditions: Sequence[Condition], columns: Columns) -> Callable[[Row], bool]:
    """A predicate true for the rows every condition matches (fields resolved once)."""
    known = fields(columns)
    checks = [_compile(condition, known) for condition in conditions]

    def matches_all(row: Row) -> bool:
        return all(check(row) is True for check in checks)

    return matches_all


# The name the planner and bulk writes use: a filter list is a list of conditions.
compile_filters = compile_conditions


def _compile(condition: Condition, known: Mapping[str, Field]) -> Truth:
    if isinstance(condition, Group):
        items = [_compile(item, known) for item in condition.items]
        negated = condition.negated
        if condition.kind == "or":

            def any_true(row: Row) -> bool | None:
                result: bool | None = False
                for item in items:
                    value = item(row)
                    if value is True:
                        result = True
                        break
                    if value is None:
                        result = None
                return result if result is None else result != negated

            return any_true

        def all_true(row: Row) -> bool | None:
            result: bool | None = True
            for item in items:
                value = item(row)
                if value is False:
                    result = False
                    break
                if value is None:
                    result = None
            return result if result is None else result != negated

        return all_true
    field = resolve(condition.ref, known)
    op = REGISTRY[condition.op]
    operand, kind, negated, read = condition.value, field.kind, condition.negated, field.value
    return lambda row: op.truth(read(row), operand, kind, negated)


def matches(row: Row, conditions: Sequence[Condition], columns: Columns) -> bool:
    """Whether ``row`` passes every condition (over many rows, compile once)."""
    return not conditions or compile_conditions(conditions, columns)(row)


def compile_search(text: str, columns: Columns) -> Callable[[Row], bool]:
    """A predicate true for rows where some user column's text contains ``text``, casefolded."""
    needle = text.casefold()
    targets = [(field.name, field.kind) for field in fields(columns).values() if not field.metadata]

    def found(row: Row) -> bool:
        for name, kind in targets:
            value = row.get(name)
            if value is not None and needle in text_of(value, kind).casefold():
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
    with a cursor position (``position_key``).
    """
    known = fields(columns)
    readers = [resolve(term.ref, known).value for term in order]
    key_of = position_key(order, columns)

    def key(row: Row) -> tuple[Any, ...]:
        return key_of([read(row) for read in readers], row.get("row_index", 0))

    return key


def position_key(
    order: Sequence[OrderTerm], columns: Columns
) -> Callable[[Sequence[Any], int], tuple[Any, ...]]:
    """The key of a position given by its order values and row_index (what a cursor holds)."""
    known = fields(columns)
    terms = [(resolve(t.ref, known).kind, t.descending, t.effective_nulls_first) for t in order]

    def key(term_values: Sequence[Any], row_index: int) -> tuple[Any, ...]:
        parts: list[Any] = []
        for (kind, descending, nulls_first), value in zip(terms, term_values, strict=True):
            if value is None:
                parts.append((0 if nulls_first else 2, None))
            else:
                value_key = order_key(value, kind)
                parts.append((1, _Descending(value_key) if descending else value_key))
        parts.append(row_index)
        return tuple(parts)

    return key


def order_values(order: Sequence[OrderTerm], columns: Columns) -> Callable[[Row], list[Any]]:
    """A row's values of the order terms (paths followed), as a cursor records them."""
    known = fields(columns)
    readers = [resolve(term.ref, known).value for term in order]
    return lambda row: [read(row) for read in readers]


def sort_rows(rows: Iterable[R], order: Sequence[OrderTerm], columns: Columns) -> list[R]:
    """``rows`` in ``order`` (row_index ascending when empty, and as the final tie-break)."""
    return sorted(rows, key=sort_key(order, columns))


def distinct_values(rows: Iterable[Row], column: str, columns: Columns) -> list[dict[str, Any]]:
    """``[{"value", "count"}]`` of ``column`` over ``rows``, nulls counted as the value null."""
    kind = field_of(column, fields(columns)).kind
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
