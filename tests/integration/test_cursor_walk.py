"""Keyset pagination (SPEC §5–§6): walking a result with ``cursor`` yields exactly the rows of
the same query with a large limit, in the same order, on index and scan plans; a cursor is
bound to its dataset and query and cannot be forged."""

from __future__ import annotations

import random
from typing import Any

import pytest

from .conftest import Client

NAMES = ["ann", "Ann", "ANN", "bob", "Bob", "carl", "Émile", "emile", "zoë", None]
CITIES = ["Paris", "paris", "Lyon", None]


def _rows(count: int) -> list[dict[str, Any]]:
    rng = random.Random(7)  # fixed: duplicates, nulls and mixed case in every column
    return [
        {
            "name": rng.choice(NAMES),
            "amount": rng.choice([None, *range(-3, 12)]),
            "city": rng.choice(CITIES),
            "day": rng.choice([None, "2024-01-01", "2024-02-29", "2023-12-31"]),
        }
        for _ in range(count)
    ]


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return _rows(200)


def _dataset(client: Client, rows: list[dict[str, Any]], indexed: bool, name: str) -> str:
    columns = [
        {"name": "name", "type": "string", "indexed": indexed},
        {"name": "amount", "type": "number", "indexed": indexed},
        {"name": "city", "type": "string", "indexed": indexed},
        {"name": "day", "type": "date"},
    ]
    created = client.post("/datasets", {"name": name, "columns": columns})
    assert created.status == 201, created.body
    dataset_id = created.json()["data"]["id"]
    inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": rows})
    assert inserted.status == 201, inserted.body
    return dataset_id


