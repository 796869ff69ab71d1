"""Byte-bounded pages (SPEC §2): a page stops before its JSON passes 5 MB and before Lambda's
6 MB response limit (the body as the runtime carries it, a JSON string), says so
(``meta.cut_at_bytes``) and continues where it stopped, on every plan: the row-order scan,
an index range, the replica (whose answer also travels through the analytics function's
6 MB Invoke response, held to it by the conftest), groups and distinct values.

Rows are big: 40 rows of about 300 KB, half of them plain text, half double quotes (each of
which takes 2 bytes in the JSON and 4 as Lambda carries it).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from datasets_core.query.answer import PAGE_BYTES

from .conftest import LAMBDA_PAYLOAD_BYTES, Client

ROWS = 40
PLAIN = "x" * 300_000
QUOTES = '"' * 150_000


def carried(body: bytes) -> int:
    """The size of ``body`` inside the proxy response as the Python runtime writes it."""
    return len(json.dumps(body.decode(), ensure_ascii=False).encode())


@pytest.fixture
def dataset(client: Client) -> str:
    columns = [
        {"name": "n", "type": "number", "indexed": True},
        {"name": "tag", "type": "number"},
        {"name": "text", "type": "string"},
    ]
    created = client.post("/datasets", {"name": "big rows", "columns": columns})
    assert created.status == 201, created.body
    dataset_id: str = created.json()["data"]["id"]
    rows = [{"n": n, "tag": n % 4, "text": (QUOTES if n % 2 else PLAIN) + str(n)} for n in range(ROWS)]
    for start in range(0, ROWS, 10):
        inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": rows[start : start + 10]})
        assert inserted.status == 201, inserted.body[:300]
    return dataset_id


def page(client: Client, dataset_id: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    answer = client.get(f"/datasets/{dataset_id}/rows", params=params)
    assert answer.status == 200, answer.body[:500]
    assert len(answer.body) <= PAGE_BYTES
    assert carried(answer.body) <= LAMBDA_PAYLOAD_BYTES
    body: dict[str, Any] = answer.json()
    return body


def walk(client: Client, dataset_id: str, query: list[tuple[str, str]]) -> tuple[list[int], list[dict]]:
    """Every row of ``query`` (limit 1000) through its cursors: the n values, and each page's meta."""
    seen: list[int] = []
    metas: list[dict] = []
    cursor = None
    for _ in range(ROWS + 1):
        params = [*query, ("limit", "1000")] + ([("cursor", cursor)] if cursor else [])
        body = page(client, dataset_id, params)
        seen += [row["n"] for row in body["data"]["rows"]]
        metas.append(body["meta"])
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return seen, metas
    raise AssertionError("the walk did not end")


QUERIES = {
    "scan": ([], "scan", list(range(ROWS))),
    "index": ([("order", "n.desc")], "index:n", list(reversed(range(ROWS)))),
    "replica": (
        [("tag", "neq.9"), ("order", "tag,n")],
        "replica",
        sorted(range(ROWS), key=lambda n: (n % 4, n)),
    ),
}


@pytest.mark.parametrize(("query", "plan", "expected"), QUERIES.values(), ids=QUERIES.keys())
def test_a_page_stops_before_5_mb_and_continues(
    client: Client, dataset: str, query: list[tuple[str, str]], plan: str, expected: list[int]
) -> None:
    seen, metas = walk(client, dataset, query)
    # Every row once, in order, over several pages each cut by bytes but the last,
    assert seen == expected
    assert {meta["plan"] for meta in metas} == {plan}
    assert len(metas) >= 3
    assert all(meta.get("cut_at_bytes") is True for meta in metas[:-1])
    assert metas[-1].get("cut_at_bytes") is None
    # and a page holds as much as fits: the next row would not have.
    assert all(meta["limit"] == 1000 for meta in metas)


def test_quotes_weigh_double_as_lambda_carries_them(client: Client, dataset: str) -> None:
    # Only rows of double quotes: 300 KB of JSON each but 600 KB inside the proxy response, so
    # Lambda's 6 MB cuts the page before 5 MB of JSON would.
    body = page(client, dataset, [("tag", "in.(1,3)"), ("order", "n"), ("limit", "1000")])
    rows = body["data"]["rows"]
    assert body["meta"]["cut_at_bytes"] is True and body["meta"]["next_cursor"]
    assert 8 <= len(rows) <= 10
    assert [row["n"] for row in rows] == list(range(1, 2 * len(rows), 2))


