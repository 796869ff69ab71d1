"""Property test: ``GET .../rows`` agrees with an independent model of SPEC §5 (reference_impl).

Hypothesis builds a dataset (3–4 columns of string/number/boolean/date/datetime, often a
json column of small objects and arrays, nulls, mixed case, duplicates so ties happen, 0–40
rows), inserts it through ``POST .../rows``, then asks a handful of queries (every operator
incl. ``in``/``is``/``not.`` and ``match``/``imatch`` regular expressions, JSON paths
``j->>k`` and ``j->n``, nested ``or``/``and``/``not.`` groups of them, search, multi-column
order with nulls placement, limit/offset, ``count=none``, distinct) and compares ids, order,
values, ``total`` and ``columns`` with ``reference_impl.Model``.

Every example loads the same rows into a dataset whose schema is inferred from the rows (no
index: the scan and replica plans) and into one declaring its columns with some indexed
(index plans where a filter allows, the replica otherwise): both must give the reference's
answer, hence the same rows, order and totals as each other.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from datasets_core.store import workspaces

from . import reference_impl as ref
from .conftest import Client

MAX_EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "45"))
TEXT_ALPHABET = 'aAbBßé 1,."\\()'
NUMBERS = [-100, -2.5, -1, 0, 0.25, 1, 1.0, 2, 2.5, 10, 75, 150, 1200]
DATES = ["1999-07-04", "2023-12-31", "2024-01-01", "2024-02-29", "2024-10-05"]
# Some inputs name the same instant in different ways (offsets, no zone = UTC, fractions).
DATETIMES = [
    "2024-05-01T12:00:00Z",
    "2024-05-01T14:00:00+02:00",
    "2024-05-01T12:00:00",
    "2024-05-01T12:00:00.5Z",
    "2024-05-01T11:59:59.999999Z",
    "2023-01-01T00:00:00Z",
    "2024-04-30T23:00:00-05:00",
]
OPS = ["eq", "neq", "gt", "gte", "lt", "lte", "contains", "starts_with", "like", "ilike", "in", "is"]
# Patterns whose meaning is the same in RE2 (the product) and Python's re (the reference).
PATTERNS = [
    *("^a", "^A", "b$", "B", "[aA]", "é", "É", "\\.", "a|B", "^.$", "\\(", ",", "1", "^$", "ß", "(a|b)+"),
]
JSON_TEXTS = ["aB", "ab", "x,y", "é", "", "1"]
_names = itertools.count()


# --- datasets ----------------------------------------------------------------------------------
@st.composite
def pools(draw: Any, kind: str) -> list[Any]:
    """The few values a column draws from, so duplicates (and ties) are common."""
    if kind == "string":
        return draw(st.lists(st.text(alphabet=TEXT_ALPHABET, max_size=4), min_size=1, max_size=5))
    if kind == "number":
        return draw(st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=5))
    if kind == "boolean":
        return [True, False]
    if kind == "date":
        return draw(st.lists(st.sampled_from(DATES), min_size=1, max_size=4))
    return draw(st.lists(st.sampled_from(DATETIMES), min_size=1, max_size=4))


@st.composite
def json_values(draw: Any) -> Any:
    """A small object (``k`` text, ``n`` number, either may be missing) or a [text, number] array."""
    text = st.sampled_from(JSON_TEXTS)
    number = st.sampled_from([-2, 0, 1, 2.5, 10, 75])
    if draw(st.integers(0, 3)) == 0:
        return [draw(text), draw(number)]
    value: dict[str, Any] = {}
    if draw(st.integers(0, 4)):
        value["k"] = draw(text)
    if draw(st.integers(0, 4)):
        value["n"] = draw(number)
    return value or {"k": draw(text)}


@st.composite
def datasets(draw: Any) -> tuple[dict[str, str], dict[str, list[Any]], list[dict[str, Any]]]:
    """(column types, value pools, rows as sent); a row may leave a null out or send it."""
    # Always one text column (mixed case, regular expressions), then 2–3 of any type.
    kinds = ["string", *draw(st.lists(st.sampled_from(ref.TYPES), min_size=2, max_size=3))]
    types = {f"c{position}_{kind}": kind for position, kind in enumerate(kinds)}
    value_pools = {name: draw(pools(kind)) for name, kind in types.items()}
    if draw(st.booleans()):
        types["j_json"] = "json"
        value_pools["j_json"] = draw(st.lists(json_values(), min_size=1, max_size=5))
    count = draw(st.integers(0, 40))
    rows = []
    for _ in range(count):
        row: dict[str, Any] = {}
        for name in types:
            choice = draw(st.integers(0, 7))
            if choice == 0:
                continue  # missing: null
            row[name] = None if choice == 1 else draw(st.sampled_from(value_pools[name]))
        rows.append(row)
    return types, value_pools, rows


# --- queries -----------------------------------------------------------------------------------
def _text_operand(draw: Any, model: ref.Model, column: str, pool: list[Any]) -> str:
    """Text for contains/starts_with/search: a piece of some value's text, or anything."""
    kind = model.kind(column)
    source = [ref.text_of(ref.canonical(value, kind), kind) for value in pool if value is not None]
    if source and draw(st.integers(0, 3)):
        whole = draw(st.sampled_from(source))
        start = draw(st.integers(0, len(whole)))
        end = draw(st.integers(start, len(whole)))
        text = whole[start:end]
        if draw(st.booleans()):
            text = text.swapcase()
    else:
        text = draw(st.text(alphabet=TEXT_ALPHABET + "xZ", min_size=1, max_size=3))
    return text or "a"


