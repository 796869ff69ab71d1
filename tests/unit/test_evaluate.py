"""In-memory evaluation: filters, search, type-aware order and distinct values."""

from __future__ import annotations

import functools
import heapq
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datasets_core import values
from datasets_core.errors import InvalidQuery
from datasets_core.query.ast import Filter, OrderTerm, Ref
from datasets_core.query.evaluate import (
    compile_filters,
    distinct_values,
    matches,
    search_matches,
    sort_key,
    sort_rows,
)
from datasets_core.query.grammar import parse_rows_query
from datasets_core.records import Column

COLUMNS: list[Any] = [
    {"name": "name", "type": "string", "attr": "c0", "indexed": False},
    {"name": "amount", "type": "number", "attr": "c1", "indexed": False},
    {"name": "active", "type": "boolean", "attr": "c2", "indexed": False},
    {"name": "born", "type": "date", "attr": "c3", "indexed": False},
    {"name": "seen", "type": "datetime", "attr": "c4", "indexed": False},
    {"name": "meta", "type": "json", "attr": "c5", "indexed": False},
]
COLUMNS = [Column.from_item(column) for column in COLUMNS]  # type: ignore[arg-type]
TYPES: dict[str, str] = {column.name: str(column.type) for column in COLUMNS} | {
    "id": "string",
    "row_index": "number",
    "created_at": "datetime",
    "updated_at": "datetime",
}


def row(index: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"00000000-0000-8000-8000-{index:012d}",
        "row_index": index,
        "created_at": f"2024-01-01T00:00:{index % 60:02d}.000Z",
        "updated_at": "2024-06-01T00:00:00.000Z",
        **fields,
    }


def order(text: str) -> tuple[OrderTerm, ...]:
    return parse_rows_query({"order": [text]}, COLUMNS).order


def filters(**params: str) -> tuple[Filter, ...]:
    return parse_rows_query({k: [v] for k, v in params.items()}, COLUMNS).filters


def column_of(rows: list[dict[str, Any]], name: str) -> list[Any]:
    return [r.get(name) for r in rows]


# --- filters and search ---------------------------------------------------------------------------
def test_filters_and_together() -> None:
    rows = [row(0, amount=150, name="Acme"), row(1, amount=150, name="Other"), row(2, amount=50, name="Acme")]
    wanted = filters(amount="gte.100", name="contains.acm")
    assert [r["row_index"] for r in rows if matches(r, wanted, COLUMNS)] == [0]
    assert matches(rows[1], (), COLUMNS)


def test_missing_column_is_null() -> None:
    predicate = compile_filters(filters(amount="neq.1"), COLUMNS)
    assert not predicate(row(0)) and predicate(row(1, amount=2))
    assert compile_filters(filters(amount="is.null"), COLUMNS)(row(0))


def test_metadata_filters() -> None:
    r = row(5)
    assert matches(r, filters(row_index="in.(4,5)", created_at="gt.2024-01-01T00:00:04.5Z"), COLUMNS)
    assert not matches(r, filters(id="neq.00000000-0000-8000-8000-000000000005"), COLUMNS)


def test_unknown_filter_column_is_refused() -> None:
    with pytest.raises(InvalidQuery):
        matches(row(0), (Filter(Ref("gone"), "eq", 1),), COLUMNS)


@pytest.mark.parametrize(
    ("fields", "text", "expected"),
    [
        ({"name": "ACME Corp"}, "acme", True),
        ({"name": "Hauptstraße"}, "STRASSE", True),
        ({"amount": 1200}, "20", True),
        ({"amount": 1.5}, "1.5", True),
        ({"active": False}, "fal", True),
        ({"born": "2024-03-01"}, "2024-03", True),
        ({"seen": "2024-03-01T10:00:00Z"}, "t10", True),
        ({"meta": {"Tag": "x"}}, '"tag":"x"', True),
        ({"name": "a+b"}, "a+b", True),
        ({"name": None}, "none", False),
        ({}, "2024", False),  # metadata (created_at, id) is not searched
        ({"name": "x"}, "00000000", False),
    ],
)
def test_search_is_a_casefolded_substring_of_user_columns(
    fields: dict[str, Any], text: str, expected: bool
) -> None:
    assert search_matches(row(1, **fields), text, COLUMNS) is expected


