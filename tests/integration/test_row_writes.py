"""Row writes as a user relies on them (SPEC §5): body shapes, single and bulk writes,
immutable metadata, exact row_count, Idempotency-Key replays, the audit trail, upsert_on,
and an index added to a dataset that already has rows."""

from __future__ import annotations

from typing import Any

from datasets_core.logic import keys, maintenance

from .conftest import Client, queued_maintenance

UNINDEXED = [{"name": "email", "type": "string"}, {"name": "score", "type": "number"}]
INDEXED = [{"name": "email", "type": "string", "indexed": True}, {"name": "score", "type": "number"}]


def _dataset(client: Client, name: str = "people", columns: list[dict[str, Any]] | None = None) -> str:
    created = client.post("/datasets", {"name": name, "columns": columns or UNINDEXED})
    assert created.status == 201, created.body
    return str(created.json()["data"]["id"])


def _count(client: Client, dataset_id: str) -> int:
    return int(client.get(f"/datasets/{dataset_id}").json()["data"]["row_count"])


def _all(client: Client, dataset_id: str, *params: tuple[str, str]) -> list[dict[str, Any]]:
    response = client.get(f"/datasets/{dataset_id}/rows", params=[("limit", "1000"), *params])
    assert response.status == 200, response.body
    rows: list[dict[str, Any]] = response.json()["data"]["rows"]
    return rows


def test_post_takes_an_object_an_array_or_rows_and_counts_exactly(client: Client) -> None:
    dataset_id = _dataset(client)
    shapes = [{"email": "a@x.io"}, [{"email": "b@x.io"}, {"email": "c@x.io"}], {"rows": [{"score": 1}]}]
    counts = []
    for body in shapes:
        response = client.post(f"/datasets/{dataset_id}/rows", body)
        assert response.status == 201, response.body
        data = response.json()["data"]
        assert data["inserted"] == len(data["rows"])
        counts.append(_count(client, dataset_id))
    assert counts == [1, 3, 4]
    rows = _all(client, dataset_id)
    assert [row["row_index"] for row in rows] == [0, 1, 2, 3]
    assert all({"id", "row_index", "created_at", "updated_at"} <= set(row) for row in rows)
    grown = client.post(f"/datasets/{dataset_id}/rows", {"email": "d@x.io", "team": "blue"})
    assert grown.json()["data"]["rows"][0]["team"] == "blue"
    columns = client.get(f"/datasets/{dataset_id}").json()["data"]["columns"]
    assert [(c["name"], c["type"]) for c in columns] == [
        ("email", "string"),
        ("score", "number"),
        ("team", "string"),
    ]


def test_single_row_get_patch_put_delete(client: Client) -> None:
    dataset_id = _dataset(client)
    row = client.post(f"/datasets/{dataset_id}/rows", {"email": "a@x.io", "score": 5}).json()["data"]["rows"][
        0
    ]
    path = f"/datasets/{dataset_id}/rows/{row['id']}"
    assert client.get(path).json()["data"] == row

    patched = client.patch(path, {"set": {"score": 6, "id": row["id"]}})  # repeating the id is allowed
    assert patched.status == 200, patched.body
    after_patch = patched.json()["data"]
    assert (after_patch["email"], after_patch["score"]) == ("a@x.io", 6)
    assert after_patch["created_at"] == row["created_at"]
    assert after_patch["updated_at"] >= row["updated_at"]

    replaced = client.put(path, {"score": 7})
    assert replaced.status == 200, replaced.body
    assert (replaced.json()["data"]["email"], replaced.json()["data"]["score"]) == (None, 7)  # PUT replaces

    assert client.delete(path).json()["data"] == {"deleted": True, "id": row["id"]}
    assert _count(client, dataset_id) == 0
    for response in (client.delete(path), client.get(path), client.patch(path, {"set": {"score": 1}})):
        assert response.status == 404 and response.json()["error"]["code"] == "row_not_found"
    assert _count(client, dataset_id) == 0  # a second delete does not count twice


def test_bulk_patch_and_delete_touch_exactly_the_matching_rows(client: Client) -> None:
    dataset_id = _dataset(client)
    rows = [{"email": f"u{i}@x.io", "score": i} for i in range(10)]
    ids = [row["id"] for row in client.post(f"/datasets/{dataset_id}/rows", rows).json()["data"]["rows"]]

    updated = client.patch(
        f"/datasets/{dataset_id}/rows", {"where": {"score": {"gte": 7}}, "set": {"score": 100}}
    )
    assert updated.json()["data"] == {"updated": 3}
    assert [row["score"] for row in _all(client, dataset_id)] == [0, 1, 2, 3, 4, 5, 6, 100, 100, 100]
    every = client.patch(f"/datasets/{dataset_id}/rows", {"set": {"team": "red"}})  # no where: every row
    assert every.json()["data"] == {"updated": 10}

    by_id = client.delete(
        f"/datasets/{dataset_id}/rows", {"row_ids": [ids[0], ids[1], "00000000-0000-8000-8000-00000000abcd"]}
    )
    assert by_id.json()["data"] == {"deleted": 2}  # ids not in the dataset are not counted
    by_where = client.delete(f"/datasets/{dataset_id}/rows", {"where": {"score": 100}})
    assert by_where.json()["data"] == {"deleted": 3}
    assert [row["score"] for row in _all(client, dataset_id)] == [2, 3, 4, 5, 6]
    assert _count(client, dataset_id) == 5
    again = client.delete(f"/datasets/{dataset_id}/rows", {"row_ids": [ids[0]]})
    assert again.json()["data"] == {"deleted": 0} and _count(client, dataset_id) == 5