def test_an_offset_page_continues_by_cursor(client: Client, dataset: str) -> None:
    body = page(client, dataset, [("order", "n"), ("offset", "5"), ("limit", "30")])
    first = [row["n"] for row in body["data"]["rows"]]
    assert body["meta"]["cut_at_bytes"] is True and first[0] == 5 and len(first) < 30
    rest = page(client, dataset, [("order", "n"), ("limit", "30"), ("cursor", body["meta"]["next_cursor"])])
    assert [row["n"] for row in rest["data"]["rows"]][0] == first[-1] + 1


def test_groups_stop_before_5_mb_and_continue_by_offset(client: Client, dataset: str) -> None:
    groups: list[str] = []
    offset = 0
    pages = 0
    while True:
        body = page(client, dataset, [("select", "text,count()"), ("limit", "1000"), ("offset", str(offset))])
        rows = body["data"]["rows"]
        assert body["data"]["total"] == ROWS
        groups += [row["text"] for row in rows]
        pages += 1
        if not body["meta"].get("cut_at_bytes"):
            break
        assert body["meta"]["next_offset"] == offset + len(rows)
        offset = body["meta"]["next_offset"]
    assert pages >= 3
    assert sorted(groups) == sorted((QUOTES if n % 2 else PLAIN) + str(n) for n in range(ROWS))


def test_distinct_values_stop_before_5_mb_and_continue_by_offset(client: Client, dataset: str) -> None:
    body = page(client, dataset, [("distinct", "text"), ("limit", "1000")])
    values = body["data"]["values"]
    assert body["meta"]["cut_at_bytes"] is True and 0 < len(values) < ROWS
    rest = page(client, dataset, [("distinct", "text"), ("limit", "1000"), ("offset", str(len(values)))])
    assert body["data"]["total_unique"] == rest["data"]["total_unique"] == ROWS
    assert not {v["value"] for v in values} & {v["value"] for v in rest["data"]["values"]}


def test_a_bulk_write_finds_its_rows_in_an_answer_that_does_not_grow_past_its_limit(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The analytics function names the rows a bulk ``where`` matches; past the bulk limit it
    # names none (a million row indexes would pass Lambda's 6 MB), only how many matched.
    from datasets_core import jsonutil
    from datasets_core.logic import bulk_where
    from local.events import LambdaContext
    from tests.iam import recorder

    monkeypatch.setattr(bulk_where, "MAX_BULK_MATCHES", 5)
    created = client.post("/datasets", {"name": "tags"})
    dataset_id = created.json()["data"]["id"]
    inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"tag": n % 5} for n in range(50)]})
    assert inserted.status == 201

    def match(where: Any, limit: int) -> Any:
        event = {
            "action": "match",
            "workspace": "default",
            "dataset_id": dataset_id,
            "arguments": jsonutil.dumps({"where": where, "limit": limit}),
        }
        answer = recorder.invoke("analytics", event, LambdaContext("analytics"))
        return jsonutil.loads(answer["json"])["ok"]

    assert match({"tag": {"neq": 4}}, 5) == {"matched": 40, "indexes": []}
    assert match({"tag": 4}, 5) == {"matched": 10, "indexes": []}
    found = match({"tag": 4}, 10)
    assert found["matched"] == 10 and len(found["indexes"]) == 10
    # and the bulk write is refused with the number that matched, nothing changed.
    refused = client.patch(f"/datasets/{dataset_id}/rows", {"where": {"tag": {"neq": 4}}, "set": {"tag": 9}})
    assert refused.status == 400 and refused.json()["error"]["details"] == {"matched": 40, "limit": 5}
    unchanged = client.get(f"/datasets/{dataset_id}/rows", params={"tag": "eq.9"})
    assert unchanged.json()["data"]["total"] == 0


def test_a_rows_audit_trail_stops_before_5_mb_and_continues_by_offset(client: Client) -> None:
    created = client.post("/datasets", {"name": "edited"})
    dataset_id = created.json()["data"]["id"]
    inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"text": "a" * 150_000}]})
    row_id = inserted.json()["data"]["rows"][0]["id"]
    for edit in range(20):  # each change holds the old and the new 150 KB value
        changed = client.patch(
            f"/datasets/{dataset_id}/rows/{row_id}", {"set": {"text": "ab"[edit % 2] * 150_000}}
        )
        assert changed.status == 200, changed.body[:300]
    seen = 0
    offset = 0
    pages = 0
    while True:
        answer = client.get(
            f"/datasets/{dataset_id}/rows/{row_id}/changes", params={"limit": "100", "offset": offset}
        )
        assert answer.status == 200 and len(answer.body) <= PAGE_BYTES
        assert carried(answer.body) <= LAMBDA_PAYLOAD_BYTES
        body = answer.json()
        seen += len(body["data"])
        pages += 1
        if not body["meta"].get("cut_at_bytes"):
            break
        offset = body["meta"]["next_offset"]
        assert offset == seen
    assert seen == body["meta"]["total"] == 21 and pages >= 2
