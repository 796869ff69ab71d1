"""Writes whose answers are big (SPEC §2: no 5xx from any input; a response never passes 6 MB).

An insert echoes its rows: up to a 6 MB body's worth, which Lambda cannot carry back when the
rows are mostly short strings (each ``"`` weighs double inside the proxy response), and which
an ``Idempotency-Key`` record (one DynamoDB item, 400 KB) cannot keep. Before, the first was a
502 from API Gateway and the second a 500 — after the rows were written.
"""

from __future__ import annotations

import secrets
from typing import Any

from .conftest import Client


def dataset(client: Client, name: str) -> str:
    created = client.post("/datasets", {"name": name})
    assert created.status == 201
    dataset_id: str = created.json()["data"]["id"]
    return dataset_id


def every_row(client: Client, dataset_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
        body = client.get(f"/datasets/{dataset_id}/rows", params=params).json()
        rows += body["data"]["rows"]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            return rows


def test_an_insert_whose_echo_lambda_cannot_carry_answers_abridged(client: Client) -> None:
    # 36 rows of 80,000 double quotes: a 5.8 MB body, an 11.5 MB echo as Lambda carries it.
    dataset_id = dataset(client, "quotes")
    rows = [{"n": n, "text": '"' * 80_000} for n in range(36)]
    answer = client.post(f"/datasets/{dataset_id}/rows", {"rows": rows})
    assert answer.status == 201, answer.body[:300]
    data = answer.json()["data"]
    assert data["inserted"] == 36 and data["abridged"] is True
    assert [sorted(row) for row in data["rows"]] == [["created_at", "id", "row_index", "updated_at"]] * 36
    stored = every_row(client, dataset_id)
    assert [row["id"] for row in stored] == [row["id"] for row in data["rows"]]
    assert all(row["text"] == '"' * 80_000 for row in stored)


def test_a_small_echo_is_whole(client: Client) -> None:
    dataset_id = dataset(client, "small")
    data = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": 1, "text": "a"}]}).json()["data"]
    assert "abridged" not in data and data["rows"][0]["text"] == "a"


def replayed(client: Client, path: str, body: Any, method: str = "POST") -> tuple[Any, Any]:
    headers = {"Idempotency-Key": "big-" + secrets.token_hex(4)}
    first = client.request(method, path, json_body=body, headers=headers)
    again = client.request(method, path, json_body=body, headers=headers)
    assert first.status in (200, 201), first.body[:300]
    assert again.status == first.status, again.body[:300]
    assert again.headers.get("Idempotent-Replayed") == "true"
    return first.json()["data"], again.json()["data"]


def test_a_big_compressible_answer_replays_whole(client: Client) -> None:
    dataset_id = dataset(client, "compressible")
    rows = [{"text": "x" * 150_000} for _ in range(4)]
    first, again = replayed(client, f"/datasets/{dataset_id}/rows", {"rows": rows})
    assert again == first and first["rows"][0]["text"] == "x" * 150_000
    assert len(every_row(client, dataset_id)) == 4  # written once


def test_a_big_incompressible_answer_replays_abridged(client: Client) -> None:
    dataset_id = dataset(client, "random")
    rows = [{"text": secrets.token_urlsafe(110_000)} for _ in range(4)]
    first, again = replayed(client, f"/datasets/{dataset_id}/rows", {"rows": rows})
    assert "abridged" not in first and [row["text"] for row in first["rows"]] == [r["text"] for r in rows]
    assert again["abridged"] is True and again["inserted"] == 4
    assert [row["id"] for row in again["rows"]] == [row["id"] for row in first["rows"]]
    assert len(every_row(client, dataset_id)) == 4


def test_a_row_update_whose_answer_passes_a_record_replays(client: Client) -> None:
    # 60,000 control characters: a 60 KB value, 360 KB of JSON (\u0001 each), 420 KB as the
    # idempotency record writes that JSON in a string — past DynamoDB's 400 KB item.
    dataset_id = dataset(client, "one row")
    inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"text": "a"}]})
    row_id = inserted.json()["data"]["rows"][0]["id"]
    value = "\x01" * 60_000
    first, again = replayed(
        client, f"/datasets/{dataset_id}/rows/{row_id}", {"set": {"text": value}}, method="PATCH"
    )
    assert first["text"] == value and again == first