def test_idempotency_key_replays_and_refuses_another_body(client: Client) -> None:
    dataset_id = _dataset(client)
    headers = {"Idempotency-Key": "import-2024-05-01"}
    first = client.post(f"/datasets/{dataset_id}/rows", [{"email": "a@x.io"}], headers=headers)
    replay = client.post(f"/datasets/{dataset_id}/rows", [{"email": "a@x.io"}], headers=headers)
    assert first.status == replay.status == 201
    assert replay.json() == first.json()
    assert _count(client, dataset_id) == 1
    other = client.post(f"/datasets/{dataset_id}/rows", [{"email": "b@x.io"}], headers=headers)
    assert other.status == 409 and other.json()["error"]["code"] == "conflict"
    assert _count(client, dataset_id) == 1
    fresh = client.post(
        f"/datasets/{dataset_id}/rows", [{"email": "b@x.io"}], headers={"Idempotency-Key": "k2"}
    )
    assert fresh.status == 201 and _count(client, dataset_id) == 2


def test_changes_record_who_when_and_what(client: Client) -> None:
    dataset_id = _dataset(client)
    writer = keys.issue_key("default", "writer", ["datasets:read", "datasets:write"])
    row = client.post(f"/datasets/{dataset_id}/rows", {"email": "a@x.io", "score": 1}).json()["data"]["rows"][
        0
    ]
    path = f"/datasets/{dataset_id}/rows/{row['id']}"
    assert client.patch(path, {"set": {"score": 2}}, key=writer["key"]).status == 200
    assert client.delete(path).status == 200
    trail = client.get(f"{path}/changes")
    assert trail.status == 200, trail.body
    entries = trail.json()["data"]
    assert [entry["op"] for entry in entries] == ["delete", "update", "insert"]  # newest first
    assert entries[1]["changes"] == {"score": {"old": 1, "new": 2}}
    assert entries[2]["changes"]["email"] == {"old": None, "new": "a@x.io"}
    assert entries[0]["changes"]["score"] == {"old": 2, "new": None}
    assert all(entry["at"] and entry["key_id"] for entry in entries)
    assert entries[1]["key_id"] == writer["id"] != entries[2]["key_id"]


def test_upsert_on_an_indexed_column(client: Client) -> None:
    dataset_id = _dataset(client, columns=INDEXED)
    client.post(
        f"/datasets/{dataset_id}/rows", [{"email": "a@x.io", "score": 1}, {"email": "b@x.io", "score": 2}]
    )
    merged = client.post(
        f"/datasets/{dataset_id}/rows",
        {"rows": [{"email": "b@x.io", "score": 20}, {"email": "c@x.io", "score": 3}], "upsert_on": "email"},
    )
    assert merged.status in (200, 201), merged.body
    data = merged.json()["data"]
    assert (data["inserted"], data["updated"]) == (1, 1)
    assert {(row["email"], row["score"]) for row in _all(client, dataset_id)} == {
        ("a@x.io", 1),
        ("b@x.io", 20),
        ("c@x.io", 3),
    }
    assert _count(client, dataset_id) == 3
    refused = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"score": 1}], "upsert_on": "score"})
    assert refused.status == 400 and refused.json()["error"]["code"] == "invalid_body"
    # a row without the upsert column refuses the whole request before the schema grows
    missing = client.post(
        f"/datasets/{dataset_id}/rows", {"rows": [{"email": "a@x.io"}, {"extra": "x"}], "upsert_on": "email"}
    )
    assert missing.status == 400 and missing.json()["error"]["code"] == "invalid_body"
    columns = client.get(f"/datasets/{dataset_id}").json()["data"]["columns"]
    assert [c["name"] for c in columns] == ["email", "score"] and _count(client, dataset_id) == 3


def test_an_index_added_to_a_dataset_with_rows_serves_the_same_answers(client: Client) -> None:
    dataset_id = _dataset(client)
    client.post(
        f"/datasets/{dataset_id}/rows", [{"email": f"U{i % 7}@x.io", "score": i % 5} for i in range(60)]
    )
    queries = [[("email", "eq.U3@x.io")], [("score", "gte.3"), ("order", "score.desc")], [("order", "email")]]
    before = [[row["id"] for row in _all(client, dataset_id, *query)] for query in queries]
    added = client.patch(f"/datasets/{dataset_id}", {"indexes": {"add": ["email", "score"]}})
    assert added.status == 200, added.body
    for _ in range(20):  # the backfill may queue its own continuation
        tasks = queued_maintenance()
        if not tasks:
            break
        for task in tasks:
            maintenance.run_task(task)
    columns = client.get(f"/datasets/{dataset_id}").json()["data"]["columns"]
    assert {c["name"]: c.get("index_status") for c in columns} == {"email": "ready", "score": "ready"}
    plans = set()
    for query, expected in zip(queries, before, strict=True):
        response = client.get(f"/datasets/{dataset_id}/rows", params=[("limit", "1000"), *query])
        plans.add(response.json()["meta"]["plan"])
        assert [row["id"] for row in response.json()["data"]["rows"]] == expected, query
    assert plans == {"index:email", "index:score"}
