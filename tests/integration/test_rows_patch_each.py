"""``PATCH .../rows`` with ``{"rows": [{"id": ..., <fields>}]}``: each listed row gets its own
values, all or nothing (SPEC §5 extension).

Checked first (nothing written on any problem, the entry named), written row by row with
only the row's own fields; a failure part-way puts back what landed without undoing other
writers, with counters and the audit trail exact; concurrent writers never make a row be
skipped; ``Idempotency-Key`` replays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from datasets_core.config import settings
from datasets_core.logic import bulk_where
from datasets_core.store import rows as row_store

from .conftest import Client
from .stubbing import FailingCall

COLUMNS = [
    {"name": "name", "type": "string", "indexed": True},
    {"name": "amount", "type": "number", "indexed": True},
    {"name": "note", "type": "string"},
]
MISSING_ROW = "00000000-0000-8000-8000-000000000000"  # well-formed, no such row


def _dataset(client: Client, rows: int = 6) -> tuple[str, list[dict[str, Any]]]:
    created = client.post("/datasets", {"name": "each", "columns": COLUMNS})
    assert created.status == 201, created.body
    dataset_id = str(created.json()["data"]["id"])
    seed = [{"name": f"n{i}", "amount": i, "note": f"note {i}"} for i in range(rows)]
    inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": seed})
    assert inserted.status == 201, inserted.body
    return dataset_id, inserted.json()["data"]["rows"]


def _state(client: Client, dataset_id: str) -> dict[str, Any]:
    """Everything a request could have changed: rows (values and updated_at), the schema, the
    row count, each row's audit trail, and what the indexes serve."""
    detail = client.get(f"/datasets/{dataset_id}").json()["data"]
    rows = client.get(f"/datasets/{dataset_id}/rows", params={"limit": "1000"}).json()["data"]["rows"]
    trails = {
        row["id"]: client.get(f"/datasets/{dataset_id}/rows/{row['id']}/changes").json()["meta"]["total"]
        for row in rows
    }
    by_index = {
        column: [
            row["row_index"]
            for row in client.get(f"/datasets/{dataset_id}/rows", params={"order": f"{column}.desc"}).json()[
                "data"
            ]["rows"]
        ]
        for column in ("name", "amount")
    }
    return {
        "rows": rows,
        "columns": detail["columns"],
        "row_count": detail["row_count"],
        "trails": trails,
        "by_index": by_index,
    }


def _patch(client: Client, dataset_id: str, rows: list[dict[str, Any]], **kw: Any) -> Any:
    return client.patch(f"/datasets/{dataset_id}/rows", {"rows": rows}, **kw)