_REGEX_SPECIALS = set(".^$*+?()[]{}|\\")


def _pattern_operand(draw: Any, model: ref.Model, column: str, pool: list[Any]) -> str:
    """A regular expression: one of ``PATTERNS``, or a piece of some value (case maybe swapped,
    metacharacters escaped, maybe anchored), so that matches — and case — matter."""
    if not draw(st.integers(0, 2)):
        return draw(st.sampled_from(PATTERNS))
    piece = _text_operand(draw, model, column, pool)
    escaped = "".join("\\" + char if char in _REGEX_SPECIALS else char for char in piece)
    return draw(st.sampled_from(["", "^"])) + escaped + draw(st.sampled_from(["", "$"]))


def _typed_operand(draw: Any, model: ref.Model, column: str, pool: list[Any]) -> tuple[Any, str]:
    """A value for the column and how the query string writes it."""
    kind = model.kind(column)
    if kind == "number":
        value = draw(st.sampled_from([*pool, *NUMBERS]) if pool else st.sampled_from(NUMBERS))
        text = ref.render_number(value)
        if draw(st.integers(0, 4)) == 0:
            text = f"{value:.2f}"  # 2.50, 1.00: parsed numerically
        return ref.canonical(value, kind), text
    if kind == "boolean":
        value = draw(st.booleans())
        return value, "true" if value else "false"
    if kind == "string":
        value = draw(st.sampled_from([*pool, "a", "B"]))
        value = value or "a"  # eq. needs a value; the empty string is only reachable through in.("")
        return value, value
    choices = {"date": DATES, "datetime": DATETIMES}[kind]
    text = draw(st.sampled_from([*pool, *choices]))
    return ref.canonical(text, kind), text


def _plain_columns(model: ref.Model) -> list[str]:
    return [name for name in model.user_columns if model.kind(name) != "json"]


def _json_columns(model: ref.Model) -> list[str]:
    return [name for name in model.user_columns if model.kind(name) == "json"]


@st.composite
def filters(draw: Any, model: ref.Model, pool_of: dict[str, list[Any]]) -> ref.Filter:
    if _json_columns(model) and draw(st.integers(0, 2)) == 0:
        return draw(path_filters(model))
    column = draw(st.sampled_from([*_plain_columns(model), "row_index"]))
    kind = model.kind(column)
    pool = pool_of.get(column, list(range(45)))
    ops = [*OPS, *["match", "imatch"] * 3] if kind == "string" else OPS
    op = draw(st.sampled_from(ops))
    negated = draw(st.integers(0, 3)) == 0
    if op in ("match", "imatch"):
        pattern = _pattern_operand(draw, model, column, pool)
        return ref.Filter(column, op, pattern, pattern, negated)
    if op == "is":
        value = draw(st.sampled_from([None, True, False])) if kind == "boolean" else None
        text = {None: "null", True: "true", False: "false"}[value]
        return ref.Filter(column, op, value, text, negated)
    if op in ("contains", "starts_with", "like", "ilike"):
        text = _text_operand(draw, model, column, pool)
        written = text
        if op in ("like", "ilike"):
            wildcard = draw(st.sampled_from(["", "*", "%"]))
            written = f"{wildcard}{text}{wildcard}"
        return ref.Filter(column, op, text if op not in ("like", "ilike") else written, written, negated)
    if op == "in":
        items = []
        for _ in range(draw(st.integers(1, 3))):
            if kind == "string" and draw(st.integers(0, 5)) == 0:
                items.append(("", ""))
            else:
                items.append(_typed_operand(draw, model, column, pool))
        values = tuple(value for value, _ in items)
        return ref.Filter(column, op, values, ref.in_list([text for _, text in items]), negated)
    value, text = _typed_operand(draw, model, column, pool)
    return ref.Filter(column, op, value, text, negated)


