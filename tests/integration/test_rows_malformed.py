"""Malformed queries and bodies on the rows endpoints: each gets its documented 4xx and
code (SPEC §2), and none of them writes anything."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import Client

SEED = [
    {"name": "Ada", "age": 36, "active": True, "born": "1815-12-10", "seen": "2024-05-01T10:00:00Z"},
    {"name": "Grace", "age": 85, "active": False, "born": "1906-12-09", "seen": None},
    {"name": "Linus", "age": None, "active": None, "born": None, "seen": "2024-05-02T08:30:00Z"},
]
COLUMNS = [
    {"name": "name", "type": "string", "indexed": True},
    {"name": "age", "type": "number"},
    {"name": "active", "type": "boolean"},
    {"name": "born", "type": "date"},
    {"name": "seen", "type": "datetime"},
]
MISSING_ROW = "00000000-0000-8000-8000-000000000000"  # a well-formed id no row has


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str  # relative to the dataset: "/rows", "/rows/{row}" (a real row's id)
    status: int
    code: str
    params: list[tuple[str, str]] | str | None = None
    body: Any = None  # JSON-encoded unless ``raw``
    raw: str | None = None


def q(*pairs: tuple[str, str]) -> list[tuple[str, str]]:
    return list(pairs)


IQ, IB = "invalid_query", "invalid_body"
CASES = [
    # --- query strings ---------------------------------------------------------------------
    Case(
        "unknown operator",
        "GET",
        "/rows",
        400,
        IQ,
        q(("age", "between.1")),
    ),
    Case("no operator", "GET", "/rows", 400, IQ, q(("age", "36"))),
    Case("empty value", "GET", "/rows", 400, IQ, q(("name", "eq."))),
    Case("unknown filter column", "GET", "/rows", 400, IQ, q(("nope", "eq.1"))),
    Case("number column, text value", "GET", "/rows", 400, IQ, q(("age", "gte.abc"))),
    Case("number column, NaN", "GET", "/rows", 400, IQ, q(("age", "eq.NaN"))),
    Case("boolean column, bad value", "GET", "/rows", 400, IQ, q(("active", "eq.yes-ish"))),
    Case("date column, bad date", "GET", "/rows", 400, IQ, q(("born", "gt.2024-02-30"))),
    Case("datetime column, bad value", "GET", "/rows", 400, IQ, q(("seen", "lt.yesterday"))),
    Case("is with a non-null value", "GET", "/rows", 400, IQ, q(("age", "is.five"))),
    Case("is.true on a number column", "GET", "/rows", 400, IQ, q(("age", "is.true"))),
    Case("not without an operator", "GET", "/rows", 400, IQ, q(("age", "not.5"))),
    Case("in without parentheses", "GET", "/rows", 400, IQ, q(("name", "in.Ada,Grace"))),
    Case("in unbalanced parenthesis", "GET", "/rows", 400, IQ, q(("name", "in.(Ada,Grace"))),
    Case("in unterminated quote", "GET", "/rows", 400, IQ, q(("name", 'in.("Ada,Grace)'))),
    Case("in empty list", "GET", "/rows", 400, IQ, q(("name", "in.()"))),
    Case("in bad number item", "GET", "/rows", 400, IQ, q(("age", "in.(1,x)"))),
    Case("unknown select column", "GET", "/rows", 400, IQ, q(("select", "name,nope"))),
    Case("empty select item", "GET", "/rows", 400, IQ, q(("select", "name,,age"))),
    Case("unknown order column", "GET", "/rows", 400, IQ, q(("order", "nope.asc"))),
    Case("unknown order direction", "GET", "/rows", 400, IQ, q(("order", "age.up"))),
    Case("order empty item", "GET", "/rows", 400, IQ, q(("order", "age,"))),
    Case("limit zero", "GET", "/rows", 400, IQ, q(("limit", "0"))),
    Case("limit over 1000", "GET", "/rows", 400, IQ, q(("limit", "1001"))),
    Case("limit not a number", "GET", "/rows", 400, IQ, q(("limit", "ten"))),
    Case("negative offset", "GET", "/rows", 400, IQ, q(("offset", "-1"))),
    Case("fractional offset", "GET", "/rows", 400, IQ, q(("offset", "1.5"))),
    Case("limit given twice", "GET", "/rows", 400, IQ, "limit=5&limit=6"),
    Case("forged cursor", "GET", "/rows", 400, IQ, q(("cursor", "not-a-cursor"))),
    Case("cursor with offset", "GET", "/rows", 400, IQ, q(("cursor", "x"), ("offset", "5"))),
    Case("bad count value", "GET", "/rows", 400, IQ, q(("count", "some"))),
    Case("distinct unknown column", "GET", "/rows", 400, IQ, q(("distinct", "nope"))),
    Case("empty search", "GET", "/rows", 400, IQ, q(("search", ""))),
    Case("query on a malformed row id", "GET", "/rows/not-a-uuid", 400, "invalid_row_id"),
    Case("missing row", "GET", f"/rows/{MISSING_ROW}", 404, "row_not_found"),
    # --- POST bodies -----------------------------------------------------------------------
    Case("POST non-JSON body", "POST", "/rows", 400, IB, raw="{name: Ada"),
    Case("POST empty body", "POST", "/rows", 400, IB, raw=""),
    Case("POST a string", "POST", "/rows", 400, IB, body="Ada"),
    Case("POST a number", "POST", "/rows", 400, IB, body=42),
    Case("POST rows not a list", "POST", "/rows", 400, IB, body={"rows": 5}),
    Case("POST empty list", "POST", "/rows", 400, IB, body={"rows": []}),
    Case("POST a row that is a list", "POST", "/rows", 400, IB, body=[{"name": "ok"}, ["x"]]),
    Case("POST text in a number column", "POST", "/rows", 400, IB, body=[{"name": "ok"}, {"age": "old"}]),
    Case("POST bad boolean", "POST", "/rows", 400, IB, body={"active": "maybe"}),
    Case("POST bad date", "POST", "/rows", 400, IB, body={"born": "1815-13-10"}),
    Case("POST bad datetime", "POST", "/rows", 400, IB, body={"seen": "noon"}),
    Case("POST infinite number", "POST", "/rows", 400, IB, raw='{"age": Infinity}'),
    Case("POST number out of range", "POST", "/rows", 400, IB, raw='{"age": 1e200}'),
    Case("POST reserved column id", "POST", "/rows", 400, IB, body={"id": "x", "name": "n"}),
    Case("POST reserved column row_index", "POST", "/rows", 400, IB, body={"row_index": 9}),
    Case("POST reserved column created_at", "POST", "/rows", 400, IB, body={"created_at": "2024-01-01"}),
    Case("POST empty column name", "POST", "/rows", 400, IB, body={"": 1}),
    Case("POST control character in name", "POST", "/rows", 400, IB, body={"a\u0007b": 1}),
    Case("POST column name over 128 chars", "POST", "/rows", 400, IB, body={"c" * 129: 1}),
    Case("POST 1,001 rows", "POST", "/rows", 413, "payload_too_large", body={"rows": [{"age": 1}] * 1001}),
    Case("POST an oversize row", "POST", "/rows", 400, IB, body={"name": "big", "note": "x" * 420_000}),
    Case(
        "POST upsert_on unknown column",
        "POST",
        "/rows",
        400,
        IB,
        body={"rows": [{"name": "A"}], "upsert_on": "nope"},
    ),
    Case(
        "POST upsert_on unindexed column",
        "POST",
        "/rows",
        400,
        IB,
        body={"rows": [{"age": 1}], "upsert_on": "age"},
    ),
    Case("POST unknown top-level key", "POST", "/rows", 400, IB, body={"rows": [{"age": 1}], "mode": "fast"}),
    # --- bulk PATCH / DELETE ---------------------------------------------------------------
    Case("PATCH without set", "PATCH", "/rows", 400, IB, body={"where": {"name": "Ada"}}),
    Case("PATCH set not an object", "PATCH", "/rows", 400, IB, body={"set": ["age", 1]}),
    Case(
        "PATCH where unknown column",
        "PATCH",
        "/rows",
        400,
        IB,
        body={"where": {"nope": 1}, "set": {"age": 1}},
    ),
    Case(
        "PATCH where unknown operator",
        "PATCH",
        "/rows",
        400,
        IB,
        body={"where": {"age": {"near": 1}}, "set": {"age": 1}},
    ),
    Case(
        "PATCH where raw expression", "PATCH", "/rows", 400, IB, body={"where": "age > 1", "set": {"age": 1}}
    ),
    Case(
        "PATCH set wrong type",
        "PATCH",
        "/rows",
        400,
        IB,
        body={"where": {"name": "Ada"}, "set": {"age": "old"}},
    ),
    Case("PATCH set immutable id", "PATCH", "/rows", 400, IB, body={"set": {"id": MISSING_ROW}}),
    Case("DELETE neither row_ids nor where", "DELETE", "/rows", 400, IB, body={}),
    Case("DELETE empty where", "DELETE", "/rows", 400, IB, body={"where": {}}),
    Case("DELETE row_ids not a list", "DELETE", "/rows", 400, IB, body={"row_ids": MISSING_ROW}),
    Case("DELETE malformed row id", "DELETE", "/rows", 400, "invalid_row_id", body={"row_ids": ["nope"]}),
    Case(
        "DELETE 1,001 row ids",
        "DELETE",
        "/rows",
        413,
        "payload_too_large",
        body={"row_ids": [MISSING_ROW] * 1001},
    ),
    # --- single rows -----------------------------------------------------------------------
    Case("PATCH row bad id", "PATCH", "/rows/12345", 400, "invalid_row_id", body={"set": {"age": 1}}),
    Case(
        "PATCH missing row", "PATCH", f"/rows/{MISSING_ROW}", 404, "row_not_found", body={"set": {"age": 1}}
    ),
    Case("PATCH row wrong type", "PATCH", "/rows/{row}", 400, IB, body={"set": {"age": "old"}}),
    Case("PATCH row changes id", "PATCH", "/rows/{row}", 400, IB, body={"set": {"id": MISSING_ROW}}),
    Case("PATCH row changes row_index", "PATCH", "/rows/{row}", 400, IB, body={"set": {"row_index": 99}}),
    Case(
        "PATCH row changes created_at",
        "PATCH",
        "/rows/{row}",
        400,
        IB,
        body={"set": {"created_at": "2000-01-01T00:00:00Z"}},
    ),
    Case("PATCH row not an object", "PATCH", "/rows/{row}", 400, IB, body={"set": [{"age": 1}]}),
    Case(
        "PUT row changes updated_at",
        "PUT",
        "/rows/{row}",
        400,
        IB,
        body={"name": "A", "updated_at": "2000-01-01T00:00:00Z"},
    ),
    Case("PUT row non-JSON", "PUT", "/rows/{row}", 400, IB, raw="name=Ada"),
    Case("PUT row oversize", "PUT", "/rows/{row}", 400, IB, body={"name": "y" * 420_000}),
    Case("DELETE row bad id", "DELETE", "/rows/zzz", 400, "invalid_row_id"),
    Case("changes of a bad row id", "GET", "/rows/zzz/changes", 400, "invalid_row_id"),
]


@pytest.fixture
def seeded(client: Client) -> tuple[Client, str, str]:
    created = client.post("/datasets", {"name": "malformed", "columns": COLUMNS})
    assert created.status == 201, created.body
    dataset_id = created.json()["data"]["id"]
    inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": SEED})
    assert inserted.status == 201, inserted.body
    return client, dataset_id, inserted.json()["data"]["rows"][0]["id"]


def _state(client: Client, dataset_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    dataset = client.get(f"/datasets/{dataset_id}").json()["data"]
    rows = client.get(f"/datasets/{dataset_id}/rows", params={"limit": "1000"}).json()["data"]["rows"]
    return {key: dataset[key] for key in ("row_count", "columns", "name")}, rows


def test_there_are_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_request_is_refused_with_its_code_and_writes_nothing(
    seeded: tuple[Client, str, str], case: Case
) -> None:
    client, dataset_id, row_id = seeded
    before = _state(client, dataset_id)
    body = case.raw if case.raw is not None else (None if case.body is None else json.dumps(case.body))
    response = client.request(
        case.method, f"/datasets/{dataset_id}{case.path.format(row=row_id)}", params=case.params, body=body
    )
    assert response.status == case.status, response.body
    error = response.json()["error"]
    assert error["code"] == case.code, error
    assert error["message"]
    assert _state(client, dataset_id) == before


def test_an_update_that_would_make_a_row_too_big_changes_no_row_and_no_column(
    seeded: tuple[Client, str, str],
) -> None:
    client, dataset_id, row_id = seeded
    big = client.post(f"/datasets/{dataset_id}/rows", {"name": "big", "bio": "b" * 300_000})
    assert big.status == 201, big.body
    before = _state(client, dataset_id)
    grow = {"set": {"age": 1, "extra": "e" * 100_000}}  # fits alone; too big merged into "big"
    bulk = client.patch(f"/datasets/{dataset_id}/rows", grow)
    one = client.patch(f"/datasets/{dataset_id}/rows/{big.json()['data']['rows'][0]['id']}", grow)
    for response in (bulk, one):
        assert response.status == 400, response.body
        assert response.json()["error"]["code"] == "invalid_body"
    assert _state(client, dataset_id) == before
    # the same set fits the small rows
    assert client.patch(f"/datasets/{dataset_id}/rows/{row_id}", grow).status == 200
