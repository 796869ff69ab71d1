"""The operator registry: value parsing, in-memory predicates, and columnar forms that agree."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datasets_core.columns import ColumnType
from datasets_core.errors import InvalidQuery
from datasets_core.query.ast import Filter, Ref
from datasets_core.query.fields import fields
from datasets_core.query.operators import REGISTRY, format_list, make_filter, split_list, valid_operators
from datasets_core.records import Column

COLUMNS = [
    Column("name", ColumnType.STRING, "c0"),
    Column("amount", ColumnType.NUMBER, "c1", slot=1, index_status="ready"),
    Column("active", ColumnType.BOOLEAN, "c2"),
    Column("born", ColumnType.DATE, "c3"),
    Column("seen", ColumnType.DATETIME, "c4"),
    Column("meta", ColumnType.JSON, "c5"),
]
KNOWN = fields(COLUMNS)
UUID_A = "0192f0c1-0000-8000-8000-000000000001"
UUID_B = "0192f0c1-0000-8000-8000-000000000002"


def parse(column: str, text: str) -> Filter:
    negated = text.startswith("not.")
    op, _, value = text.removeprefix("not.").partition(".")
    return make_filter(KNOWN[column], op, value, negated)


def flt(column: str, op: str, value: Any, negated: bool = False) -> Filter:
    return Filter(Ref(column), op, value, negated)


def holds(condition: Filter, value: Any) -> bool:
    return REGISTRY[condition.op].test(
        value, condition.value, KNOWN[condition.column].type, condition.negated
    )


# --- predicates: (column, filter, row value, matches?) --------------------------------------------
CASES: list[tuple[str, str, Any, bool]] = [
    # string: eq exact and case-sensitive
    ("name", "eq.Acme", "Acme", True),
    ("name", "eq.Acme", "acme", False),
    ("name", "eq.Acme", None, False),
    ("name", "eq.a+b", "a+b", True),
    ("name", "eq.a b", "a+b", False),
    ("name", "eq.Zürich ✓", "Zürich ✓", True),
    ("name", "neq.Acme", "acme", True),
    ("name", "neq.Acme", "Acme", False),
    ("name", "neq.Acme", None, False),
    ("name", "not.eq.Acme", None, False),
    ("name", "not.eq.Acme", "x", True),
    # string: text order is casefolded, exact text breaks ties ("B" < "b")
    ("name", "gt.b", "c", True),
    ("name", "gt.b", "C", True),
    ("name", "gt.b", "a", False),
    ("name", "gt.b", "B", False),
    ("name", "gt.B", "b", True),
    ("name", "gt.b", None, False),
    ("name", "gte.b", "b", True),
    ("name", "gte.b", "B", False),
    ("name", "lt.b", "A", True),
    ("name", "lt.b", "B", True),
    ("name", "lte.b", "b", True),
    ("name", "not.gt.b", "a", True),
    ("name", "not.gt.b", None, False),
    # string: contains / starts_with are casefolded, like / ilike are contains
    ("name", "contains.CME", "Acme Corp", True),
    ("name", "contains.cme", "ac me", False),
    ("name", "contains.cme", None, False),
    ("name", "contains.STRASSE", "Hauptstraße", True),
    ("name", "like.*cme*", "Acme", True),
    ("name", "ilike.%CM%", "acme", True),
    ("name", "like.a%b", "a%b", True),
    ("name", "starts_with.ac", "Acme", True),
    ("name", "starts_with.ac", "xacme", False),
    ("name", "not.contains.x", None, False),
    ("name", "not.contains.x", "abc", True),
    # string: in
    ("name", 'in.(Acme,"b,c")', "b,c", True),
    ("name", 'in.(Acme,"b,c")', "Acme", True),
    ("name", 'in.(Acme,"b,c")', "acme", False),
    ("name", 'in.(Acme,"b,c")', None, False),
    ("name", 'in.("say \\"hi\\"","(x)")', 'say "hi"', True),
    ("name", 'in.("say \\"hi\\"","(x)")', "(x)", True),
    ("name", 'in.("")', "", True),
    ("name", "not.in.(a)", None, False),
    ("name", "not.in.(a)", "b", True),
    ("name", "not.in.(a)", "a", False),
    # string: is
    ("name", "is.null", None, True),
    ("name", "is.null", "", False),
    ("name", "is.NULL", None, True),
    ("name", "not.is.null", None, False),
    ("name", "not.is.null", "x", True),
    # number: numeric, never textual
    ("amount", "eq.100", 100, True),
    ("amount", "eq.100", 100.0, True),
    ("amount", "eq.100", Decimal("100"), True),
    ("amount", "eq.100", 99, False),
    ("amount", "eq.100", None, False),
    ("amount", "eq.1.5", 1.5, True),
    ("amount", "eq.1.5", Decimal("1.5"), True),
    ("amount", "eq.+5", 5, True),
    ("amount", "eq.1e2", 100, True),
    ("amount", "gt.99.5", 100, True),
    ("amount", "gt.99.5", 99.5, False),
    ("amount", "gt.99.5", -5, False),
    ("amount", "gt.99.5", None, False),
    ("amount", "gte.1e2", 100, True),
    ("amount", "lt.10", 9, True),
    ("amount", "lt.10", 1200, False),
    ("amount", "lte.-1", -1, True),
    ("amount", "neq.5", 6, True),
    ("amount", "neq.5", 5, False),
    ("amount", "neq.5", None, False),
    ("amount", "not.gt.5", 5, True),
    ("amount", "not.gt.5", 6, False),
    ("amount", "not.gt.5", None, False),
    ("amount", 'in.(1,2.5,"3")', 2.5, True),
    ("amount", 'in.(1,2.5,"3")', 3, True),
    ("amount", 'in.(1,2.5,"3")', 4, False),
    ("amount", "contains.20", 1200, True),
    ("amount", "contains.20", 2, False),
    ("amount", "contains.5", 1.5, True),
    ("amount", "starts_with.12", 1200, True),
    ("amount", "starts_with.12", 112, False),
    ("amount", "is.null", None, True),
    ("amount", "is.null", 0, False),
    # boolean: false < true
    ("active", "eq.true", True, True),
    ("active", "eq.true", False, False),
    ("active", "eq.true", None, False),
    ("active", "eq.FALSE", False, True),
    ("active", "neq.true", False, True),
    ("active", "neq.true", None, False),
    ("active", "gt.false", True, True),
    ("active", "gt.false", False, False),
    ("active", "lt.true", False, True),
    ("active", "lte.false", True, False),
    ("active", "in.(true)", True, True),
    ("active", "in.(true)", False, False),
    ("active", "contains.ru", True, True),
    ("active", "is.true", True, True),
    ("active", "is.true", False, False),
    ("active", "is.true", None, False),
    ("active", "not.is.true", False, True),
    ("active", "not.is.true", None, True),
    ("active", "not.is.true", True, False),
    ("active", "is.false", False, True),
    ("active", "is.false", None, False),
    ("active", "not.is.false", None, True),
    # date: chronological
    ("born", "eq.2024-01-31", "2024-01-31", True),
    ("born", "eq.2024-01-31", "2024-01-30", False),
    ("born", "gt.2024-01-31", "2024-02-01", True),
    ("born", "gt.2024-01-31", "2023-12-31", False),
    ("born", "gt.2024-01-31", None, False),
    ("born", "lte.2024-01-31", "2024-01-31", True),
    ("born", "starts_with.2024-01", "2024-01-05", True),
    ("born", "in.(2024-01-01,2024-02-01)", "2024-02-01", True),
    ("born", "not.lt.2024-01-01", "2024-01-01", True),
    ("born", "not.lt.2024-01-01", None, False),
    # datetime: by instant, whatever the offset or fraction length
    ("seen", "eq.2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z", True),
    ("seen", "eq.2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00Z", True),
    ("seen", "eq.2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00Z", True),
    ("seen", "eq.2024-01-01T00:00:00.500Z", "2024-01-01T00:00:00.5Z", True),
    ("seen", "eq.2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000001Z", False),
    ("seen", "gt.2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5Z", True),
    ("seen", "gt.2024-01-01T00:00:00Z", "2023-12-31T23:59:59.999999Z", False),
    ("seen", "lt.2024-01-01T00:00:00.5Z", "2024-01-01T00:00:00Z", True),
    ("seen", "gte.2024-01-01T02:00:00+02:00", "2024-01-01T00:00:00Z", True),
    ("seen", "neq.2024-01-01T00:00:00Z", None, False),
    ("seen", "contains.T12", "2024-01-01T12:00:00Z", True),
    ("seen", "is.null", None, True),
    # json: equal structures, key order ignored, true is not 1
    ("meta", 'eq.{"a":1,"b":[1,2]}', {"b": [1, 2], "a": 1}, True),
    ("meta", 'eq.{"a":1,"b":[1,2]}', {"a": 1}, False),
    ("meta", 'eq.{"a":1}', {"a": True}, False),
    ("meta", 'eq.{"a":1}', {"a": 1.0}, True),
    ("meta", "eq.[1,2]", [1, 2], True),
    ("meta", "eq.[1,2]", [2, 1], False),
    ("meta", "neq.[1]", [2], True),
    ("meta", "neq.[1]", None, False),
    ("meta", 'contains."a":1', {"a": 1}, True),
    ("meta", "contains.A", {"a": 1}, True),
    ("meta", 'in.("[1]","{\\"k\\":2}")', {"k": 2}, True),
    ("meta", 'in.("[1]","{\\"k\\":2}")', [1], True),
    ("meta", 'in.("[1]","{\\"k\\":2}")', [2], False),
    ("meta", "is.null", None, True),
    ("meta", "not.is.null", [], True),
    # metadata fields
    ("id", f"eq.{UUID_A.upper()}", UUID_A, True),
    ("id", f"eq.{UUID_A}", UUID_B, False),
    ("id", f"neq.{UUID_A}", UUID_B, True),
    ("id", f"in.({UUID_A},{UUID_B})", UUID_B, True),
    ("row_index", "gt.2", 3, True),
    ("row_index", "gt.2", 2, False),
    ("created_at", "gt.2024-01-01T00:00:00Z", "2024-01-01T00:00:00.001Z", True),
    ("updated_at", "lt.2024-01-01T00:00:00Z", "2024-01-01T00:00:00.001Z", False),
]


@pytest.mark.parametrize(("column", "text", "value", "expected"), CASES)
def test_operator_matches_like_sql(column: str, text: str, value: Any, expected: bool) -> None:
    assert holds(parse(column, text), value) is expected


def test_aliases_become_contains_and_like_drops_edge_wildcards() -> None:
    assert parse("name", "like.*acme*") == flt("name", "contains", "acme")
    assert parse("name", "ilike.acme") == flt("name", "contains", "acme")
    assert parse("name", "contains.*acme*") == flt("name", "contains", "*acme*")


def test_values_are_typed_by_the_column() -> None:
    assert parse("amount", "eq.007").value == 7
    assert parse("active", "eq.True").value is True
    assert parse("seen", "eq.2024-01-01T01:00:00+01:00").value == "2024-01-01T00:00:00Z"
    assert parse("meta", 'eq.{"a":[1]}').value == {"a": [1]}
    assert parse("id", f"eq.{UUID_A.upper()}").value == UUID_A
    assert parse("amount", "in.(1,2)") == flt("amount", "in", (1, 2))
    assert parse("active", "not.is.false") == flt("active", "is", False, negated=True)


# --- refused operands: (column, filter, words the message or details must contain) ---------------
BAD: list[tuple[str, str, str]] = [
    ("amount", "gte.abc", "abc"),
    ("amount", "eq.NaN", "NaN"),
    ("amount", "eq.1,5", "1,5"),
    ("active", "eq.yes", "yes"),
    ("born", "eq.2024-13-01", "2024-13-01"),
    ("born", "gt.yesterday", "yesterday"),
    ("seen", "lt.noon", "noon"),
    ("meta", "eq.{a}", "{a}"),
    ("meta", "eq.42", "42"),
    ("meta", "gt.[1]", "gt"),
    ("meta", "lte.[1]", "lte"),
    ("name", "is.true", "boolean"),
    ("amount", "is.false", "boolean"),
    ("active", "is.maybe", "maybe"),
    ("id", "eq.not-a-uuid", "not-a-uuid"),
    ("id", "contains.abc", "contains"),
    ("id", "gt.x", "gt"),
    ("name", "eq.", "no value"),
    ("amount", "gt.", "no value"),
    ("name", "contains.", "no value"),
    ("name", "in.", "no value"),
    ("name", "is.", "no value"),
    ("name", "like.%*", "wildcards"),
    ("name", "in.()", "empty"),
    ("name", "in.a,b", "parentheses"),
    ("name", "in.(a", "parentheses"),
    ("name", "in.(a,,b)", "empty item"),
    ("name", "in.(a,)", "empty item"),
    ("name", 'in.("a)', "not closed"),
    ("name", 'in.("a\\")', "not closed"),
    ("name", 'in.("a"b)', "followed by"),
    ("name", 'in.(a"b)', "double quotes"),
    ("name", "in.(a(b))", "double quotes"),
    ("amount", "in.(1,x)", "'x' is not a number"),
    ("active", 'in.("")', "true or false"),
    ("name", "regex.a", "Unknown operator"),
    ("name", "match.(", "regular expression"),
    ("name", "imatch.a{2,1}", "regular expression"),
    ("name", "EQ.a", "Unknown operator"),
]


@pytest.mark.parametrize(("column", "text", "expected"), BAD)
def test_bad_operand_is_invalid_query(column: str, text: str, expected: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        parse(column, text)
    error = caught.value
    assert error.code == "invalid_query" and error.status == 400
    assert expected in error.message or expected in str(error.details)
    assert error.details["column"] == column


def test_bad_value_names_column_value_and_type() -> None:
    with pytest.raises(InvalidQuery) as caught:
        parse("amount", "gte.abc")
    assert caught.value.details == {"column": "amount", "operator": "gte", "value": "abc", "type": "number"}
    assert "'amount'" in caught.value.message and "abc" in caught.value.message


def test_unknown_operator_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidQuery) as caught:
        parse("name", "between.1")
    assert caught.value.details["valid_operators"] == valid_operators()
    for name in (
        "eq",
        "neq",
        "gt",
        "gte",
        "lt",
        "lte",
        "contains",
        "starts_with",
        "like",
        "ilike",
        "in",
        "is",
        "match",
        "imatch",
    ):
        assert name in caught.value.message


def test_operators_usable_on_each_kind_of_field() -> None:
    assert valid_operators(KNOWN["id"]) == ["eq", "neq", "in"]
    assert "gt" not in valid_operators(KNOWN["meta"]) and "contains" in valid_operators(KNOWN["meta"])
    assert valid_operators(KNOWN["amount"]) == list(REGISTRY)


# --- PostgREST lists ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "items"),
    [
        ("(a)", ["a"]),
        ("(a,b,c)", ["a", "b", "c"]),
        ('(a,"b,c",d)', ["a", "b,c", "d"]),
        ('("a\\"b","c\\\\d")', ['a"b', "c\\d"]),
        ('("(x)","")', ["(x)", ""]),
        ("( a , b )", [" a ", " b "]),
        ("(a+b,é)", ["a+b", "é"]),
        ('("\\x")', ["x"]),
    ],
)
def test_split_list(text: str, items: list[str]) -> None:
    assert split_list(text) == items


_ITEM = st.text(
    alphabet=st.one_of(st.sampled_from(list(',()"\\ .+')), st.characters(exclude_categories=["Cs"]))
)


@given(st.lists(_ITEM, min_size=1, max_size=8))
def test_quoted_list_round_trips(items: list[str]) -> None:
    rendered = format_list(items)
    assert split_list(rendered) == items
    assert parse("name", f"in.{rendered}").value == tuple(items)


@given(
    st.lists(
        st.text(alphabet=st.characters(exclude_characters=',()"', exclude_categories=["Cs"]), min_size=1)
    )
)
def test_unquoted_items_need_no_quotes(items: list[str]) -> None:
    if items:
        assert split_list("(" + ",".join(items) + ")") == items


# --- not. is the three-valued negation ------------------------------------------------------------
_NUMBER_FILTERS = st.one_of(
    st.tuples(st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte"]), st.integers(-3, 3).map(str)),
    st.tuples(st.sampled_from(["contains", "starts_with"]), st.sampled_from(["1", "-", "2", "0"])),
    st.tuples(
        st.just("in"), st.lists(st.integers(-3, 3), min_size=1).map(lambda xs: format_list(map(str, xs)))
    ),
)
_TEXT_FILTERS = st.tuples(
    st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "contains", "starts_with", "like", "in"]),
    st.sampled_from(["a", "A", "b", "ab", "B"]),
).map(lambda pair: (pair[0], format_list([pair[1]]) if pair[0] == "in" else pair[1]))


@given(
    st.one_of(
        st.tuples(st.just("amount"), _NUMBER_FILTERS, st.lists(st.one_of(st.none(), st.integers(-4, 4)))),
        st.tuples(
            st.just("name"),
            _TEXT_FILTERS,
            st.lists(st.one_of(st.none(), st.sampled_from(["a", "A", "ab", "b"]))),
        ),
    )
)
def test_not_matches_exactly_the_non_null_values_the_op_does_not(case: Any) -> None:
    column, (op, operand), row_values = case
    positive, negative = parse(column, f"{op}.{operand}"), parse(column, f"not.{op}.{operand}")
    for value in row_values:
        assert holds(negative, value) is (value is not None and not holds(positive, value))


@given(st.sampled_from(["null", "true", "false"]), st.lists(st.one_of(st.none(), st.booleans())))
def test_not_is_is_the_plain_negation(keyword: str, row_values: list[bool | None]) -> None:
    positive, negative = parse("active", f"is.{keyword}"), parse("active", f"not.is.{keyword}")
    for value in row_values:
        assert holds(negative, value) is not holds(positive, value)


# --- columnar forms agree with the predicates --------------------------------------------------------
def _columnar_truth(condition: Filter, cells: list[Any]) -> list[bool | None]:
    """The replica's answer for ``condition`` over a column holding ``cells`` (in API form)."""
    from datasets_core.query.columnar import ColumnData, condition_mask
    from datasets_core.replica.arrow import column_array

    field = KNOWN[condition.column]
    column = field.column
    if column is None:  # metadata: a plain array of its API values
        import pyarrow as pa

        array = pa.array(cells, pa.int64() if condition.column == "row_index" else pa.string())
    else:
        array = column_array(column, cells)
    data = ColumnData(field, array, lambda: list(cells))
    return condition_mask(condition, lambda ref: data, len(cells)).to_pylist()