# --- order ----------------------------------------------------------------------------------------
def test_numbers_sort_numerically_not_as_text() -> None:
    rows = [row(0, amount=1200), row(1, amount=75), row(2, amount=150), row(3, amount=-2.5)]
    assert column_of(sort_rows(rows, order("amount.asc"), COLUMNS), "amount") == [-2.5, 75, 150, 1200]
    assert column_of(sort_rows(rows, order("amount.desc"), COLUMNS), "amount") == [1200, 150, 75, -2.5]


def test_text_sorts_casefolded_with_exact_text_breaking_ties() -> None:
    rows = [row(i, name=n) for i, n in enumerate(["banana", "Apple", "apple", "Cherry", "éclair", "APPLE"])]
    assert column_of(sort_rows(rows, order("name"), COLUMNS), "name") == [
        "APPLE",
        "Apple",
        "apple",
        "banana",
        "Cherry",
        "éclair",
    ]


def test_dates_datetimes_booleans_and_json() -> None:
    rows = [
        row(0, born="2024-10-01", seen="2024-01-01T00:00:00.5Z", active=True, meta={"b": 1}),
        row(1, born="2024-09-30", seen="2024-01-01T00:00:00Z", active=False, meta=[1]),
        row(2, born="2023-12-31", seen="2024-01-01T00:00:00.25Z", active=True, meta={"a": 2}),
    ]
    assert column_of(sort_rows(rows, order("born"), COLUMNS), "row_index") == [2, 1, 0]
    assert column_of(sort_rows(rows, order("seen"), COLUMNS), "row_index") == [1, 2, 0]  # not text order
    assert column_of(sort_rows(rows, order("active"), COLUMNS), "row_index") == [1, 0, 2]
    assert column_of(sort_rows(rows, order("meta"), COLUMNS), "row_index") == [
        1,
        2,
        0,
    ]  # [1] < {"a"... < {"b"...


def test_nulls_last_ascending_first_descending_unless_told() -> None:
    rows = [row(0, amount=2), row(1), row(2, amount=1), row(3, amount=None)]
    assert column_of(sort_rows(rows, order("amount"), COLUMNS), "row_index") == [2, 0, 1, 3]
    assert column_of(sort_rows(rows, order("amount.desc"), COLUMNS), "row_index") == [1, 3, 0, 2]
    assert column_of(sort_rows(rows, order("amount.nullsfirst"), COLUMNS), "row_index") == [1, 3, 2, 0]
    assert column_of(sort_rows(rows, order("amount.desc.nullslast"), COLUMNS), "row_index") == [0, 2, 1, 3]


def test_ties_break_by_row_index_ascending_even_descending() -> None:
    rows = [row(i, amount=i % 2) for i in (5, 2, 4, 1, 3, 0)]
    assert column_of(sort_rows(rows, order("amount.desc"), COLUMNS), "row_index") == [1, 3, 5, 0, 2, 4]
    assert column_of(sort_rows(rows, (), COLUMNS), "row_index") == [0, 1, 2, 3, 4, 5]


def test_metadata_order() -> None:
    rows = [row(i, created_at=c) for i, c in enumerate(["2024-01-02T00:00:00Z", "2024-01-01T00:00:00.5Z"])]
    assert column_of(sort_rows(rows, order("created_at"), COLUMNS), "row_index") == [1, 0]
    assert column_of(sort_rows(rows, order("row_index.desc"), COLUMNS), "row_index") == [1, 0]
    assert column_of(sort_rows(rows, order("id.desc"), COLUMNS), "row_index") == [1, 0]


def test_multi_term_order() -> None:
    rows = [row(0, name="b", amount=1), row(1, name="a", amount=1), row(2, name="c", amount=2)]
    assert column_of(sort_rows(rows, order("amount.desc,name"), COLUMNS), "row_index") == [2, 1, 0]


def test_sort_key_merges_sorted_streams() -> None:
    rows = [row(i, amount=random.Random(i).randint(0, 5)) for i in range(30)]
    terms = order("amount.desc")
    key = sort_key(terms, COLUMNS)
    shards = [sort_rows(rows[s::3], terms, COLUMNS) for s in range(3)]
    assert list(heapq.merge(*shards, key=key)) == sort_rows(rows, terms, COLUMNS)