def _get(client: Client, dataset_id: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    response = client.get(f"/datasets/{dataset_id}/rows", params=params)
    assert response.status == 200, (params, response.body)
    body: dict[str, Any] = response.json()
    return body


def _walk(
    client: Client, dataset_id: str, query: list[tuple[str, str]], page: int
) -> tuple[list[str], set[str]]:
    ids: list[str] = []
    plans: set[str] = set()
    cursor = None
    for _ in range(1000):
        params = [*query, ("limit", str(page)), ("count", "none")] + ([("cursor", cursor)] if cursor else [])
        body = _get(client, dataset_id, params)
        ids += [row["id"] for row in body["data"]["rows"]]
        plans.add(body["meta"]["plan"])
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return ids, plans
        assert body["data"]["rows"], "a page with a next_cursor has rows"
    raise AssertionError("the walk did not end")


QUERIES = {
    "default order": [],
    "eq on a column": [("city", "eq.Paris")],
    "in with order desc": [("name", "in.(ann,Bob,emile)"), ("order", "name.desc")],
    "range ordered by it": [("amount", "gte.2"), ("amount", "lt.9"), ("order", "amount")],
    "starts_with, nulls first": [("name", "starts_with.a"), ("order", "name.asc.nullsfirst")],
    "order with nulls, desc": [("order", "amount.desc")],
    "multi-column order": [("order", "city.desc.nullslast,name,amount.desc")],
    "two filters, other order": [("city", "not.is.null"), ("amount", "lte.5"), ("order", "day.desc,name")],
    "search": [("search", "EMI"), ("order", "amount.nullsfirst")],
    "is.null ordered desc": [("amount", "is.null"), ("order", "name.desc")],
}


@pytest.mark.parametrize("indexed", [True, False], ids=["indexed", "scan"])
def test_a_cursor_walk_equals_one_big_page(client: Client, rows: list[dict[str, Any]], indexed: bool) -> None:
    dataset_id = _dataset(client, rows, indexed, f"walk {indexed}")
    plans: set[str] = set()
    for label, query in QUERIES.items():
        whole = _get(client, dataset_id, [*query, ("limit", "1000")])
        expected = [row["id"] for row in whole["data"]["rows"]]
        assert expected, f"{label} matches something"
        for page in (8, 41):
            walked, used = _walk(client, dataset_id, query, page)
            assert walked == expected, (label, page)
            plans |= used
    if indexed:
        assert {"index:name", "index:amount", "index:city"} <= plans, plans
    else:  # without an index: the default order merges the shards, the rest is the replica's
        assert plans == {"scan", "replica"}


def test_both_plans_agree_on_every_walk(client: Client, rows: list[dict[str, Any]]) -> None:
    indexed_id = _dataset(client, rows, True, "agree indexed")
    scan_id = _dataset(client, rows, False, "agree scan")
    for query in QUERIES.values():
        by_index = [
            row["row_index"] for row in _get(client, indexed_id, [*query, ("limit", "1000")])["data"]["rows"]
        ]
        by_scan = [
            row["row_index"] for row in _get(client, scan_id, [*query, ("limit", "1000")])["data"]["rows"]
        ]
        assert by_index == by_scan, query


def test_a_cursor_is_bound_to_its_dataset_and_query_and_cannot_be_forged(
    client: Client, rows: list[dict[str, Any]]
) -> None:
    first = _dataset(client, rows[:50], True, "bound one")
    second = _dataset(client, rows[:50], True, "bound two")
    query = [("order", "amount")]
    cursor = _get(client, first, [*query, ("limit", "5")])["meta"]["next_cursor"]
    assert cursor
    assert (
        client.get(f"/datasets/{first}/rows", params=[*query, ("limit", "5"), ("cursor", cursor)]).status
        == 200
    )
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    for dataset_id, params in [
        (second, [*query, ("limit", "5"), ("cursor", cursor)]),  # another dataset
        (first, [("order", "amount.desc"), ("limit", "5"), ("cursor", cursor)]),  # another order
        (first, [*query, ("city", "eq.Paris"), ("limit", "5"), ("cursor", cursor)]),  # another filter
        (first, [*query, ("limit", "5"), ("cursor", tampered)]),
    ]:
        response = client.get(f"/datasets/{dataset_id}/rows", params=params)
        assert response.status == 400, response.body
        assert response.json()["error"]["code"] == "invalid_query"


def test_a_deep_cursor_page_reads_about_a_page(client: Client, rows: list[dict[str, Any]]) -> None:
    dataset_id = _dataset(client, rows, True, "deep")
    query = [("order", "amount"), ("count", "none")]
    cursor, reads = None, []
    while True:
        params = [*query, ("limit", "10")] + ([("cursor", cursor)] if cursor else [])
        body = _get(client, dataset_id, params)
        reads.append(body["meta"]["items_read"])
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    # the 20th page reads no more than the 2nd: cost does not grow with depth
    assert len(reads) == 20
    assert max(reads[1:-1]) <= 2 * reads[1] and max(reads[1:-1]) < 60, reads


def test_a_cursor_inside_a_group_of_cut_index_keys_skips_no_row(client: Client) -> None:
    """Index keys cut values at 1,000 bytes; long values sharing that prefix form one group of
    equal keys, ordered by their exact value rather than row_index."""
    rng = random.Random(3)
    prefix = "x" * 1100
    rows = [{"text": prefix + f"{rng.randrange(100):02d}"} for _ in range(20)]
    rows += [{"text": "a"}, {"text": "z"}, {"text": None}]
    ids = {}
    for indexed in (True, False):
        created = client.post(
            "/datasets",
            {"name": f"long {indexed}", "columns": [{"name": "text", "type": "string", "indexed": indexed}]},
        )
        ids[indexed] = created.json()["data"]["id"]
        assert client.post(f"/datasets/{ids[indexed]}/rows", {"rows": rows}).status == 201
    for query in (
        [("order", "text")],
        [("order", "text.desc")],
        [("text", "gte." + prefix), ("order", "text")],
    ):
        whole = {flag: _get(client, ids[flag], [*query, ("limit", "1000")])["data"]["rows"] for flag in ids}
        assert [r["row_index"] for r in whole[True]] == [r["row_index"] for r in whole[False]], query
        walked, plans = _walk(client, ids[True], query, 3)
        assert plans == {"index:text"}
        assert walked == [row["id"] for row in whole[True]], query
