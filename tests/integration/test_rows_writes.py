"""Row writes and keyset paging as users rely on them (SPEC §4–§6), through the real handlers.

Writes: the three POST body shapes, exact ``row_count`` after every kind of write, single-row
GET/PATCH/PUT/DELETE, bulk PATCH/DELETE touching exactly the matching rows, Idempotency-Key
replays and conflicts, the audit trail, ``upsert_on``. Paging: walking a result with
``cursor`` yields exactly the rows of one big page, on index and scan plans; cursors are
bound to their dataset and query. An index added to a dataset with rows is backfilled and
then serves the same answers.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from datasets_core.store import datasets as dataset_store
from datasets_core.store import workspaces

from .conftest import Client, run_maintenance

UUID_NOT_IN_DATASET = "00000000-0000-4000-8000-00000000abcd"


# --- helpers -----------------------------------------------------------------------------------
def _dataset(
    client: Client, name: str, columns: list[dict[str, Any]] | None = None, expected_rows: int | None = None
) -> str:
    body: dict[str, Any] = {"name": name}
    if columns is not None:
        body["columns"] = columns
    if expected_rows is not None:
        body["expected_rows"] = expected_rows
    created = client.post("/datasets", body)
    assert created.status == 201, created.body
    return str(created.json()["data"]["id"])


def _meta(client: Client, dataset_id: str) -> dict[str, Any]:
    response = client.get(f"/datasets/{dataset_id}")
    assert response.status == 200, response.body
    data: dict[str, Any] = response.json()["data"]
    return data


def _count(client: Client, dataset_id: str) -> int:
    return int(_meta(client, dataset_id)["row_count"])


def _insert(client: Client, dataset_id: str, body: Any, **kw: Any) -> dict[str, Any]:
    response = client.post(f"/datasets/{dataset_id}/rows", body, **kw)
    assert response.status == 201, response.body
    data: dict[str, Any] = response.json()["data"]
    return data


def _rows(client: Client, dataset_id: str, *params: tuple[str, str]) -> list[dict[str, Any]]:
    response = client.get(f"/datasets/{dataset_id}/rows", params=[("limit", "1000"), *params])
    assert response.status == 200, response.body
    rows: list[dict[str, Any]] = response.json()["data"]["rows"]
    return rows


def _trail(client: Client, dataset_id: str, row_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/datasets/{dataset_id}/rows/{row_id}/changes")
    assert response.status == 200, response.body
    entries: list[dict[str, Any]] = response.json()["data"]
    return entries


def _error(response: Any) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def _run_maintenance() -> int:
    return len(run_maintenance())


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False


# --- POST rows ---------------------------------------------------------------------------------
def test_post_object_array_and_rows_wrapper_with_exact_counts_and_schema_growth(client: Client) -> None:
    dataset_id = _dataset(client, "shapes")  # no declared columns: the data defines them
    single = _insert(client, dataset_id, {"name": "Ada", "age": 36})
    assert single["inserted"] == 1 and len(single["rows"]) == 1
    assert _count(client, dataset_id) == 1
    array = _insert(client, dataset_id, [{"name": "Bob", "age": 41}, {"name": "Cy", "age": 7.5}])
    assert array["inserted"] == 2 and _count(client, dataset_id) == 3
    wrapped = _insert(client, dataset_id, {"rows": [{"name": "Di", "vip": True}, {"age": None}]})
    assert wrapped["inserted"] == 2 and _count(client, dataset_id) == 5

    returned = single["rows"] + array["rows"] + wrapped["rows"]
    assert [row["row_index"] for row in returned] == [0, 1, 2, 3, 4]
    for row in returned:
        assert _is_uuid(row["id"]), row
        assert row["created_at"] and row["created_at"] == row["updated_at"]
        assert list(row)[:4] == ["id", "row_index", "created_at", "updated_at"]
    assert len({row["id"] for row in returned}) == 5
    assert returned[0]["name"] == "Ada" and returned[0]["age"] == 36
    assert returned[2]["age"] == 7.5
    assert returned[3]["vip"] is True and returned[4]["name"] is None

    meta = _meta(client, dataset_id)
    assert [(c["name"], c["type"]) for c in meta["columns"]] == [
        ("name", "string"),
        ("age", "number"),
        ("vip", "boolean"),
    ]
    # Later values must fit the inferred type; the request is refused as a whole.
    bad = client.post(f"/datasets/{dataset_id}/rows", [{"age": 1}, {"age": "abc"}])
    assert bad.status == 400 and _error(bad)["code"] == "invalid_body"
    assert _error(bad)["details"]["row"] == 1 and _error(bad)["details"]["column"] == "age"
    assert _count(client, dataset_id) == 5

    # A new field grows the schema (appended), and older rows read it as null.
    grown = _insert(client, dataset_id, {"name": "Eve", "team": "red", "joined": "2024-02-29"})
    assert grown["rows"][0]["row_index"] == 5
    names = [c["name"] for c in _meta(client, dataset_id)["columns"]]
    assert names == ["name", "age", "vip", "team", "joined"]
    listed = _rows(client, dataset_id)
    assert [row["row_index"] for row in listed] == [0, 1, 2, 3, 4, 5]
    assert listed[0]["team"] is None and listed[5]["team"] == "red"
    response = client.get(f"/datasets/{dataset_id}/rows")
    assert response.json()["data"]["total"] == 6
    assert response.json()["data"]["columns"] == names
    assert _count(client, dataset_id) == 6
    # Listing shows the same count as the dataset itself.
    listed_meta = [d for d in client.get("/datasets").json()["data"] if d["id"] == dataset_id]
    assert listed_meta[0]["row_count"] == 6


def test_row_index_keeps_increasing_after_deletes(client: Client) -> None:
    dataset_id = _dataset(client, "indexes")
    first = _insert(client, dataset_id, [{"n": i} for i in range(3)])["rows"]
    client.delete(f"/datasets/{dataset_id}/rows/{first[2]['id']}")
    later = _insert(client, dataset_id, {"n": 3})["rows"][0]
    assert later["row_index"] == 3  # never reused
    assert [row["row_index"] for row in _rows(client, dataset_id)] == [0, 1, 3]
    assert _count(client, dataset_id) == 3


def test_metadata_fields_cannot_be_written_on_insert(client: Client) -> None:
    dataset_id = _dataset(client, "meta")
    for field in ("id", "row_index", "created_at", "updated_at"):
        response = client.post(f"/datasets/{dataset_id}/rows", [{"a": 1}, {"a": 2, field: "x"}])
        assert response.status == 400 and _error(response)["code"] == "invalid_body", field
    assert _count(client, dataset_id) == 0
    assert _meta(client, dataset_id)["columns"] == []


# --- single rows -------------------------------------------------------------------------------
def test_single_row_get_patch_put_delete(client: Client) -> None:
    dataset_id = _dataset(client, "single")
    rows = _insert(client, dataset_id, [{"name": "Ada", "age": 36, "city": "Paris"}, {"name": "Bob"}])["rows"]
    row = rows[0]
    path = f"/datasets/{dataset_id}/rows/{row['id']}"
    assert client.get(path).json()["data"] == row
    assert client.get(f"/datasets/{dataset_id}/rows/{row['id'].upper()}").json()["data"] == row

    patched = client.patch(path, {"set": {"age": 37, "note": "moved"}})
    assert patched.status == 200, patched.body
    after_patch = patched.json()["data"]
    assert after_patch["name"] == "Ada" and after_patch["city"] == "Paris"  # merged
    assert after_patch["age"] == 37 and after_patch["note"] == "moved"
    assert after_patch["created_at"] == row["created_at"]
    assert after_patch["updated_at"] > row["updated_at"]
    assert after_patch["id"] == row["id"] and after_patch["row_index"] == row["row_index"]
    assert client.get(path).json()["data"] == after_patch

    replaced = client.put(path, {"name": "Ada L.", "row_index": row["row_index"]})
    assert replaced.status == 200, replaced.body
    after_put = replaced.json()["data"]
    assert after_put["name"] == "Ada L."
    assert after_put["age"] is None and after_put["city"] is None and after_put["note"] is None
    assert after_put["created_at"] == row["created_at"]
    assert after_put["updated_at"] > after_patch["updated_at"]
    assert client.get(path).json()["data"] == after_put
    assert _count(client, dataset_id) == 2  # rewrites do not count rows

    # Changing an immutable field is refused and changes nothing.
    for body in ({"set": {"id": rows[1]["id"]}}, {"set": {"row_index": 5}}, {"set": {"created_at": "x"}}):
        refused = client.patch(path, body)
        assert refused.status == 400 and _error(refused)["code"] == "invalid_body", body
    assert client.get(path).json()["data"] == after_put

    deleted = client.delete(path)
    assert deleted.status == 200 and deleted.json()["data"] == {"deleted": True, "id": row["id"]}
    assert _count(client, dataset_id) == 1
    for response in (
        client.get(path),
        client.delete(path),
        client.patch(path, {"set": {"age": 1}}),
        client.put(path, {"name": "zombie"}),
    ):
        assert response.status == 404 and _error(response)["code"] == "row_not_found"
    assert _count(client, dataset_id) == 1  # the second delete did not count again
    assert [r["id"] for r in _rows(client, dataset_id)] == [rows[1]["id"]]

    # A malformed row id, and a well-formed id that is not in the dataset.
    bad = client.get(f"/datasets/{dataset_id}/rows/not-a-uuid")
    assert bad.status == 400 and _error(bad)["code"] == "invalid_row_id"
    missing = client.delete(f"/datasets/{dataset_id}/rows/{UUID_NOT_IN_DATASET}")
    assert missing.status == 404 and _error(missing)["code"] == "row_not_found"
    assert _count(client, dataset_id) == 1


def test_a_row_id_of_another_dataset_is_not_found(client: Client) -> None:
    one = _dataset(client, "one")
    two = _dataset(client, "two")
    row_one = _insert(client, one, {"a": 1})["rows"][0]
    _insert(client, two, {"a": 2})  # same row_index 0 in the other dataset
    for response in (
        client.get(f"/datasets/{two}/rows/{row_one['id']}"),
        client.patch(f"/datasets/{two}/rows/{row_one['id']}", {"set": {"a": 5}}),
        client.delete(f"/datasets/{two}/rows/{row_one['id']}"),
    ):
        assert response.status == 404 and _error(response)["code"] == "row_not_found"
    deleted = client.delete(f"/datasets/{two}/rows", {"row_ids": [row_one["id"]]})
    assert deleted.json()["data"] == {"deleted": 0}
    assert _count(client, one) == 1 and _count(client, two) == 1
    assert [r["a"] for r in _rows(client, two)] == [2]


# --- bulk writes -------------------------------------------------------------------------------
@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "indexed"])
def test_bulk_patch_touches_exactly_the_matching_rows(client: Client, indexed: bool) -> None:
    dataset_id = _dataset(
        client,
        "bulk",
        [
            {"name": "team", "type": "string", "indexed": indexed},
            {"name": "score", "type": "number", "indexed": indexed},
        ],
    )
    teams = ["red", "blue", None, "Red"]
    created = _insert(client, dataset_id, [{"team": teams[i % 4], "score": i} for i in range(20)])["rows"]
    before = {row["id"]: row for row in created}

    response = client.patch(
        f"/datasets/{dataset_id}/rows", {"where": {"team": "red", "score": {"gte": 4}}, "set": {"score": -1}}
    )
    assert response.status == 200, response.body
    touched = {row["id"] for row in created if row["team"] == "red" and row["score"] >= 4}
    assert response.json()["data"] == {"updated": len(touched)} and len(touched) == 4
    after = {row["id"]: row for row in _rows(client, dataset_id)}
    for row_id, row in after.items():
        if row_id in touched:
            assert row["score"] == -1 and row["updated_at"] > before[row_id]["updated_at"]
            assert [e["op"] for e in _trail(client, dataset_id, row_id)] == ["update", "insert"]
        else:
            assert row == before[row_id], row_id  # untouched, updated_at included
    assert _count(client, dataset_id) == 20

    # `null` in where means "is null"; the new value is found through the index too.
    nulls = client.patch(f"/datasets/{dataset_id}/rows", {"where": {"team": None}, "set": {"team": "grey"}})
    assert nulls.json()["data"] == {"updated": 5}
    assert len(_rows(client, dataset_id, ("team", "eq.grey"))) == 5
    assert _rows(client, dataset_id, ("team", "is.null")) == []
    ranged = client.patch(
        f"/datasets/{dataset_id}/rows", {"where": {"score": {"gt": 10, "lte": 15}}, "set": {"flag": True}}
    )
    assert ranged.json()["data"] == {"updated": 4}  # 11..15 but 12, which is now -1
    assert sorted(r["score"] for r in _rows(client, dataset_id, ("flag", "is.true"))) == [11, 13, 14, 15]
    none = client.patch(f"/datasets/{dataset_id}/rows", {"where": {"team": "nobody"}, "set": {"score": 0}})
    assert none.json()["data"] == {"updated": 0}
    every = client.patch(f"/datasets/{dataset_id}/rows", {"set": {"note": "all"}})
    assert every.json()["data"] == {"updated": 20}
    assert {row["note"] for row in _rows(client, dataset_id)} == {"all"}
    assert _count(client, dataset_id) == 20
    for body in ({"where": {"team": "red"}}, {"set": {}}, {"where": "team = 'red'", "set": {"a": 1}}):
        refused = client.patch(f"/datasets/{dataset_id}/rows", body)
        assert refused.status == 400 and _error(refused)["code"] == "invalid_body", body


@pytest.mark.parametrize("indexed", [False, True], ids=["scan", "indexed"])
def test_bulk_delete_by_ids_and_by_where(client: Client, indexed: bool) -> None:
    dataset_id = _dataset(
        client,
        "bulk delete",
        [{"name": "kind", "type": "string", "indexed": indexed}, {"name": "n", "type": "number"}],
    )
    created = _insert(client, dataset_id, [{"kind": "ab"[i % 2], "n": i} for i in range(12)])["rows"]
    ids = [row["id"] for row in created]

    # Duplicates (also in another case) and ids not in the dataset are not counted.
    by_ids = client.delete(
        f"/datasets/{dataset_id}/rows",
        {"row_ids": [ids[0], ids[1], ids[0], ids[1].upper(), UUID_NOT_IN_DATASET]},
    )
    assert by_ids.status == 200, by_ids.body
    assert by_ids.json()["data"] == {"deleted": 2}
    assert _count(client, dataset_id) == 10
    again = client.delete(f"/datasets/{dataset_id}/rows", {"row_ids": [ids[0], ids[2]]})
    assert again.json()["data"] == {"deleted": 1}
    assert _count(client, dataset_id) == 9

    by_where = client.delete(f"/datasets/{dataset_id}/rows", {"where": {"kind": "a", "n": {"lt": 8}}})
    assert by_where.json()["data"] == {"deleted": 2}  # n = 4 and 6 (0 and 2 are already gone)
    remaining = _rows(client, dataset_id)
    assert [row["n"] for row in remaining] == [3, 5, 7, 8, 9, 10, 11]
    assert _count(client, dataset_id) == 7
    assert client.get(f"/datasets/{dataset_id}/rows").json()["data"]["total"] == 7
    for row in created:
        if row["n"] in (0, 2, 4, 6, 1):
            trail = _trail(client, dataset_id, row["id"])
            assert [e["op"] for e in trail] == ["delete", "insert"], row["n"]
    for body in ({"where": {}}, {}, {"row_ids": "x"}, {"row_ids": [ids[3]], "where": {"n": 3}}):
        refused = client.delete(f"/datasets/{dataset_id}/rows", body)
        assert refused.status == 400, body
    bad_id = client.delete(f"/datasets/{dataset_id}/rows", {"row_ids": ["nope"]})
    assert bad_id.status == 400 and _error(bad_id)["code"] == "invalid_row_id"
    assert _count(client, dataset_id) == 7


# --- idempotency -------------------------------------------------------------------------------
def test_idempotency_key_replays_the_first_response_and_writes_nothing(client: Client) -> None:
    dataset_id = _dataset(client, "idem")
    headers = {"Idempotency-Key": "batch-0001"}
    first = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"a": 1}, {"a": 2}]}, headers=headers)
    assert first.status == 201, first.body
    replay = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"a": 1}, {"a": 2}]}, headers=headers)
    assert replay.status == 201 and replay.json() == first.json()
    assert _count(client, dataset_id) == 2 and len(_rows(client, dataset_id)) == 2

    conflict = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"a": 3}]}, headers=headers)
    assert conflict.status == 409 and _error(conflict)["code"] == "conflict"
    assert _count(client, dataset_id) == 2

    # Single-row writes: a replayed PATCH does not write again (updated_at, trail unchanged),
    # a replayed DELETE answers as the first time and counts the row once.
    row = first.json()["data"]["rows"][0]
    path = f"/datasets/{dataset_id}/rows/{row['id']}"
    patch_headers = {"Idempotency-Key": "patch-1"}
    patched = client.patch(path, {"set": {"a": 10}}, headers=patch_headers)
    assert patched.status == 200
    client.patch(path, {"set": {"a": 11}})  # another change in between
    replayed = client.patch(path, {"set": {"a": 10}}, headers=patch_headers)
    assert replayed.status == 200 and replayed.json() == patched.json()
    assert client.get(path).json()["data"]["a"] == 11  # the replay did not write 10 again
    assert [e["op"] for e in _trail(client, dataset_id, row["id"])] == ["update", "update", "insert"]
    other = client.patch(path, {"set": {"a": 12}}, headers=patch_headers)
    assert other.status == 409 and _error(other)["code"] == "conflict"

    put_headers = {"Idempotency-Key": "put-1"}
    assert client.put(path, {"a": 20}, headers=put_headers).status == 200
    assert client.put(path, {"a": 21}, headers=put_headers).status == 409

    delete_headers = {"Idempotency-Key": "delete-1"}
    gone = client.delete(path, headers=delete_headers)
    assert gone.status == 200
    again = client.delete(path, headers=delete_headers)
    assert again.status == 200 and again.json() == gone.json()
    assert _count(client, dataset_id) == 1

    # Bulk writes, too.
    _insert(client, dataset_id, [{"a": 5}, {"a": 5}, {"a": 6}])
    bulk_headers = {"Idempotency-Key": "bulk-delete-1"}
    bulk = client.delete(f"/datasets/{dataset_id}/rows", {"where": {"a": 5}}, headers=bulk_headers)
    assert bulk.json()["data"] == {"deleted": 2}
    _insert(client, dataset_id, {"a": 5})
    bulk_again = client.delete(f"/datasets/{dataset_id}/rows", {"where": {"a": 5}}, headers=bulk_headers)
    assert bulk_again.json() == bulk.json()
    assert _count(client, dataset_id) == 3  # the new a=5 row survived the replay
    assert [r["a"] for r in _rows(client, dataset_id)] == [2, 6, 5]


def test_idempotency_key_is_per_endpoint_and_a_failed_request_is_not_remembered(client: Client) -> None:
    one = _dataset(client, "idem one")
    two = _dataset(client, "idem two")
    headers = {"Idempotency-Key": "shared-key"}
    assert client.post(f"/datasets/{one}/rows", {"a": 1}, headers=headers).status == 201
    assert client.post(f"/datasets/{two}/rows", {"a": 1}, headers=headers).status == 201
    assert _count(client, one) == 1 and _count(client, two) == 1

    _insert(client, two, {"a": 2})
    retry_headers = {"Idempotency-Key": "retry-me"}
    failed = client.post(f"/datasets/{two}/rows", [{"a": "text"}], headers=retry_headers)
    assert failed.status == 400
    fixed = client.post(f"/datasets/{two}/rows", [{"a": 3}], headers=retry_headers)
    assert fixed.status == 201, fixed.body
    assert _count(client, two) == 3


# --- audit trail -------------------------------------------------------------------------------
def test_changes_record_who_when_and_what_newest_first(client: Client) -> None:
    dataset_id = _dataset(client, "audit")
    writer = client.post("/keys", {"name": "writer", "scopes": ["datasets:read", "datasets:write"]})
    assert writer.status == 201, writer.body
    writer_key = writer.json()["data"]
    admin_keys = [k for k in client.get("/keys").json()["data"] if k["id"] != writer_key["id"]]
    assert len(admin_keys) == 1
    admin_id = admin_keys[0]["id"]

    inserted = _insert(client, dataset_id, {"name": "Ada", "age": 36})["rows"][0]
    path = f"/datasets/{dataset_id}/rows/{inserted['id']}"
    patched = client.patch(path, {"set": {"age": 37}}, key=writer_key["key"]).json()["data"]
    unchanged = client.patch(path, {"set": {"age": 37, "name": "Ada"}}).json()["data"]
    replaced = client.put(path, {"name": "Ada L.", "city": "Paris"}).json()["data"]
    client.patch(f"/datasets/{dataset_id}/rows", {"where": {"city": "Paris"}, "set": {"city": "Lyon"}})
    assert client.delete(path, key=writer_key["key"]).status == 200

    response = client.get(f"{path}/changes")
    assert response.status == 200, response.body
    entries = response.json()["data"]
    assert response.json()["meta"]["total"] == len(entries) == 6
    assert [e["op"] for e in entries][::-1][0] == "insert" and entries[0]["op"] == "delete"
    oldest_first = entries[::-1]
    insert, patch, noop, put, bulk, delete = oldest_first
    assert [set(e) for e in entries] == [{"at", "op", "key_id", "changes"}] * 6
    ats = [e["at"] for e in oldest_first]
    assert ats == sorted(ats)  # newest first means at descending
    assert insert["at"] == inserted["created_at"] and patch["at"] == patched["updated_at"]
    assert noop["at"] == unchanged["updated_at"] and put["at"] == replaced["updated_at"]
    assert insert["key_id"] == admin_id and patch["key_id"] == writer_key["id"]
    assert delete["key_id"] == writer_key["id"] and bulk["key_id"] == admin_id
    assert insert["changes"] == {"age": {"old": None, "new": 36}, "name": {"old": None, "new": "Ada"}}
    assert patch["op"] == "update" and patch["changes"] == {"age": {"old": 36, "new": 37}}
    assert noop["changes"] == {}
    assert put["op"] in ("replace", "update")
    assert put["changes"] == {
        "age": {"old": 37, "new": None},
        "city": {"old": None, "new": "Paris"},
        "name": {"old": "Ada", "new": "Ada L."},
    }
    assert bulk["op"] == "update" and bulk["changes"] == {"city": {"old": "Paris", "new": "Lyon"}}
    assert delete["changes"] == {
        "city": {"old": "Lyon", "new": None},
        "name": {"old": "Ada L.", "new": None},
    }

    paged = client.get(f"{path}/changes", params={"limit": 2, "offset": 1}).json()
    assert paged["data"] == entries[1:3] and paged["meta"] == {"total": 6, "limit": 2, "offset": 1}
    never = client.get(f"/datasets/{dataset_id}/rows/{UUID_NOT_IN_DATASET}/changes")
    assert never.status == 404 and _error(never)["code"] == "row_not_found"


# --- upsert ------------------------------------------------------------------------------------
def test_upsert_on_an_indexed_column(client: Client) -> None:
    dataset_id = _dataset(
        client,
        "upsert",
        [{"name": "email", "type": "string", "indexed": True}, {"name": "score", "type": "number"}],
    )
    seeded = _insert(
        client,
        dataset_id,
        [
            {"email": "a@x.io", "score": 1},
            {"email": "b@x.io", "score": 2},
            {"email": "dup@x.io", "score": 3},
            {"email": "dup@x.io", "score": 4},
        ],
    )["rows"]
    response = client.post(
        f"/datasets/{dataset_id}/rows",
        {
            "rows": [
                {"email": "b@x.io", "score": 20, "team": "red"},
                {"email": "new@x.io", "score": 5},
                {"email": "dup@x.io", "score": 30},
                {"email": "B@X.IO", "score": 6},  # eq is exact: another value
                {"email": "new@x.io", "team": "blue"},  # merges with the row above
            ],
            "upsert_on": "email",
        },
    )
    assert response.status == 201, response.body
    data = response.json()["data"]
    assert (data["inserted"], data["updated"]) == (2, 3)
    by_email: dict[str, list[dict[str, Any]]] = {}
    for row in data["rows"]:
        by_email.setdefault(row["email"], []).append(row)
    assert by_email["b@x.io"][0]["id"] == seeded[1]["id"]
    assert (by_email["b@x.io"][0]["score"], by_email["b@x.io"][0]["team"]) == (20, "red")
    assert {row["id"] for row in by_email["dup@x.io"]} == {seeded[2]["id"], seeded[3]["id"]}
    assert (by_email["new@x.io"][0]["score"], by_email["new@x.io"][0]["team"]) == (5, "blue")
    assert _count(client, dataset_id) == 6

    rows = _rows(client, dataset_id)
    assert [(r["email"], r["score"], r["team"]) for r in rows] == [
        ("a@x.io", 1, None),
        ("b@x.io", 20, "red"),
        ("dup@x.io", 30, None),
        ("dup@x.io", 30, None),
        ("new@x.io", 5, "blue"),
        ("B@X.IO", 6, None),
    ]
    assert (
        rows[1]["created_at"] == seeded[1]["created_at"] and rows[1]["updated_at"] > seeded[1]["updated_at"]
    )
    assert [e["op"] for e in _trail(client, dataset_id, seeded[1]["id"])] == ["update", "insert"]
    # The index answers the updated values.
    assert [r["score"] for r in _rows(client, dataset_id, ("email", "eq.dup@x.io"))] == [30, 30]

    # Upserting the same rows again updates, inserts nothing.
    again = client.post(
        f"/datasets/{dataset_id}/rows", {"rows": [{"email": "a@x.io", "score": 1}], "upsert_on": "email"}
    )
    assert (again.json()["data"]["inserted"], again.json()["data"]["updated"]) == (0, 1)
    assert _count(client, dataset_id) == 6


def test_upsert_on_a_column_that_is_not_indexed_is_refused_and_writes_nothing(client: Client) -> None:
    dataset_id = _dataset(
        client,
        "upsert refused",
        [{"name": "email", "type": "string", "indexed": True}, {"name": "score", "type": "number"}],
    )
    _insert(client, dataset_id, {"email": "a@x.io", "score": 1})
    for column in ("score", "nope"):
        refused = client.post(
            f"/datasets/{dataset_id}/rows",
            {"rows": [{"email": "a@x.io", "score": 2, "extra": "x"}], "upsert_on": column},
        )
        assert refused.status == 400 and _error(refused)["code"] == "invalid_body", column
        assert column in _error(refused)["message"]
    # A row without the upsert column is refused as a whole, before anything changes.
    missing = client.post(
        f"/datasets/{dataset_id}/rows",
        {"rows": [{"email": "a@x.io", "score": 9}, {"score": 3, "extra": "x"}], "upsert_on": "email"},
    )
    assert missing.status == 400 and _error(missing)["code"] == "invalid_body"
    assert [(r["email"], r["score"]) for r in _rows(client, dataset_id)] == [("a@x.io", 1)]
    assert [c["name"] for c in _meta(client, dataset_id)["columns"]] == ["email", "score"]
    assert _count(client, dataset_id) == 1


def test_upsert_over_the_plan_row_limit_changes_nothing(client: Client) -> None:
    dataset_id = _dataset(client, "upsert plan", [{"name": "email", "type": "string", "indexed": True}])
    _insert(client, dataset_id, [{"email": "a@x.io", "n": 1}, {"email": "b@x.io", "n": 1}])
    workspaces.set_plan("default", max_rows=2)
    response = client.post(
        f"/datasets/{dataset_id}/rows",
        {"rows": [{"email": "a@x.io", "n": 2}, {"email": "c@x.io", "n": 2}], "upsert_on": "email"},
    )
    assert response.status == 403 and _error(response)["code"] == "plan_limit_exceeded"
    assert [(r["email"], r["n"]) for r in _rows(client, dataset_id)] == [("a@x.io", 1), ("b@x.io", 1)]
    assert _count(client, dataset_id) == 2
    # Updates alone fit the plan.
    fits = client.post(
        f"/datasets/{dataset_id}/rows", {"rows": [{"email": "a@x.io", "n": 3}], "upsert_on": "email"}
    )
    assert fits.status == 201, fits.body
    assert [r["n"] for r in _rows(client, dataset_id)] == [3, 1]


# --- cursor pagination -------------------------------------------------------------------------
NAMES = ["alice", "Alice", "ALICE", "bob", "Bob", "Émile", "emile", "zoë", "Zoe", "al", "", None, None]
CITIES = ["Paris", "paris", "Lyon", "lyon", "Nice", None]
AMOUNTS = [None, None, -5, -0.5, 0, 0.25, 1, 1.0, 2, 2.5, 10, 99.99, 1e6, 12345678901234567890]


def _cursor_rows(count: int) -> list[dict[str, Any]]:
    rng = random.Random(20240501)
    base = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for _ in range(count):
        row: dict[str, Any] = {
            "name": rng.choice(NAMES),
            "city": rng.choice(CITIES),
            "amount": rng.choice(AMOUNTS),
            "day": rng.choice([None, "2024-01-01", "2024-02-29", "2023-12-31", "1999-07-04"]),
            "at": rng.choice(
                [
                    None,
                    *((base + timedelta(hours=rng.randint(0, 5), seconds=0.5)).isoformat() for _ in range(3)),
                ]
            ),
            "flag": rng.choice([True, False, None]),
        }
        if rng.random() < 0.1:
            del row["city"]  # missing counts as null
        rows.append(row)
    return rows


CURSOR_COLUMNS = [
    ("name", "string"),
    ("city", "string"),
    ("amount", "number"),
    ("day", "date"),
    ("at", "datetime"),
    ("flag", "boolean"),
]

# Each query's plan on the indexed dataset is noted; the scan dataset always scans.
CURSOR_QUERIES: list[list[tuple[str, str]]] = [
    [("order", "row_index.desc")],  # scan, shards merged in row order
    [("order", "name")],  # index:name, mixed case and ties
    [("order", "name.desc")],  # index:name, nulls first
    [("order", "amount.desc.nullslast")],  # index:amount
    [("city", "eq.Paris")],  # index:city, pinned value in row order
    [("city", "in.(Paris,lyon,Nice)"), ("order", "city.desc")],  # index:city, several groups
    [("amount", "gte.0"), ("amount", "lt.100"), ("order", "amount")],  # index:amount, a range
    [("name", "starts_with.AL"), ("order", "name.desc.nullsfirst")],  # index:name
    [("flag", "is.true"), ("order", "name.desc")],  # index:flag, ordered in memory
    [("city", "not.is.null"), ("amount", "lte.10"), ("order", "name.desc,day")],  # index:city
    [("order", "city.desc.nullsfirst,flag,amount.asc.nullsfirst")],  # scan, three columns
    [("select", "name,amount,row_index"), ("search", "LI"), ("order", "amount.desc,name")],  # scan
]
PAGE = 60  # ~5 pages over the 300 rows
SCAN_PAGE = 100  # a scan page reads every row: fewer, larger pages keep the test fast


def _get(client: Client, dataset_id: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    response = client.get(f"/datasets/{dataset_id}/rows", params=params)
    assert response.status == 200, (params, response.body)
    body: dict[str, Any] = response.json()
    return body


def _walk(
    client: Client, dataset_id: str, query: list[tuple[str, str]], limit: int, count: bool = False
) -> tuple[list[int], set[str]]:
    """Row indexes of every page of ``query`` followed by ``next_cursor`` until it is null."""
    seen: list[int] = []
    plans: set[str] = set()
    cursor: str | None = None
    totals: set[Any] = set()
    extra = [] if count else [("count", "none")]
    for _ in range(400):
        params = [*query, *extra, ("limit", str(limit))] + ([("cursor", cursor)] if cursor else [])
        body = _get(client, dataset_id, params)
        rows = body["data"]["rows"]
        seen += [row["row_index"] for row in rows]
        plans.add(body["meta"]["plan"])
        totals.add(body["data"]["total"])
        assert len(rows) <= limit
        cursor = body["meta"].get("next_cursor")
        if not cursor:
            assert len(totals) == 1, totals  # every page reports the same total
            return seen, plans
        assert len(rows) == limit, (query, "a page before the last is full")
    raise AssertionError(f"the walk of {query} did not end")


def _paged_dataset(client: Client, name: str, rows: list[dict[str, Any]], indexed: set[str]) -> str:
    dataset_id = _dataset(
        client,
        name,
        [{"name": n, "type": t, "indexed": n in indexed} for n, t in CURSOR_COLUMNS],
        expected_rows=300_000,  # three shards: every page merges several shard streams
    )
    assert _insert(client, dataset_id, {"rows": rows})["inserted"] == len(rows)
    return dataset_id


def _sort_reference(rows: list[dict[str, Any]], column: str, descending: bool) -> list[int]:
    """Independent expectation for a one-column order (SPEC §5): text case-insensitively then
    exactly, nulls last ascending and first descending, ties by row_index ascending."""

    def value_key(value: Any) -> Any:
        return (value.casefold(), value) if isinstance(value, str) else value

    present = [(i, r.get(column)) for i, r in enumerate(rows) if r.get(column) is not None]
    nulls = [i for i, r in enumerate(rows) if r.get(column) is None]
    # Stable sort: with reverse=True too, equal values keep row_index ascending.
    present.sort(key=lambda pair: value_key(pair[1]), reverse=descending)
    ordered = [i for i, _ in present]
    return nulls + ordered if descending else ordered + nulls


def test_cursor_walks_equal_one_big_page_on_index_and_scan_plans(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Following next_cursor until it is null yields exactly the rows of
    the same query with a large limit, in the same order, whatever the plan."""
    rows = _cursor_rows(300)
    indexed_id = _paged_dataset(client, "paged indexed", rows, {"name", "city", "amount", "flag"})
    scan_id = _paged_dataset(client, "paged scan", rows, set())
    plans: set[str] = set()
    for number, query in enumerate(CURSOR_QUERIES):
        whole = _get(client, indexed_id, [*query, ("limit", "1000")])
        expected = [row["row_index"] for row in whole["data"]["rows"]]
        assert len(expected) > 8, (query, len(expected))
        assert whole["meta"].get("next_cursor") is None and whole["data"]["total"] == len(expected)
        if whole["meta"]["plan"] != "scan":  # the same answer without indexes
            scanned = _get(client, scan_id, [*query, ("limit", "1000")])
            assert scanned["meta"]["plan"] in ("scan", "replica")
            assert [row["row_index"] for row in scanned["data"]["rows"]] == expected, query
        page = PAGE if whole["meta"]["plan"] != "scan" or query[0][1] == "row_index.desc" else SCAN_PAGE
        page = min(page, len(expected) // 4)  # several pages, whatever the query matches
        walked, used = _walk(client, indexed_id, query, page, count=number % 4 == 0)
        assert walked == expected, query
        plans |= used | {whole["meta"]["plan"]}
    assert {"index:name", "index:city", "index:amount", "index:flag", "scan"} <= plans, plans
    # A scan-plan walk on the dataset without indexes, too.
    query = [("city", "in.(Paris,lyon)"), ("order", "amount.desc,name")]
    expected = [r["row_index"] for r in _rows(client, scan_id, *query)]
    assert _walk(client, scan_id, query, 25, count=True)[0] == expected

    # One-column orders agree with an independent sort.
    for column, descending in [("name", False), ("amount", True)]:
        order = f"{column}.desc" if descending else column
        got = [r["row_index"] for r in _rows(client, indexed_id, ("order", order))]
        assert got == _sort_reference(rows, column, descending), order


def test_a_cursor_over_long_values_sharing_a_key_prefix(client: Client) -> None:
    """Index keys cut long values; a cursor inside a group of cut keys must not skip rows."""
    dataset_id = _dataset(client, "long", [{"name": "text", "type": "string", "indexed": True}])
    scan_id = _dataset(client, "long scan")
    prefix = "x" * 1100
    rng = random.Random(3)
    suffixes = [f"{rng.randrange(100):02d}" for _ in range(20)]
    rows = [{"text": prefix + suffix} for suffix in suffixes] + [{"text": "a"}, {"text": "z"}, {"text": None}]
    for target in (dataset_id, scan_id):
        _insert(client, target, rows)
    for query in (
        [("order", "text")],
        [("order", "text.desc")],
        [("text", "gte." + prefix), ("order", "text")],
    ):
        expected = [r["row_index"] for r in _rows(client, scan_id, *query)]
        assert [r["row_index"] for r in _rows(client, dataset_id, *query)] == expected, query
        for limit in (3,):
            walked, plans = _walk(client, dataset_id, query, limit)
            assert walked == expected, (query, limit)
            assert plans == {"index:text"}


def test_a_cursor_is_bound_to_its_query_and_dataset_and_cannot_be_forged(
    client: Client,
) -> None:
    rows = _cursor_rows(60)
    indexed_id = _paged_dataset(client, "bound indexed", rows, {"city", "amount"})
    scan_id = _paged_dataset(client, "bound scan", rows, set())
    query = [("city", "eq.Paris"), ("order", "amount")]
    first = _get(client, indexed_id, [*query, ("limit", "5")])
    cursor = first["meta"]["next_cursor"]
    assert cursor
    # The same query may change its page size.
    assert (
        client.get(f"/datasets/{indexed_id}/rows", params=[*query, ("limit", "9"), ("cursor", cursor)]).status
        == 200
    )

    body, _, tag = cursor.partition(".")
    flipped = body[:-1] + ("A" if body[-1] != "A" else "B")
    attempts = {
        "other dataset": (scan_id, [*query, ("limit", "5"), ("cursor", cursor)]),
        "other filter value": (
            indexed_id,
            [("city", "eq.Lyon"), ("order", "amount"), ("limit", "5"), ("cursor", cursor)],
        ),
        "extra filter": (indexed_id, [*query, ("flag", "is.true"), ("limit", "5"), ("cursor", cursor)]),
        "other direction": (
            indexed_id,
            [("city", "eq.Paris"), ("order", "amount.desc"), ("limit", "5"), ("cursor", cursor)],
        ),
        "other select": (indexed_id, [*query, ("select", "name"), ("limit", "5"), ("cursor", cursor)]),
        "other search": (indexed_id, [*query, ("search", "a"), ("limit", "5"), ("cursor", cursor)]),
        "body changed": (indexed_id, [*query, ("limit", "5"), ("cursor", f"{flipped}.{tag}")]),
        "tag changed": (indexed_id, [*query, ("limit", "5"), ("cursor", f"{body}.{tag[::-1]}")]),
        "no tag": (indexed_id, [*query, ("limit", "5"), ("cursor", body)]),
        "garbage": (indexed_id, [*query, ("limit", "5"), ("cursor", "!!!")]),
        "with offset": (indexed_id, [*query, ("limit", "5"), ("offset", "5"), ("cursor", cursor)]),
    }
    for label, (dataset_id, params) in attempts.items():
        response = client.get(f"/datasets/{dataset_id}/rows", params=params)
        assert response.status == 400, (label, response.body)
        assert _error(response)["code"] == "invalid_query", label
        assert "cursor" in _error(response)["message"], label

    # A cursor of a deleted-and-recreated dataset (another id) does not carry over either.
    other = _dataset(client, "paged other")
    _insert(client, other, [{"city": "Paris", "amount": i} for i in range(10)])
    refused = client.get(f"/datasets/{other}/rows", params=[*query, ("limit", "5"), ("cursor", cursor)])
    assert refused.status == 400 and _error(refused)["code"] == "invalid_query"


def test_a_cursor_page_in_row_order_reads_about_its_size_and_counts_from_the_counter(
    client: Client,
) -> None:
    """SPEC §5–§6: a cursor page costs reads proportional to its size, not its depth, and the
    total of an unfiltered query comes from the counter on every page (not by reading rows)."""
    dataset_id = _dataset(client, "deep", expected_rows=800_000)
    _insert(client, dataset_id, [{"n": i} for i in range(200)])
    shards = dataset_store.get("default", dataset_id).shards
    assert shards == 8
    limit = 20
    for order, descending in (("row_index", False), ("row_index.desc", True)):
        seen: list[int] = []
        cursor: str | None = None
        while True:
            params = [("order", order), ("limit", str(limit))] + ([("cursor", cursor)] if cursor else [])
            body = _get(client, dataset_id, params)
            assert body["meta"]["plan"] == "scan"
            assert body["data"]["total"] == 200, (order, len(seen))
            # Each shard reads one page of about its share of the window (plus look-ahead).
            assert body["meta"]["items_read"] <= limit + 1 + 2 * shards, (order, body["meta"])
            seen += [row["row_index"] for row in body["data"]["rows"]]
            cursor = body["meta"]["next_cursor"]
            if not cursor:
                break
        assert seen == sorted(range(200), reverse=descending), order


# --- index added later -------------------------------------------------------------------------
def test_an_index_added_to_a_dataset_with_rows_is_backfilled_and_gives_the_same_answers(
    client: Client,
) -> None:
    dataset_id = _dataset(client, "late index")
    rows = _cursor_rows(100)
    _insert(client, dataset_id, {"rows": [{k: v for k, v in r.items() if k != "at"} for r in rows]})
    queries = [
        [("name", "eq.alice")],
        [("name", "in.(alice,Bob)"), ("order", "amount.desc")],
        [("amount", "gte.1"), ("order", "amount")],
        [("order", "name.desc")],
        [("city", "starts_with.p"), ("order", "city")],
        [("name", "is.null")],
    ]
    before = [[r["id"] for r in _rows(client, dataset_id, *q)] for q in queries]
    assert all(before)

    added = client.patch(f"/datasets/{dataset_id}", {"indexes": {"add": ["name", "amount", "city"]}})
    assert added.status == 200, added.body
    building = {c["name"]: c.get("index_status") for c in added.json()["data"]["columns"] if c["indexed"]}
    assert building == {"name": "building", "amount": "building", "city": "building"}
    # Rows written while the index builds are indexed too.
    late = _insert(client, dataset_id, {"name": "alice", "amount": 3, "city": "paris"})["rows"][0]
    before = [[r["id"] for r in _rows(client, dataset_id, *q)] for q in queries]
    # While the indexes build, the replica answers.
    assert {_get(client, dataset_id, [*q, ("limit", "1000")])["meta"]["plan"] for q in queries} == {"replica"}

    assert _run_maintenance() >= 1
    columns = {c["name"]: c for c in _meta(client, dataset_id)["columns"]}
    assert {n: columns[n].get("index_status") for n in ("name", "amount", "city")} == {
        "name": "ready",
        "amount": "ready",
        "city": "ready",
    }
    plans = set()
    for query, expected in zip(queries, before, strict=True):
        body = _get(client, dataset_id, [*query, ("limit", "1000")])
        plans.add(body["meta"]["plan"])
        assert [r["id"] for r in body["data"]["rows"]] == expected, query
        assert body["data"]["total"] == len(expected), query
        walked, _ = _walk(client, dataset_id, query, 30)
        assert walked == [r["row_index"] for r in body["data"]["rows"]], query
    assert {"index:name", "index:amount", "index:city"} <= plans, plans
    assert late["id"] in before[0]
    assert _count(client, dataset_id) == 101

    # Upsert on the newly ready index works.
    upserted = client.post(
        f"/datasets/{dataset_id}/rows", {"rows": [{"city": "Zürich", "amount": 1}], "upsert_on": "city"}
    )
    assert upserted.status == 201 and upserted.json()["data"]["inserted"] == 1
    assert _count(client, dataset_id) == 102


def test_a_null_for_a_column_no_row_has_is_no_change_on_every_update_path(client: Client) -> None:
    """Schemathesis found ``PATCH .../rows {"set": {"*Ô": null}}`` answering 500: a null makes no
    column, so the write named a column the dataset does not have. Each update path now takes
    such a null as what it is — nothing to change."""
    dataset_id = client.post("/datasets", {"name": "nulls"}).json()["data"]["id"]
    rows = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"a": 1}, {"a": 2}]}).json()["data"]["rows"]
    first = rows[0]["id"]
    for method, path, body in (
        ("PATCH", "/rows", {"set": {"*Ô": None}}),
        ("PATCH", "/rows", {"rows": [{"id": first, "zz": None}]}),
        ("PATCH", f"/rows/{first}", {"set": {"yy": None}}),
        ("PUT", f"/rows/{first}", {"a": 5, "ww": None}),
    ):
        answer = client.request(method, f"/datasets/{dataset_id}{path}", json_body=body)
        assert answer.status == 200, (method, path, answer.body)
    dataset = client.get(f"/datasets/{dataset_id}").json()["data"]
    assert [column["name"] for column in dataset["columns"]] == ["a"] and dataset["row_count"] == 2
