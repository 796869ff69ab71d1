"""Column names and values with unicode, quotes, ``#``, ``:``, ``.``, commas, parentheses and
spaces round-trip, and can be filtered, selected and ordered — scan and index plans alike."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from .conftest import Client

CITY = 'Città #1: "Ōsaka".(北)'  # a column name with every awkward character
NOTE = "note's text, v1.2"
EMOJI = "ключ 🔑"
VALUES = [
    "São Paulo, SP",
    'He said "hi" (twice)',
    "l'été: #1.",
    "東京 タワー",
    "🙂 smile",
    "a,b(c)",
    "  padded  ",
    "ǅemal",  # titlecase letter: casefolds differently from its upper and lower forms
]


def _dataset(client: Client, indexed: bool) -> str:
    columns = [{"name": CITY, "type": "string", "indexed": indexed}, {"name": NOTE, "type": "string"}]
    created = client.post("/datasets", {"name": f"unicode {indexed}", "columns": columns})
    assert created.status == 201, created.body
    dataset_id = created.json()["data"]["id"]
    rows = [{CITY: value, NOTE: f"n{i}", EMOJI: i} for i, value in enumerate(VALUES)]
    inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": rows})
    assert inserted.status == 201, inserted.body
    return dataset_id


def _rows(client: Client, dataset_id: str, params: list[tuple[str, str]] | str) -> dict[str, Any]:
    response = client.get(f"/datasets/{dataset_id}/rows", params=params)
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(params=[False, True], ids=["scan", "indexed"])
def dataset(client: Client, request: pytest.FixtureRequest) -> tuple[Client, str, bool]:
    return client, _dataset(client, request.param), request.param


def test_names_and_values_round_trip_exactly(dataset: tuple[Client, str, bool]) -> None:
    client, dataset_id, _ = dataset
    data = _rows(client, dataset_id, [])["data"]
    assert data["columns"] == [CITY, NOTE, EMOJI]
    assert [row[CITY] for row in data["rows"]] == VALUES
    one = client.get(f"/datasets/{dataset_id}/rows/{data['rows'][3]['id']}").json()["data"]
    assert one[CITY] == "東京 タワー" and one[EMOJI] == 3
    assert [c["name"] for c in client.get(f"/datasets/{dataset_id}").json()["data"]["columns"]] == [
        CITY,
        NOTE,
        EMOJI,
    ]


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("eq.São Paulo, SP", ["São Paulo, SP"]),
        ('eq.He said "hi" (twice)', ['He said "hi" (twice)']),
        ("eq.  padded  ", ["  padded  "]),
        ("eq.l'été: #1.", ["l'été: #1."]),
        ("neq.東京 タワー", [v for v in VALUES if v != "東京 タワー"]),
        ("ilike.TOUR", []),
        ("ilike.ÉTÉ", ["l'été: #1."]),
        ("like.🙂", ["🙂 smile"]),
        ("starts_with.東京", ["東京 タワー"]),
        ("starts_with.\u01c4", ["ǅemal"]),  # case-insensitive: DŽ, ǅ and ǆ are one letter
        ('in.("São Paulo, SP","a,b(c)")', ["São Paulo, SP", "a,b(c)"]),
        ('in.("He said \\"hi\\" (twice)",🙂 smile)', ['He said "hi" (twice)', "🙂 smile"]),
        ('not.in.("a,b(c)")', [v for v in VALUES if v != "a,b(c)"]),
    ],
)
def test_filters_on_awkward_names_and_values(
    dataset: tuple[Client, str, bool], op: str, expected: list[str]
) -> None:
    client, dataset_id, _ = dataset
    body = _rows(client, dataset_id, [(CITY, op)])
    assert [row[CITY] for row in body["data"]["rows"]] == expected
    assert body["data"]["total"] == len(expected)


def test_indexed_filters_use_the_index(client: Client) -> None:
    dataset_id = _dataset(client, indexed=True)
    body = _rows(client, dataset_id, [(CITY, 'in.("São Paulo, SP","a,b(c)")')])
    assert body["meta"]["plan"] == f"index:{CITY}"


def test_select_and_order_by_quoted_names(dataset: tuple[Client, str, bool]) -> None:
    client, dataset_id, _ = dataset
    select = f'"{CITY.replace(chr(34), chr(92) + chr(34))}","{NOTE}",{EMOJI}'
    body = _rows(client, dataset_id, [("select", select), ("order", f"{CITY}.desc")])
    rows = body["data"]["rows"]
    assert body["data"]["columns"] == [CITY, NOTE, EMOJI]
    assert all(set(row) == {"id", CITY, NOTE, EMOJI} for row in rows)
    assert [row[CITY] for row in rows] == sorted(VALUES, key=lambda v: (v.casefold(), v), reverse=True)
    only_note = _rows(client, dataset_id, [("select", f' "{NOTE}" '), ("order", f"{EMOJI}.desc")])["data"][
        "rows"
    ]
    assert [row[NOTE] for row in only_note] == [f"n{i}" for i in reversed(range(len(VALUES)))]


def test_raw_query_string_with_percent_encoding_and_literal_plus(client: Client) -> None:
    created = client.post("/datasets", {"name": "plus", "columns": [{"name": "v", "type": "string"}]})
    dataset_id = created.json()["data"]["id"]
    client.post(f"/datasets/{dataset_id}/rows", [{"v": "a+b"}, {"v": "a b"}])
    # As API Gateway decodes a query string: "+" and "%20" are spaces, "%2B" is a plus sign.
    plus = _rows(client, dataset_id, "v=eq.a%2Bb")["data"]["rows"]
    space = [_rows(client, dataset_id, query)["data"]["rows"] for query in ("v=eq.a+b", "v=eq.a%20b")]
    assert [row["v"] for row in plus] == ["a+b"]
    assert [[row["v"] for row in rows] for rows in space] == [["a b"], ["a b"]]
    in_list = quote('in.("a b",x)')
    named = _rows(client, dataset_id, f"v={in_list}")["data"]["rows"]
    assert [row["v"] for row in named] == ["a b"]


def test_row_writes_with_awkward_names(client: Client) -> None:
    dataset_id = _dataset(client, indexed=True)
    first = _rows(client, dataset_id, [])["data"]["rows"][0]
    patched = client.patch(f"/datasets/{dataset_id}/rows/{first['id']}", {"set": {CITY: "Zürich 🇨🇭"}})
    assert patched.status == 200, patched.body
    assert patched.json()["data"][CITY] == "Zürich 🇨🇭"
    found = _rows(client, dataset_id, [(CITY, "eq.Zürich 🇨🇭")])["data"]["rows"]
    assert [row["id"] for row in found] == [first["id"]]
    bulk = client.patch(
        f"/datasets/{dataset_id}/rows", {"where": {CITY: {"starts_with": "zür"}}, "set": {NOTE: "ch"}}
    )
    assert bulk.json()["data"]["updated"] == 1
