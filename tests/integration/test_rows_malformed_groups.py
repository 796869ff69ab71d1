"""Malformed logical groups, JSON paths and regular expressions: each is refused with its
documented 4xx (SPEC §2: ``invalid_query`` in a query string, ``invalid_body`` in a bulk
``where``), says what is wrong, and writes nothing. A pathological but valid pattern is not an
error: it is answered (in linear time, see ``test_rows_regex_time.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Client

COLUMNS = [
    {"name": "name", "type": "string", "indexed": True},
    {"name": "status", "type": "string"},
    {"name": "amount", "type": "number"},
    {"name": "meta", "type": "json"},
]
SEED = [
    {"name": "Ada", "status": "active", "amount": 150, "meta": {"plan": "pro", "tags": ["x"]}},
    {"name": "Bob", "status": "lost", "amount": 50, "meta": {"plan": "free"}},
    {"name": "aaaa", "status": None, "amount": None, "meta": None},
]
DEEP = "or=" + "(name.eq.a," * 10 + "or(name.eq.b" + ")" * 11  # 11 levels of groups
DEEP_WHERE: dict[str, Any] = {"name": "Ada"}
for _ in range(11):
    DEEP_WHERE = {"or": [DEEP_WHERE]}
MANY = "or=(" + ",".join(f"amount.eq.{i}" for i in range(101)) + ")"

# Query strings, percent-encoded where a character would otherwise change meaning.
QUERIES: list[tuple[str, str]] = [
    # --- groups ----------------------------------------------------------------------------------
    ("unclosed group", "or=(status.eq.active"),
    ("no opening parenthesis", "or=status.eq.active,amount.gt.1)"),
    ("extra closing parenthesis", "or=(status.eq.active))"),
    ("empty group", "or=()"),
    ("empty item at the end", "or=(status.eq.active,)"),
    ("empty item at the start", "or=(,status.eq.active)"),
    ("empty nested group", "and=(status.eq.active,and())"),
    ("unclosed nested group", "or=(status.eq.active,and(amount.gt.1)"),
    ("unknown operator in a group", "or=(status.between.1)"),
    ("operator without a value", "or=(status.eq)"),
    ("column without an operator", "or=(status)"),
    ("unknown column in a group", "or=(nope.eq.1)"),
    ("bad number in a group", "or=(amount.gt.abc)"),
    ("not twice in a group", "or=(status.not.not.eq.x)"),
    ("unclosed quote in a group", 'or=(status.eq."active)'),
    ("text after a quoted value", 'or=(status.eq."a"b,name.eq.c)'),
    ("unclosed in-list in a group", "or=(status.in.(a,b)"),
    ("text after the group", "or=(status.eq.a)x"),
    ("not.or without parentheses", "not.or=status.eq.a"),
    ("unknown group kind", "or=(xor(status.eq.a,status.eq.b))"),
    ("groups nested too deep", DEEP),
    ("too many conditions", MANY),
    ("second group malformed", "or=(status.eq.a)&or=("),
    ("is with a bad keyword in a group", "or=(status.is.maybe)"),
    ("in-list item unquoted parenthesis", "or=(status.in.(a(b),c))"),
    # --- JSON paths ------------------------------------------------------------------------------
    ("path on a string column", "status->x=eq.1"),
    ("text path on a number column", "amount->>x=eq.1"),
    ("empty path step", "meta->=eq.1"),
    ("text step not last", "meta->>a->b=eq.1"),
    ("unclosed quoted key", 'meta->"a=eq.1'),
    ("path on a string column in select", "select=status->x"),
    ("path on a string column in order", "order=status->x.desc"),
    ("bad direction after a path", "order=meta->plan.sideways"),
    ("empty step in select", "select=meta->"),
    ("is.true on a JSON value", "meta->plan=is.true"),
    ("path on a string column in a group", "or=(status->x.eq.1)"),
    ("path without a value", "meta->plan=eq."),
    ("range on a whole json column", "meta=gt.1"),
    ("unknown column with a path", "nope->a=eq.1"),
    ("sum of a path into a number column", "select=amount->x.sum()"),
    ("path in distinct", "distinct=meta->plan"),
    # --- regular expressions -----------------------------------------------------------------------
    ("unclosed group in a pattern", "name=match.("),
    ("unclosed class", "name=match.[a-"),
    ("bad repetition", "name=imatch.a{2,1}"),
    ("repetition of nothing", "name=match.*a"),
    ("empty pattern", "name=match."),
    ("trailing backslash", "name=match.a%5C"),
    ("backreference", "name=match.(a)%5C1"),
    ("lookahead", "name=match.(%3F=a)"),
    ("invalid pattern in a group", 'or=(name.match."(")'),
    ("unknown character class", "name=imatch.[[:foo:]]"),
    ("invalid pattern on a number column", "amount=match.("),
    ("invalid pattern on a path", "meta->>plan=match.[z-a]"),
]

# Bulk write bodies: (case, method, body).
BODIES: list[tuple[str, str, Any]] = [
    ("where: empty or", "PATCH", {"where": {"or": []}, "set": {"amount": 1}}),
    ("where: or of an object", "PATCH", {"where": {"or": {"name": "Ada"}}, "set": {"amount": 1}}),
    ("where: empty item in or", "PATCH", {"where": {"or": [{}]}, "set": {"amount": 1}}),
    (
        "where: unknown operator beside a known one",
        "PATCH",
        {"where": {"status": {"eq": "a", "near": "b"}}, "set": {"amount": 1}},
    ),
    ("where: path on a string column", "PATCH", {"where": {"status->x": "a"}, "set": {"amount": 1}}),
    ("where: invalid pattern", "PATCH", {"where": {"name": {"match": "("}}, "set": {"amount": 1}}),
    ("where: raw expression", "PATCH", {"where": "status = 'x' OR 1=1", "set": {"amount": 1}}),
    ("where: groups too deep", "PATCH", {"where": DEEP_WHERE, "set": {"amount": 1}}),
    ("delete: empty not-or", "DELETE", {"where": {"not": {"or": []}}}),
    ("delete: invalid pattern in and", "DELETE", {"where": {"and": [{"name": {"imatch": "[a-"}}]}}),
    ("delete: path on a number column", "DELETE", {"where": {"amount->x": 1}}),
    ("delete: is.true on a JSON value", "DELETE", {"where": {"meta->plan": {"is": True}}}),
]


def test_the_table_has_at_least_forty_cases() -> None:
    assert len(QUERIES) + len(BODIES) >= 40
    names = [case for case, _ in QUERIES] + [case for case, _, _ in BODIES]
    assert len(set(names)) == len(names)


@pytest.fixture
def seeded(client: Client) -> str:
    created = client.post("/datasets", {"name": "groups", "columns": COLUMNS})
    assert created.status == 201, created.body
    dataset_id = str(created.json()["data"]["id"])
    assert client.post(f"/datasets/{dataset_id}/rows", {"rows": SEED}).status == 201
    return dataset_id


def _state(client: Client, dataset_id: str) -> Any:
    detail = client.get(f"/datasets/{dataset_id}").json()["data"]
    rows = client.get(f"/datasets/{dataset_id}/rows").json()["data"]["rows"]
    return detail["row_count"], detail["columns"], rows


@pytest.mark.parametrize(("case", "query"), QUERIES, ids=[case for case, _ in QUERIES])
def test_a_malformed_query_is_invalid_query(client: Client, seeded: str, case: str, query: str) -> None:
    response = client.get(f"/datasets/{seeded}/rows", params=query)
    assert response.status == 400, (case, response.body)
    error = response.json()["error"]
    assert error["code"] == "invalid_query", error
    assert error["message"] and error["details"], error


@pytest.mark.parametrize(("case", "method", "body"), BODIES, ids=[case for case, _, _ in BODIES])
def test_a_malformed_where_is_invalid_body_and_writes_nothing(
    client: Client, seeded: str, case: str, method: str, body: Any
) -> None:
    before = _state(client, seeded)
    response = client.request(method, f"/datasets/{seeded}/rows", json_body=body)
    assert response.status == 400, (case, response.body)
    error = response.json()["error"]
    assert error["code"] == "invalid_body", error
    assert error["message"], error
    assert _state(client, seeded) == before


@pytest.mark.parametrize("pattern", ["(a%2B)%2B$", "(a*)*b", "(a|aa)%2B$", "(.*a){12}"])
def test_a_pathological_pattern_is_not_an_error(client: Client, seeded: str, pattern: str) -> None:
    for query in (f"name=match.{pattern}", f"name=imatch.{pattern}&name=eq.aaaa"):
        response = client.get(f"/datasets/{seeded}/rows", params=query)
        assert response.status == 200, (query, response.body)
    before = _state(client, seeded)
    updated = client.patch(
        f"/datasets/{seeded}/rows", {"where": {"name": {"match": "(a+)+$"}}, "set": {"status": "seen"}}
    )
    assert updated.status == 200 and updated.json()["data"] == {"updated": 2}, updated.body  # Ada, aaaa
    assert _state(client, seeded)[0] == before[0]
