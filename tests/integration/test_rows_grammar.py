"""Every form of the query language beyond PostgREST's basics, end to end on both plans.

Each query runs on two datasets holding the same rows: one whose indexes serve it (the index
plan reads the rows an index range pins and applies the rest in memory) and one without
indexes (the columnar replica answers, through the analytics function). Both must give the
expected rows, in the expected order, with the expected total. Forms: ``or``/``and`` groups,
nesting, ``not.`` on groups and inside them, quoting inside groups, JSON paths (``->``,
``->>``, array steps) in filters, ``select`` and ``order``, ``match``/``imatch``, a column
repeated in ``order``, and columns named like the query parameters, filtered in quotes.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Client

ROWS = [
    {
        "name": "Ada",
        "amount": 150,
        "status": "active",
        "note": "a,b (c)",
        "meta": {"plan": "pro", "n": 5, "tags": ["x", "y"], "geo": {"city": "Paris"}},
    },
    {
        "name": "Bob",
        "amount": 50,
        "status": "lost",
        "note": "x.y: z",
        "meta": {"plan": "free", "n": 10, "tags": ["y"]},
    },
    {"name": "Cy", "amount": None, "status": "active", "note": 'say "hi"', "meta": {"plan": "Pro", "n": "7"}},
    {"name": "aaaa", "amount": 100, "status": None, "note": None, "meta": None},
    {
        "name": "Dee",
        "amount": 100,
        "status": "new",
        "note": "back\\slash",
        "meta": {"plan": None, "n": 2.5, "tags": []},
    },
]
TYPES = {"name": "string", "amount": "number", "status": "string", "note": "string", "meta": "json"}

# (query, expected names in answer order); every query also gets kind=eq.all (see _run).
CASES: list[tuple[str, list[str]]] = [
    # logical groups
    ("or=(status.eq.active,amount.gt.100)", ["Ada", "Cy"]),
    ("and=(status.eq.active,amount.gt.100)", ["Ada"]),
    ("or=(status.eq.lost,and(amount.gte.100,status.is.null))", ["Bob", "aaaa"]),
    # aaaa: not.and(TRUE, TRUE) is FALSE and status.eq.lost is UNKNOWN: not matched
    ("or=(status.eq.lost,not.and(amount.gte.100,status.is.null),name.eq.Cy)", ["Ada", "Bob", "Cy", "Dee"]),
    ("not.or=(status.eq.active,amount.gt.100)", ["Bob", "Dee"]),  # aaaa: UNKNOWN, not matched
    ("not.and=(status.eq.active,amount.gt.100)", ["Bob", "aaaa", "Dee"]),  # Cy: UNKNOWN
    ("or=(amount.not.eq.100,status.not.in.(active,lost))", ["Ada", "Bob", "Dee"]),
    ("or=(status.eq.active,amount.gt.100)&or=(name.eq.Cy,amount.eq.150)", ["Ada", "Cy"]),
    ("or=(and(or(name.eq.Ada,name.eq.Bob),amount.gte.100),name.eq.Dee)", ["Ada", "Dee"]),
    # quoting inside groups: , . : ( ) and escapes
    ('or=(note.eq."a,b (c)",note.eq."x.y: z")', ["Ada", "Bob"]),
    ('or=(note.eq."say \\"hi\\"",note.eq."back\\\\slash")', ["Cy", "Dee"]),
    ('or=(note.in.("a,b (c)","say \\"hi\\""),name.eq.Dee)', ["Ada", "Cy", "Dee"]),
    # JSON paths in filters
    ("meta->plan=eq.pro", ["Ada"]),
    ("meta->>plan=ilike.*pro*", ["Ada", "Cy"]),
    ("meta->n=gt.6", ["Bob"]),  # Cy's "7" is a string: not compared with a number
    ('meta->n=eq."7"', ["Cy"]),
    ("meta->>n=eq.7", ["Cy"]),
    ("meta->>n=eq.2.5", ["Dee"]),
    ("meta->tags->0=eq.y", ["Bob"]),
    ("meta->geo->>city=eq.Paris", ["Ada"]),
    ("meta->plan=is.null", ["aaaa", "Dee"]),  # no meta, and a JSON null
    ("meta->missing=is.null", ["Ada", "Bob", "Cy", "aaaa", "Dee"]),
    ("meta->plan=not.is.null", ["Ada", "Bob", "Cy"]),
    ("meta->plan=neq.pro", ["Bob", "Cy"]),
    ("or=(meta->plan.eq.free,meta->>n.eq.7)", ["Bob", "Cy"]),
    # regular expressions
    ("name=match.^[A-C]", ["Ada", "Bob", "Cy"]),
    ("name=imatch.^a", ["Ada", "aaaa"]),
    ("name=match.a$", ["Ada", "aaaa"]),
    ("note=match.\\(c\\)$", ["Ada"]),
    ("name=not.match.^a", ["Ada", "Bob", "Cy", "Dee"]),
    ("amount=match.^1", ["Ada", "aaaa", "Dee"]),  # the number's text
    ('or=(name.match."^B",meta->plan.eq.pro)', ["Ada", "Bob"]),
    ("meta->>plan=imatch.^PRO$", ["Ada", "Cy"]),
    # order: JSON paths, repeated columns
    ("order=meta->n.desc", ["aaaa", "Cy", "Bob", "Ada", "Dee"]),  # nulls first; strings above numbers
    ("order=meta->>plan.asc", ["Bob", "Cy", "Ada", "aaaa", "Dee"]),
    ("order=amount.desc,amount.asc", ["Cy", "Ada", "aaaa", "Dee", "Bob"]),
    ("order=amount.asc,name.desc,amount.desc", ["Bob", "Dee", "aaaa", "Ada", "Cy"]),
]


def _dataset(client: Client, name: str, indexed: set[str]) -> str:
    columns = [{"name": "kind", "type": "string", "indexed": "kind" in indexed}]
    columns += [
        {"name": column, "type": kind, "indexed": column in indexed} for column, kind in TYPES.items()
    ]
    created = client.post("/datasets", {"name": name, "columns": columns})
    assert created.status == 201, created.body
    dataset_id = str(created.json()["data"]["id"])
    inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"kind": "all", **row} for row in ROWS]})
    assert inserted.status == 201, inserted.body
    return dataset_id


@pytest.fixture
def datasets(client: Client) -> dict[str, str]:
    """The same rows twice: served by an index (kind, name), and by the replica."""
    return {
        "index:kind": _dataset(client, "indexed", {"kind", "name"}),
        "replica": _dataset(client, "plain", set()),
    }


def _run(client: Client, dataset_id: str, query: str) -> dict[str, Any]:
    response = client.get(f"/datasets/{dataset_id}/rows", params=f"{query}&kind=eq.all")
    assert response.status == 200, (query, response.body)
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(("query", "expected"), CASES, ids=[case[0] for case in CASES])
def test_each_form_gives_the_same_answer_on_the_index_and_the_replica(
    client: Client, datasets: dict[str, str], query: str, expected: list[str]
) -> None:
    for plan, dataset_id in datasets.items():
        body = _run(client, dataset_id, query)
        assert body["meta"]["plan"] == plan, (query, body["meta"])
        assert [row["name"] for row in body["data"]["rows"]] == expected, (plan, query)
        assert body["data"]["total"] == len(expected), (plan, query)


def test_json_paths_in_select_name_the_answer_by_the_last_step(
    client: Client, datasets: dict[str, str]
) -> None:
    query = "select=name,meta->plan,city:meta->geo->>city,meta->>n,meta->tags->1&order=name.asc"
    for plan, dataset_id in datasets.items():
        body = _run(client, dataset_id, query)
        assert body["meta"]["plan"] == plan
        rows = [{k: v for k, v in row.items() if k != "id"} for row in body["data"]["rows"]]
        assert rows == [
            {"name": "aaaa", "plan": None, "city": None, "n": None, "1": None},
            {"name": "Ada", "plan": "pro", "city": "Paris", "n": "5", "1": "y"},
            {"name": "Bob", "plan": "free", "city": None, "n": "10", "1": None},
            {"name": "Cy", "plan": "Pro", "city": None, "n": "7", "1": None},
            {"name": "Dee", "plan": None, "city": None, "n": "2.5", "1": None},
        ], plan


def test_groups_paths_and_patterns_select_the_rows_of_bulk_writes_too(client: Client) -> None:
    """``where`` bodies take the same groups and paths (never raw expressions), on both plans."""
    for name, indexed in (("w-indexed", {"kind", "name"}), ("w-plain", set())):
        dataset_id = _dataset(client, name, indexed)
        where = {
            "kind": "all",
            "or": [{"meta->plan": "pro"}, {"and": [{"amount": {"gte": 100}}, {"status": None}]}],
        }
        updated = client.patch(f"/datasets/{dataset_id}/rows", {"where": where, "set": {"hit": True}})
        assert updated.status == 200 and updated.json()["data"] == {"updated": 2}, updated.body
        hits = client.get(f"/datasets/{dataset_id}/rows", params="hit=is.true").json()["data"]["rows"]
        assert [row["name"] for row in hits] == ["Ada", "aaaa"]
        gone = client.delete(
            f"/datasets/{dataset_id}/rows",
            {"where": {"not": {"or": [{"status": "active"}, {"amount": {"gt": 60}}]}}},
        )
        assert gone.status == 200 and gone.json()["data"] == {"deleted": 1}, gone.body  # Bob
        left = client.get(f"/datasets/{dataset_id}/rows").json()["data"]["rows"]
        assert [row["name"] for row in left] == ["Ada", "Cy", "aaaa", "Dee"]


# --- columns named like query parameters ----------------------------------------------------------
RESERVED = [
    "select",
    "order",
    "limit",
    "offset",
    "or",
    "and",
    "search",
    "count",
    "cursor",
    "distinct",
    "as_of",
]


@pytest.fixture
def reserved(client: Client) -> dict[str, str]:
    answers = {}
    for name, indexed in (("reserved-indexed", {"order", "or", "limit", "as_of"}), ("reserved-plain", set())):
        columns = [{"name": "kind", "type": "string"}]
        columns += [{"name": column, "type": "string", "indexed": column in indexed} for column in RESERVED]
        created = client.post("/datasets", {"name": name, "columns": columns})
        assert created.status == 201, created.body
        dataset_id = created.json()["data"]["id"]
        rows = [{"kind": "all", **{column: f"{column}-{i}" for column in RESERVED}} for i in range(3)]
        assert client.post(f"/datasets/{dataset_id}/rows", {"rows": rows}).status == 201
        answers[name] = dataset_id
    return answers


@pytest.mark.parametrize("column", RESERVED)
def test_a_column_named_like_a_query_parameter_is_filtered_in_quotes(
    client: Client, reserved: dict[str, str], column: str
) -> None:
    plans = set()
    for dataset_id in reserved.values():
        query = f"%22{column}%22=eq.{column}-1"
        body = client.get(f"/datasets/{dataset_id}/rows", params=query).json()
        assert [row[column] for row in body["data"]["rows"]] == [f"{column}-1"], body
        plans.add(body["meta"]["plan"].split(":")[0])
        grouped = client.get(
            f"/datasets/{dataset_id}/rows",
            params=f'or=("{column}".eq.{column}-0,"{column}".eq.{column}-2)&select=%22{column}%22&order=%22{column}%22.desc',
        ).json()
        assert [row[column] for row in grouped["data"]["rows"]] == [f"{column}-2", f"{column}-0"], grouped
    assert plans == {"index", "replica"} if column in ("order", "or", "limit", "as_of") else {"replica"}