def _serial(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows written one after another, in request order: a test can then say which landed."""
    monkeypatch.setattr(bulk_where, "in_parallel", lambda work, targets: [work(t) for t in targets])


# --- success -----------------------------------------------------------------------------------
def test_each_row_gets_its_own_values(client: Client) -> None:
    dataset_id, rows = _dataset(client)
    before = _state(client, dataset_id)
    response = _patch(
        client,
        dataset_id,
        [
            {"id": rows[0]["id"], "amount": 100, "vip": True},
            {"id": rows[3]["id"], "name": "renamed", "note": None},
            {"id": rows[5]["id"], "amount": -1, "created_at": rows[5]["created_at"]},
        ],
    )
    assert response.status == 200, response.body
    data = response.json()["data"]
    assert data["updated"] == 3
    assert [row["id"] for row in data["rows"]] == [rows[0]["id"], rows[3]["id"], rows[5]["id"]]
    assert data["rows"][0]["amount"] == 100 and data["rows"][0]["vip"] is True
    assert data["rows"][1]["name"] == "renamed" and data["rows"][1]["note"] is None
    assert data["rows"][1]["amount"] == 3  # not sent: kept
    after = _state(client, dataset_id)
    stored = {row["id"]: row for row in after["rows"]}
    assert stored[rows[0]["id"]]["amount"] == 100 and stored[rows[0]["id"]]["vip"] is True
    assert stored[rows[1]["id"]] == {**before["rows"][1], "vip": None}  # not listed: untouched
    assert [c["name"] for c in after["columns"]] == ["name", "amount", "note", "vip"]
    assert after["row_count"] == before["row_count"] == 6
    # the indexes serve the new values
    assert after["by_index"]["amount"][0] == 0 and after["by_index"]["amount"][-1] == 5
    found = client.get(f"/datasets/{dataset_id}/rows", params={"name": "eq.renamed"}).json()
    assert [row["row_index"] for row in found["data"]["rows"]] == [3]
    assert found["meta"]["plan"] == "index:name"
    # one audit entry per changed row, with exactly what changed
    trail = client.get(f"/datasets/{dataset_id}/rows/{rows[3]['id']}/changes").json()["data"]
    assert trail[0]["op"] == "update"
    assert trail[0]["changes"] == {
        "name": {"old": "n3", "new": "renamed"},
        "note": {"old": "note 3", "new": None},
    }
    assert after["trails"] == {**before["trails"], rows[0]["id"]: 2, rows[3]["id"]: 2, rows[5]["id"]: 2}


def test_entries_naming_one_row_apply_in_order(client: Client) -> None:
    dataset_id, rows = _dataset(client)
    row_id = rows[2]["id"]
    response = _patch(
        client,
        dataset_id,
        [{"id": row_id, "amount": 1, "note": "first"}, {"id": row_id.upper(), "amount": 2}],
    )
    assert response.status == 200, response.body
    assert response.json()["data"]["updated"] == 1
    stored = client.get(f"/datasets/{dataset_id}/rows/{row_id}").json()["data"]
    assert (stored["amount"], stored["note"]) == (2, "first")


def test_a_retry_with_the_same_idempotency_key_writes_nothing_again(client: Client) -> None:
    dataset_id, rows = _dataset(client)
    body = [{"id": rows[0]["id"], "note": "once"}]
    headers = {"Idempotency-Key": "each-1"}
    first = _patch(client, dataset_id, body, headers=headers)
    assert first.status == 200, first.body
    client.patch(f"/datasets/{dataset_id}/rows/{rows[0]['id']}", {"set": {"note": "later"}})
    replay = _patch(client, dataset_id, body, headers=headers)
    assert (replay.status, replay.json()) == (200, first.json())
    assert client.get(f"/datasets/{dataset_id}/rows/{rows[0]['id']}").json()["data"]["note"] == "later"
    other = _patch(client, dataset_id, [{"id": rows[0]["id"], "note": "twice"}], headers=headers)
    assert other.status == 409 and other.json()["error"]["code"] == "conflict"


# --- refused before anything is written --------------------------------------------------------
REFUSED: list[tuple[str, Callable[[list[dict[str, Any]]], Any], int, str, int | None]] = [
    # (case, body from the seeded rows, status, code, the entry the error names)
    (
        "unknown id",
        lambda r: {"rows": [{"id": r[0]["id"], "note": "x"}, {"id": MISSING_ROW, "note": "y"}]},
        404,
        "row_not_found",
        1,
    ),
    (
        "malformed id",
        lambda r: {"rows": [{"id": r[0]["id"], "note": "x"}, {"id": "12345", "note": "y"}]},
        400,
        "invalid_row_id",
        1,
    ),
    (
        "id of a foreign uuid",
        lambda r: {"rows": [{"id": "6f1c2a5e-8b0d-4f7a-9c3e-2d1b0a9f8e7d", "note": "y"}]},
        404,
        "row_not_found",
        0,
    ),
    ("no id", lambda r: {"rows": [{"id": r[0]["id"], "note": "x"}, {"note": "y"}]}, 400, "invalid_body", 1),
    ("id not a string", lambda r: {"rows": [{"id": 7, "note": "y"}]}, 400, "invalid_body", 0),
    (
        "entry not an object",
        lambda r: {"rows": [{"id": r[0]["id"], "note": "x"}, ["note", "y"]]},
        400,
        "invalid_body",
        1,
    ),
    (
        "wrong type",
        lambda r: {"rows": [{"id": r[0]["id"], "note": "x"}, {"id": r[1]["id"], "amount": "lots"}]},
        400,
        "invalid_body",
        1,
    ),
    (
        "new column, two types",
        lambda r: {"rows": [{"id": r[0]["id"], "tag": 1}, {"id": r[1]["id"], "tag": "one"}]},
        400,
        "invalid_body",
        1,
    ),
    (
        "immutable created_at",
        lambda r: {"rows": [{"id": r[0]["id"], "created_at": "2000-01-01T00:00:00Z"}]},
        400,
        "invalid_body",
        0,
    ),
    (
        "immutable row_index",
        lambda r: {"rows": [{"id": r[0]["id"], "note": "x"}, {"id": r[1]["id"], "row_index": 0}]},
        400,
        "invalid_body",
        1,
    ),
    (
        "sets nothing",
        lambda r: {"rows": [{"id": r[0]["id"], "note": "x"}, {"id": r[1]["id"]}]},
        400,
        "invalid_body",
        1,
    ),
    ("invalid column name", lambda r: {"rows": [{"id": r[0]["id"], "a\u200bb": 1}]}, 400, "invalid_body", 0),
    (
        "oversize row",
        lambda r: {"rows": [{"id": r[0]["id"], "note": "x"}, {"id": r[1]["id"], "note": "y" * 400_000}]},
        400,
        "invalid_body",
        1,
    ),
    ("empty list", lambda r: {"rows": []}, 400, "invalid_body", None),
    ("rows not a list", lambda r: {"rows": {"id": r[0]["id"]}}, 400, "invalid_body", None),
    (
        "with where",
        lambda r: {"rows": [{"id": r[0]["id"], "note": "x"}], "where": {"amount": 1}},
        400,
        "invalid_body",
        None,
    ),
    (
        "1,001 rows",
        lambda r: {"rows": [{"id": r[0]["id"], "note": "x"}] * 1001},
        413,
        "payload_too_large",
        None,
    ),
]


@pytest.mark.parametrize(("case", "body", "status", "code", "entry"), REFUSED, ids=[c[0] for c in REFUSED])
def test_a_refused_request_changes_nothing_and_names_the_entry(
    client: Client,
    case: str,
    body: Callable[[list[dict[str, Any]]], Any],
    status: int,
    code: str,
    entry: int | None,
) -> None:
    dataset_id, rows = _dataset(client)
    before = _state(client, dataset_id)
    response = client.patch(f"/datasets/{dataset_id}/rows", body(rows))
    assert response.status == status, response.body
    error = response.json()["error"]
    assert error["code"] == code, error
    if entry is not None:
        assert error["details"]["row"] == entry, error
        assert error["message"].startswith(f"Row {entry}"), error
    assert _state(client, dataset_id) == before


# --- failures part-way --------------------------------------------------------------------------
def test_a_storage_failure_part_way_puts_back_every_row_that_landed(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given six rows, when DynamoDB refuses the fourth update of six (the first three have
    landed), then the request fails with the storage envelope, the three landed rows are put back
    exactly (values, updated_at, index entries), no audit entry is written and nothing counts."""
    dataset_id, rows = _dataset(client)
    before = _state(client, dataset_id)
    _serial(monkeypatch)
    failing = FailingCall(row_store.rows().meta.client, "UpdateItem", nth=4)
    body = [
        {"id": row["id"], "amount": 1000 + i, "name": f"new {i}", "extra": i} for i, row in enumerate(rows)
    ]
    response = _patch(client, dataset_id, body)
    failing.remove()
    assert response.status == 500, response.body
    error = response.json()["error"]
    assert error["code"] == "internal_error" and error["details"]["written"] == 0
    assert error["details"]["request_id"]
    assert failing.calls == 4 + 3  # four updates, then three put back
    after = _state(client, dataset_id)
    assert after["rows"] == [{**row, "extra": None} for row in before["rows"]]
    assert {key: after[key] for key in ("row_count", "trails", "by_index")} == {
        key: before[key] for key in ("row_count", "trails", "by_index")
    }


def test_a_parallel_failure_part_way_leaves_nothing_changed(client: Client) -> None:
    """The same with the writes in parallel: whichever rows landed are put back."""
    dataset_id, rows = _dataset(client, rows=40)
    before = _state(client, dataset_id)
    failing = FailingCall(row_store.rows().meta.client, "UpdateItem", nth=17)
    response = _patch(client, dataset_id, [{"id": row["id"], "amount": -5} for row in rows])
    failing.remove()
    assert response.status == 500, response.body
    assert response.json()["error"]["details"]["written"] == 0
    assert _state(client, dataset_id) == before


def test_putting_back_never_undoes_a_later_writer(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given rows 0–2 updated and the update of row 3 refused, when another writer changed row 0's
    ``note`` (a column this request also set) and row 1's ``name`` (one it did not) in between,
    then row 0 keeps the other writer's note and gets its amount back, row 1 gets its note back
    and keeps the other writer's name, and row 2 is exactly as before."""
    dataset_id, rows = _dataset(client)
    before = {row["id"]: row for row in _state(client, dataset_id)["rows"]}
    _serial(monkeypatch)
    table = boto3.resource("dynamodb").Table(settings().rows_table)

    def other_writer(_params: dict[str, Any]) -> None:
        for row, attr, value in ((rows[0], "c2", "theirs 0"), (rows[1], "c0", "theirs 1")):
            table.update_item(
                Key=row_store.row_key(_plain(client, dataset_id), row["row_index"]),
                UpdateExpression="SET #a = :v, ua = :ua",
                ExpressionAttributeNames={"#a": attr},
                ExpressionAttributeValues={":v": value, ":ua": "2099-01-01T00:00:00.000Z"},
            )

    failing = FailingCall(row_store.rows().meta.client, "UpdateItem", nth=4, before=other_writer)
    body = [{"id": row["id"], "amount": 500 + i, "note": f"ours {i}"} for i, row in enumerate(rows)]
    response = _patch(client, dataset_id, body)
    failing.remove()
    assert response.status == 500, response.body
    now = {row["id"]: row for row in _state(client, dataset_id)["rows"]}
    first, second, third = (now[row["id"]] for row in rows[:3])
    assert (first["amount"], first["note"]) == (0, "theirs 0")
    assert (second["amount"], second["note"], second["name"]) == (1, "note 1", "theirs 1")
    assert third == before[rows[2]["id"]]
    assert now[rows[4]["id"]] == before[rows[4]["id"]]


def test_a_row_deleted_meanwhile_fails_the_request_and_the_others_are_put_back(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id, rows = _dataset(client)
    _serial(monkeypatch)
    calls = {"n": 0}
    original = row_store.update_fields

    def update_fields(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # a concurrent DELETE of the third row lands first
            assert client.delete(f"/datasets/{dataset_id}/rows/{rows[2]['id']}").status == 200
        return original(*args, **kwargs)

    monkeypatch.setattr(row_store, "update_fields", update_fields)
    before = {row["id"]: row for row in _state(client, dataset_id)["rows"]}
    response = _patch(client, dataset_id, [{"id": row["id"], "note": "gone?"} for row in rows])
    assert response.status == 404, response.body
    error = response.json()["error"]
    assert error["code"] == "row_not_found" and error["details"]["row"] == 2
    after = _state(client, dataset_id)
    assert {row["id"]: row for row in after["rows"]} == {
        k: v for k, v in before.items() if k != rows[2]["id"]
    }
    assert after["row_count"] == 5


# --- concurrency --------------------------------------------------------------------------------
def test_concurrent_writers_never_make_a_row_be_skipped(client: Client) -> None:
    """Given 150 rows, when a per-row PATCH of every row's amount runs at once with a bulk
    ``where`` update of every note, single-row patches of names and another per-row PATCH of a
    new column, then every request reports every row it targeted and every row holds every
    writer's value: nobody's column was lost or skipped."""
    dataset_id, rows = _dataset(client, rows=150)
    barrier = threading.Barrier(4)
    answers: dict[str, Any] = {}

    def run(name: str, request: Callable[[], Any]) -> None:
        barrier.wait()
        answers[name] = request()

    requests: dict[str, Callable[[], Any]] = {
        "amounts": lambda: _patch(
            client, dataset_id, [{"id": row["id"], "amount": 10_000 + row["row_index"]} for row in rows]
        ),
        "notes": lambda: client.patch(f"/datasets/{dataset_id}/rows", {"set": {"note": "bulk"}}),
        "names": lambda: [
            client.patch(
                f"/datasets/{dataset_id}/rows/{row['id']}", {"set": {"name": f"single {row['row_index']}"}}
            )
            for row in rows[::10]
        ],
        "flags": lambda: _patch(
            client, dataset_id, [{"id": row["id"], "flag": row["row_index"] % 2 == 0} for row in rows]
        ),
    }
    threads = [threading.Thread(target=run, args=item) for item in requests.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers["amounts"].status == 200 and answers["amounts"].json()["data"]["updated"] == 150
    assert answers["flags"].status == 200 and answers["flags"].json()["data"]["updated"] == 150
    assert answers["notes"].status == 200 and answers["notes"].json()["data"]["updated"] == 150
    assert all(single.status == 200 for single in answers["names"])
    stored = client.get(f"/datasets/{dataset_id}/rows", params={"limit": "1000"}).json()["data"]["rows"]
    assert len(stored) == 150
    for row in stored:
        index = row["row_index"]
        assert row["amount"] == 10_000 + index, row
        assert row["note"] == "bulk", row
        assert row["flag"] is (index % 2 == 0), row
        assert row["name"] == (f"single {index}" if index % 10 == 0 else f"n{index}"), row
    # the index on amount holds exactly the new values
    top = client.get(f"/datasets/{dataset_id}/rows", params={"amount": "gte.10000", "count": "exact"}).json()
    assert top["data"]["total"] == 150 and top["meta"]["plan"] == "index:amount"


def _plain(client: Client, dataset_id: str) -> Any:
    from datasets_core.store import datasets as dataset_store

    return dataset_store.get("default", dataset_id)


def test_an_update_by_where_failing_part_way_puts_back_every_row_that_landed(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same all-or-nothing for ``{"where", "set"}``: when DynamoDB refuses the fourth row's
    update, the three that landed are put back (values, updated_at, index entries), no audit
    entry is written, and the error says nothing stayed written."""
    dataset_id, _ = _dataset(client)
    before = _state(client, dataset_id)
    _serial(monkeypatch)
    failing = FailingCall(row_store.rows().meta.client, "UpdateItem", nth=4)
    response = client.patch(f"/datasets/{dataset_id}/rows", {"where": {}, "set": {"amount": 99, "extra": 1}})
    failing.remove()
    assert response.status == 500, response.body
    error = response.json()["error"]
    assert error["code"] == "internal_error" and error["details"]["written"] == 0, error
    after = _state(client, dataset_id)
    assert after["rows"] == [{**row, "extra": None} for row in before["rows"]]
    assert {key: after[key] for key in ("row_count", "trails", "by_index")} == {
        key: before[key] for key in ("row_count", "trails", "by_index")
    }