@pytest.mark.parametrize(("column", "text", "value", "expected"), CASES)
def test_the_columnar_form_agrees_with_the_predicate(
    column: str, text: str, value: Any, expected: bool
) -> None:
    from datasets_core import values

    condition = parse(column, text)
    other = {
        "name": "zz",
        "amount": 99,
        "active": False,
        "born": "2000-01-01",
        "seen": "2001-01-01T00:00:00Z",
        "meta": {"z": 0},
        "id": UUID_B,
        "row_index": 7,
        "created_at": "2000-01-01T00:00:00.000Z",
        "updated_at": "2000-01-01T00:00:00.000Z",
    }[column]
    kind = KNOWN[column].column
    cells = [value, None, other]
    if kind is not None:
        cells = [None if cell is None else values.normalize(cell, kind.type) for cell in cells]
    truth = _columnar_truth(condition, cells)
    assert [result is True for result in truth] == [holds(condition, cell) for cell in cells]


_MIXED_NUMBERS = st.lists(
    st.one_of(
        st.none(),
        st.integers(-(10**20), 10**20),
        st.decimals(min_value=-(10**9), max_value=10**9, places=4, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=8,
)


@given(
    _MIXED_NUMBERS,
    st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "not.gt", "not.eq"]),
    st.one_of(st.integers(-5, 5), st.decimals(min_value=-5, max_value=5, places=6, allow_nan=False)),
)
def test_number_comparisons_are_exact_on_the_replica(cells: list[Any], op: str, operand: Any) -> None:
    from datasets_core import values

    normalized = [None if cell is None else values.normalize(cell, ColumnType.NUMBER) for cell in cells]
    condition = parse("amount", f"{op}.{operand}")
    truth = _columnar_truth(condition, normalized)
    assert [result is True for result in truth] == [holds(condition, cell) for cell in normalized]


@given(
    st.lists(st.one_of(st.none(), st.text(alphabet="aAßSsİi é-.", max_size=4)), min_size=1, max_size=8),
    st.sampled_from(["eq", "gt", "lte", "contains", "starts_with", "match", "imatch", "neq"]),
    st.text(alphabet="aAßSsi é", min_size=1, max_size=3),
)
def test_text_operators_agree_on_the_replica(cells: list[Any], op: str, operand: str) -> None:
    condition = parse("name", f"{op}.{operand}")
    truth = _columnar_truth(condition, cells)
    assert [result is True for result in truth] == [holds(condition, cell) for cell in cells]


def test_a_pathological_pattern_is_answered_by_a_linear_engine() -> None:
    # A backtracking engine takes exponential time on these (2**10000 ways to split the a's).
    text = "a" * 10_000 + "b"
    assert not holds(parse("name", "match.(a+)+$"), text)
    assert not holds(parse("name", "match.^(a|aa)+$"), text)
    assert holds(parse("name", "match.(a+)+b"), text)
    assert _columnar_truth(parse("name", "imatch.(A+)+$"), [text, "aaa"]) == [False, True]