@st.composite
def path_filters(draw: Any, model: ref.Model) -> ref.Filter:
    """``j->>k`` (or ``j->>0`` into arrays) compared as text, or ``j->n`` compared as a number."""
    column = draw(st.sampled_from(_json_columns(model)))
    negated = draw(st.integers(0, 3)) == 0
    if draw(st.booleans()):
        key = draw(st.sampled_from(["k", "0"]))
        op = draw(
            st.sampled_from(["eq", "neq", "gt", "lt", "contains", "starts_with", "match", "imatch", "is"])
        )
        if op == "is":
            return ref.Filter(column, op, None, "null", negated, (key,), True)
        text = draw(
            st.sampled_from([p for p in JSON_TEXTS if p] if op not in ("match", "imatch") else PATTERNS)
        )
        return ref.Filter(column, op, text, text, negated, (key,), True)
    op = draw(st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte"]))
    number = draw(st.sampled_from([-2, 0, 1, 2.5, 10, 75]))
    return ref.Filter(column, op, number, ref.render_number(number), negated, ("n",), False)


@st.composite
def groups(draw: Any, model: ref.Model, pool_of: dict[str, list[Any]], depth: int = 1) -> ref.Group:
    """``or``/``and`` groups, maybe negated, of filters and (up to 3 deep) nested groups."""
    items: list[ref.Filter | ref.Group] = []
    for _ in range(draw(st.integers(1, 3))):
        if depth < 3 and draw(st.integers(0, 3)) == 0:
            items.append(draw(groups(model, pool_of, depth + 1)))
        else:
            items.append(draw(filters(model, pool_of)))
    return ref.Group(draw(st.sampled_from(["or", "and"])), tuple(items), draw(st.integers(0, 3)) == 0)


@st.composite
def queries(draw: Any, model: ref.Model, pool_of: dict[str, list[Any]]) -> ref.Query:
    query = ref.Query()
    query.filters = draw(st.lists(filters(model, pool_of), max_size=3))
    if draw(st.integers(0, 2)) == 0:
        query.filters.append(draw(groups(model, pool_of)))
    if model.user_columns and draw(st.integers(0, 3)) == 0:
        column = draw(st.sampled_from(model.user_columns))
        search = _text_operand(draw, model, column, pool_of.get(column, []))
        query.search = search if search.strip() else "a"
    if _plain_columns(model) and draw(st.integers(0, 9)) == 0:
        query.distinct = draw(st.sampled_from(_plain_columns(model)))
        return query
    columns = draw(st.lists(st.sampled_from([*_plain_columns(model), "row_index"]), unique=True, max_size=3))
    query.order = [
        ref.Order(column, draw(st.booleans()), draw(st.sampled_from([None, True, False])))
        for column in columns
    ]
    query.limit = draw(st.one_of(st.none(), st.integers(1, 50)))
    query.offset = draw(st.one_of(st.none(), st.integers(0, 45)))
    query.count_none = draw(st.integers(0, 4)) == 0
    return query


# --- the property ------------------------------------------------------------------------------
def _live_columns(types: dict[str, str], rows: list[dict[str, Any]], declared: bool) -> dict[str, str]:
    """Columns the dataset has: declared ones, or (inferred) those given a non-null value, in
    order of first appearance."""
    if declared:
        return dict(types)
    seen: dict[str, str] = {}
    for row in rows:
        for name, value in row.items():
            if value is not None and name not in seen:
                seen[name] = types[name]
    return seen


def _setup(client: Client, types: dict[str, str], rows: list[dict[str, Any]], indexed: set[str]) -> Any:
    body: dict[str, Any] = {"name": f"prop-{next(_names)}"}
    if indexed:
        body["columns"] = [{"name": n, "type": k, "indexed": n in indexed} for n, k in types.items()]
    created = client.post("/datasets", body)
    assert created.status == 201, created.body
    dataset_id = created.json()["data"]["id"]
    ids: dict[int, str] = {}
    if rows:
        inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": rows})
        assert inserted.status == 201, inserted.body
        data = inserted.json()["data"]
        assert data["inserted"] == len(rows)
        ids = {row["row_index"]: row["id"] for row in data["rows"]}
        assert sorted(ids) == list(range(len(rows)))
    return dataset_id, ids


def _check(
    client: Client, dataset_id: str, model: ref.Model, ids: dict[int, str], query: ref.Query
) -> tuple[str, Any]:
    """Compare one answer with the model; return its plan and what must not depend on the plan."""
    response = client.get(f"/datasets/{dataset_id}/rows", params=query.query_string())
    assert response.status == 200, (query.query_string(), response.body)
    body = response.json()
    expected = model.run(query)
    got = body["data"]
    if query.distinct is not None:
        assert got["column"] == query.distinct
        assert got["total_unique"] == expected["total_unique"], query.query_string()
        assert got["values"] == expected["values"], query.query_string()
        return body["meta"]["plan"], (got["values"], got["total_unique"])
    want = expected["rows"]
    assert [row["row_index"] for row in got["rows"]] == [row["row_index"] for row in want], (
        query.query_string()
    )
    assert [row["id"] for row in got["rows"]] == [ids[row["row_index"]] for row in want]
    for row, model_row in zip(got["rows"], want, strict=True):
        assert {c: row[c] for c in model.user_columns} == {c: model_row.get(c) for c in model.user_columns}
    assert got["total"] == expected["total"], query.query_string()
    assert got["columns"] == model.user_columns
    return body["meta"]["plan"], ([row["row_index"] for row in got["rows"]], got["total"])


def _model(types: dict[str, str], rows: list[dict[str, Any]], declared: bool) -> ref.Model:
    live = _live_columns(types, rows, declared)
    return ref.Model(
        live,
        [
            {"row_index": index, **{n: ref.canonical(row.get(n), k) for n, k in live.items()}}
            for index, row in enumerate(rows)
        ],
    )


def test_rows_queries_match_the_reference_model_with_and_without_indexes(client: Client) -> None:
    """Each example loads the same rows twice: into a dataset whose schema is inferred (scan
    plans) and into one declaring the columns with some indexed (index plans). Every query must
    give the reference's answer on both, so the two plans agree on rows, order and totals."""
    workspaces.set_plan("default", max_datasets=100_000)
    plans: Counter[str] = Counter()

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        # No shrinking: a failure already prints the drawn dataset and queries, and shrinking
        # through HTTP round-trips takes minutes.
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def check(data: st.DataObject) -> None:
        types, value_pools, rows = data.draw(datasets(), label="dataset")
        indexable = [name for name, kind in types.items() if kind != "json"]
        indexed = set(data.draw(st.lists(st.sampled_from(indexable), min_size=1, unique=True)))
        inferred_model = _model(types, rows, declared=False)
        declared_model = _model(types, rows, declared=True)
        inferred_id, inferred_ids = _setup(client, types, rows, set())
        indexed_id, indexed_ids = _setup(client, types, rows, indexed)
        # Queries name only columns both datasets have (an all-null column is never inferred).
        pool_of = {name: value_pools[name] for name in inferred_model.user_columns}
        drawn = data.draw(st.lists(queries(inferred_model, pool_of), min_size=1, max_size=6), label="queries")
        for query in drawn:
            scan_plan, scan_answer = _check(client, inferred_id, inferred_model, inferred_ids, query)
            index_plan, index_answer = _check(client, indexed_id, declared_model, indexed_ids, query)
            assert scan_answer == index_answer, query.query_string()
            plans[scan_plan] += 1
            plans[index_plan] += 1

    check()
    assert any(plan.startswith("index:") for plan in plans), plans
    assert "scan" in plans, plans
