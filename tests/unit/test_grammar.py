"""The rows query string grammar: params → RowsQuery, and every malformed query → invalid_query."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datasets_core.errors import InvalidQuery
from datasets_core.query.ast import Filter, OrderTerm, Ref, RowsQuery
from datasets_core.query.grammar import parse_rows_query, split_items
from datasets_core.query.operators import quote
from datasets_core.query.paging import Page
from datasets_core.records import Column

WEIRD = 'we"ird #1: x.y'
COLUMNS: list[Any] = [
    {"name": "name", "type": "string", "attr": "c0", "indexed": False},
    {"name": "amount", "type": "number", "attr": "c1", "indexed": True},
    {"name": "active", "type": "boolean", "attr": "c2", "indexed": False},
    {"name": "born", "type": "date", "attr": "c3", "indexed": False},
    {"name": "meta", "type": "json", "attr": "c4", "indexed": False},
    {"name": "a", "type": "string", "attr": "c5", "indexed": False},
    {"name": "a.b", "type": "number", "attr": "c6", "indexed": False},
    {"name": "a,b", "type": "string", "attr": "c7", "indexed": False},
    {"name": "Prénom ✓", "type": "string", "attr": "c8", "indexed": False},
    {"name": "v1.desc", "type": "string", "attr": "c9", "indexed": False},
    {"name": WEIRD, "type": "string", "attr": "c10", "indexed": False},
]
COLUMNS = [Column.from_item(column) for column in COLUMNS]  # type: ignore[arg-type]


def parse(**params: str | list[str]) -> RowsQuery:
    return parse_rows_query({k: v if isinstance(v, list) else [v] for k, v in params.items()}, COLUMNS)


def parse_raw(params: dict[str, list[str]]) -> RowsQuery:
    return parse_rows_query(params, COLUMNS)


def test_defaults() -> None:
    assert parse_raw({}) == RowsQuery(
        select=None,
        filters=(),
        search=None,
        order=(),
        page=Page(100, 0),
        distinct=None,
        count=True,
        cursor=None,
    )


# --- filters --------------------------------------------------------------------------------------
def test_filters_and_together_also_on_one_column() -> None:
    query = parse(amount=["gte.100", "lt.200"], name="eq.active")
    assert query.filters == (
        Filter(Ref("amount"), "gte", 100),
        Filter(Ref("amount"), "lt", 200),
        Filter(Ref("name"), "eq", "active"),
    )


def test_plus_is_a_plus_never_a_space() -> None:
    assert parse(name="eq.a+b c").filters == (Filter(Ref("name"), "eq", "a+b c"),)
    assert parse(amount="eq.+5").filters == (Filter(Ref("amount"), "eq", 5),)


def test_value_may_contain_dots_and_operator_words() -> None:
    assert parse(amount="eq.1.5").filters == (Filter(Ref("amount"), "eq", 1.5),)
    assert parse(name="eq.not.eq.x").filters == (Filter(Ref("name"), "eq", "not.eq.x"),)


def test_not_prefix_and_extension_operators() -> None:
    query = parse(name=['not.in.(x,"y,z")', "not.is.null"], active="is.true")
    assert query.filters == (
        Filter(Ref("name"), "in", ("x", "y,z"), negated=True),
        Filter(Ref("name"), "is", None, negated=True),
        Filter(Ref("active"), "is", True),
    )


def test_column_names_with_unicode_dots_quotes_and_colons() -> None:
    query = parse_raw({"Prénom ✓": ["eq.Zoë"], WEIRD: ["starts_with.x"], "a.b": ["gt.1"], "a,b": ["eq.1"]})
    assert query.filters == (
        Filter(Ref("Prénom ✓"), "eq", "Zoë"),
        Filter(Ref(WEIRD), "starts_with", "x"),
        Filter(Ref("a.b"), "gt", 1),
        Filter(Ref("a,b"), "eq", "1"),
    )


def test_metadata_fields_filter() -> None:
    uuid = "0192F0C1-0000-8000-8000-000000000001"
    query = parse(id=f"eq.{uuid}", row_index="gte.10", created_at="lt.2024-01-01T00:00:00Z")
    assert query.filters == (
        Filter(Ref("id"), "eq", uuid.lower()),
        Filter(Ref("row_index"), "gte", 10),
        Filter(Ref("created_at"), "lt", "2024-01-01T00:00:00Z"),
    )


# --- select ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ("name,amount", ("id", "name", "amount")),
        ("amount,name,amount", ("id", "amount", "name")),
        ("name,id", ("name", "id")),
        ("name, amount", ("id", "name", "amount")),
        ("row_index,created_at,updated_at", ("id", "row_index", "created_at", "updated_at")),
        ('"a,b",a.b', ("id", "a,b", "a.b")),
        ('"a,b", "name"', ("id", "a,b", "name")),
        (quote(WEIRD) + ",Prénom ✓", ("id", WEIRD, "Prénom ✓")),
        (WEIRD, ("id", WEIRD)),
        ("*", None),
    ],
)
def test_select(select: str, expected: tuple[str, ...] | None) -> None:
    selected = parse(select=select).select
    assert (None if selected is None else tuple(item.key for item in selected)) == expected


# --- order ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("amount", (OrderTerm(Ref("amount")),)),
        ("amount.asc", (OrderTerm(Ref("amount")),)),
        ("amount.desc", (OrderTerm(Ref("amount"), True),)),
        ("amount.desc.nullslast", (OrderTerm(Ref("amount"), True, False),)),
        ("amount.nullsfirst", (OrderTerm(Ref("amount"), False, True),)),
        ("created_at.desc,row_index", (OrderTerm(Ref("created_at"), True), OrderTerm(Ref("row_index")))),
        ("a.desc", (OrderTerm(Ref("a"), True),)),
        ("a.b", (OrderTerm(Ref("a.b")),)),  # the longest known name wins
        ("a.b.desc", (OrderTerm(Ref("a.b"), True),)),
        ("v1.desc", (OrderTerm(Ref("v1.desc")),)),
        ("v1.desc.desc", (OrderTerm(Ref("v1.desc"), True),)),
        ('"a,b".desc,name', (OrderTerm(Ref("a,b"), True), OrderTerm(Ref("name")))),
        ('"a.b".desc', (OrderTerm(Ref("a.b"), True),)),
        ("name, amount.desc", (OrderTerm(Ref("name")), OrderTerm(Ref("amount"), True))),
        (quote(WEIRD) + ".desc", (OrderTerm(Ref(WEIRD), True),)),
        (WEIRD + ".asc.nullsfirst", (OrderTerm(Ref(WEIRD), False, True),)),
        ("Prénom ✓.desc", (OrderTerm(Ref("Prénom ✓"), True),)),
    ],
)
def test_order(order: str, expected: tuple[OrderTerm, ...]) -> None:
    assert parse(order=order).order == expected


@given(
    st.lists(
        st.tuples(
            st.sampled_from([c.name for c in COLUMNS] + ["row_index"]),
            st.sampled_from(["", ".asc", ".desc", ".desc.nullsfirst", ".nullslast"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda term: term[0],
    )
)
def test_quoted_order_names_round_trip(terms: list[tuple[str, str, bool]]) -> None:
    # A name with a comma can only be written quoted.
    written = [(quote(name) if quoted or "," in name else name) + suffix for name, suffix, quoted in terms]
    assert [term.column for term in parse(order=",".join(written)).order] == [name for name, _, _ in terms]


def test_a_field_repeated_in_order_keeps_its_first_occurrence() -> None:
    assert parse(order="amount,amount.desc,name").order == (OrderTerm(Ref("amount")), OrderTerm(Ref("name")))


def test_split_items_keeps_commas_inside_quotes() -> None:
    assert split_items('a,"b,c".desc, "d\\"e,f",g', "order") == ["a", '"b,c".desc', ' "d\\"e,f"', "g"]
    assert split_items('x"y,z', "select") == ['x"y', "z"]


# --- the other parameters -------------------------------------------------------------------------
def test_page_count_distinct_search_cursor() -> None:
    query = parse(limit="1000", offset="0", count="none", distinct="a.b", search=" acme ", cursor="opaque+/=")
    assert query.page == Page(1000, 0)
    assert (query.count, query.distinct, query.search, query.cursor) == (False, "a.b", " acme ", "opaque+/=")
    assert parse(count="exact").count is True
    assert parse(distinct='"a,b"').distinct == "a,b"
    assert parse(distinct="created_at").distinct == "created_at"


# --- malformed query strings: each is invalid_query with details naming the culprit ----------------
MALFORMED: list[tuple[dict[str, list[str]], dict[str, Any]]] = [
    ({"nope": ["eq.1"]}, {"column": "nope"}),
    ({"Name": ["eq.1"]}, {"column": "Name"}),
    ({"amount": ["gte.abc"]}, {"column": "amount", "value": "abc"}),
    ({"amount": ["gte"]}, {"column": "amount", "value": ""}),
    ({"amount": ["100"]}, {"column": "amount", "operator": "100"}),
    ({"amount": [""]}, {"column": "amount"}),
    ({"amount": [".5"]}, {"column": "amount"}),
    ({"amount": ["between.1"]}, {"operator": "between"}),
    ({"amount": ["not.not.eq.1"]}, {"column": "amount"}),
    ({"amount": ["not."]}, {"column": "amount"}),
    ({"amount": ["not"]}, {"column": "amount", "value": "not"}),
    ({"name": ["eq."]}, {"column": "name", "value": ""}),
    ({"name": ["is.maybe"]}, {"value": "maybe"}),
    ({"name": ["is.true"]}, {"column": "name"}),
    ({"meta": ["gt.[1]"]}, {"column": "meta", "operator": "gt"}),
    ({"name": ["in.(a,b"]}, {"column": "name"}),
    ({"name": ["in.()"]}, {"column": "name"}),
    ({"amount": ["in.(1,two)"]}, {"column": "amount", "value": "two"}),
    ({"born": ["eq.2024-02-30"]}, {"column": "born"}),
    ({"active": ["eq.1"]}, {"column": "active"}),
    ({"id": ["eq.42"]}, {"column": "id"}),
    ({"select": ["name,nope"]}, {"column": "nope"}),
    ({"select": [""]}, {"parameter": "select"}),
    ({"select": ["name,"]}, {"parameter": "select"}),
    ({"select": ["name,,amount"]}, {"parameter": "select"}),
    ({"select": ['"a,b']}, {"parameter": "select"}),
    ({"select": ['"name"x']}, {"parameter": "select"}),
    ({"select": ["a", "b"]}, {"parameter": "select"}),
    ({"order": ["nope.desc"]}, {"column": "nope"}),
    ({"order": ["amount.up"]}, {"column": "amount", "direction": "up"}),
    ({"order": ["amount.DESC"]}, {"direction": "DESC"}),
    ({"order": ["amount.desc.asc"]}, {"direction": "asc"}),
    ({"order": ["amount.nullslast.desc"]}, {"direction": "desc"}),
    ({"order": ["amount."]}, {"direction": ""}),
    ({"order": [""]}, {"parameter": "order"}),
    ({"order": ["amount,"]}, {"parameter": "order"}),
    ({"order": ['"nope".desc']}, {"column": "nope"}),
    ({"order": ['"amount"desc']}, {"parameter": "order"}),
    ({"limit": ["0"]}, {"parameter": "limit"}),
    ({"limit": ["1001"]}, {"parameter": "limit"}),
    ({"limit": ["ten"]}, {"parameter": "limit"}),
    ({"limit": ["1.5"]}, {"parameter": "limit"}),
    ({"limit": [""]}, {"parameter": "limit"}),
    ({"offset": ["-1"]}, {"parameter": "offset"}),
    ({"offset": ["1e3"]}, {"parameter": "offset"}),
    ({"limit": ["10", "20"]}, {"parameter": "limit"}),
    ({"count": ["estimated"]}, {"parameter": "count", "value": "estimated"}),
    ({"distinct": ["nope"]}, {"column": "nope"}),
    ({"distinct": [""]}, {"parameter": "distinct"}),
    ({"search": [""]}, {"parameter": "search"}),
    ({"search": ["   "]}, {"parameter": "search"}),
]


@pytest.mark.parametrize(("params", "details"), MALFORMED)
def test_malformed_query_is_invalid_query(params: dict[str, list[str]], details: dict[str, Any]) -> None:
    with pytest.raises(InvalidQuery) as caught:
        parse_raw(params)
    error = caught.value
    assert (error.status, error.code) == (400, "invalid_query")
    assert error.message and "Traceback" not in error.message
    assert details.items() <= error.details.items()


def test_unknown_column_error_names_the_closest_columns() -> None:
    with pytest.raises(InvalidQuery) as caught:
        parse(amont="eq.1")
    assert (caught.value.message, caught.value.details) == (
        "Unknown column 'amont'. Did you mean 'amount'?",
        {"column": "amont", "did_you_mean": ["amount"]},
    )
    with pytest.raises(InvalidQuery) as caught:
        parse(order="Born.desc.nullsfirst")  # case-insensitive likeness; the modifiers are not the name
    assert caught.value.details == {"column": "Born", "did_you_mean": ["born"]}
    with pytest.raises(InvalidQuery) as caught:
        parse(select="name,nope")
    # Nothing close: the message lists the columns instead.
    assert caught.value.details == {"column": "nope", "did_you_mean": []}
    assert caught.value.message.startswith("Unknown column 'nope'. Columns: 'name', 'amount', 'active',")