# Reference order written independently of the implementation: a comparator straight from SPEC §5.
def _compare_values(a: Any, b: Any, kind: str) -> int:
    if kind == "string":
        a, b = (a.casefold(), a), (b.casefold(), b)
    elif kind in ("datetime",):
        a, b = values.parse_datetime(a), values.parse_datetime(b)
    elif kind == "json":
        a, b = values.text_of(a, "json"), values.text_of(b, "json")
    return (a > b) - (a < b)


def _reference(terms: tuple[OrderTerm, ...]) -> Any:
    def compare(x: dict[str, Any], y: dict[str, Any]) -> int:
        for term in terms:
            a, b = x.get(term.column), y.get(term.column)
            if a is None and b is None:
                continue
            nulls_first = term.descending if term.nulls_first is None else term.nulls_first
            if a is None or b is None:
                return (-1 if a is None else 1) * (1 if nulls_first else -1)
            result = _compare_values(a, b, TYPES[term.column])
            if result:
                return -result if term.descending else result
        return x["row_index"] - y["row_index"]

    return functools.cmp_to_key(compare)


_VALUES = {
    "name": st.sampled_from(["a", "A", "b", "B", "é", "É", ""]),
    "amount": st.sampled_from([0, 1, 1.5, -1, 10, 2]),
    "active": st.booleans(),
    "born": st.sampled_from(["2024-01-01", "2023-12-31", "2024-02-29"]),
    "seen": st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00.25Z"]),
    "meta": st.sampled_from([{"a": 1}, [1], [], {"b": [2]}]),
}
_ROW = st.fixed_dictionaries(
    {}, optional={name: st.one_of(st.none(), strategy) for name, strategy in _VALUES.items()}
)
_TERM = st.builds(
    OrderTerm,
    st.sampled_from([*_VALUES, "row_index", "created_at", "id"]).map(Ref),
    st.booleans(),
    st.sampled_from([None, True, False]),
)


@given(
    st.lists(_ROW, max_size=25),
    st.lists(_TERM, max_size=3, unique_by=lambda term: term.column),
    st.randoms(use_true_random=False),
)
def test_sort_is_a_total_order_with_row_index_ties(
    fields: list[dict[str, Any]], terms: list[OrderTerm], rnd: random.Random
) -> None:
    rows = [row(i, **f) for i, f in enumerate(fields)]
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    result = sort_rows(shuffled, tuple(terms), COLUMNS)
    assert result == sorted(rows, key=_reference(tuple(terms)))
    assert result == sort_rows(rows, tuple(terms), COLUMNS)  # input order never matters
    key = sort_key(tuple(terms), COLUMNS)
    for before, after in zip(result, result[1:], strict=False):
        assert key(before) < key(after)  # strictly: only row_index equal rows would tie


# --- distinct -------------------------------------------------------------------------------------
def test_distinct_by_count_then_value_nulls_last_among_equals() -> None:
    rows = [row(i, name=n) for i, n in enumerate(["b", "a", None, "b", "B", None, "a", "c"])]
    assert distinct_values(rows, "name", COLUMNS) == [
        {"value": "a", "count": 2},
        {"value": "b", "count": 2},
        {"value": None, "count": 2},
        {"value": "B", "count": 1},
        {"value": "c", "count": 1},
    ]


def test_distinct_groups_equal_values() -> None:
    rows = [row(0, amount=1), row(1, amount=1.0), row(2, amount=10), row(3, amount=9)]
    assert distinct_values(rows, "amount", COLUMNS) == [
        {"value": 1, "count": 2},
        {"value": 9, "count": 1},
        {"value": 10, "count": 1},
    ]
    meta = [row(0, meta={"a": 1, "b": 2}), row(1, meta={"b": 2, "a": 1}), row(2, meta={"a": True, "b": 2})]
    assert [v["count"] for v in distinct_values(meta, "meta", COLUMNS)] == [2, 1]
    seen = [row(0, seen="2024-01-01T00:00:00Z"), row(1, seen="2024-01-01T00:00:00.000Z")]
    assert distinct_values(seen, "seen", COLUMNS) == [{"value": "2024-01-01T00:00:00Z", "count": 2}]


def test_distinct_of_booleans_and_empty_input() -> None:
    rows = [row(0, active=True), row(1, active=False)]
    assert distinct_values(rows, "active", COLUMNS) == [
        {"value": False, "count": 1},
        {"value": True, "count": 1},
    ]
    assert distinct_values([], "active", COLUMNS) == []
    with pytest.raises(InvalidQuery):
        distinct_values(rows, "gone", COLUMNS)
