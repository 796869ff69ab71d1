"""Drop-folder imports (SPEC §7) through the real import handler and the API, on moto."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets_core.config import settings
from datasets_core.imports import convert, pipeline
from datasets_core.imports.models import import_id_of
from datasets_core.store import datasets as dataset_store
from datasets_core.store import imports as import_store
from datasets_core.store import rows as row_store

from .conftest import Client, make_key, run_maintenance
from .import_support import FakeContext, drop, queued_messages, run_handler


# --- helpers ----------------------------------------------------------------------------------
def dataset_named(client: Client, name: str) -> dict[str, Any]:
    found = [d for d in client.get("/datasets", params={"q": name}).json()["data"] if d["name"] == name]
    assert len(found) == 1, found
    return client.get(f"/datasets/{found[0]['id']}").json()["data"]


def all_rows(client: Client, dataset_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/datasets/{dataset_id}/rows", params={"limit": "1000"})
    assert response.status == 200, response.body
    return response.json()["data"]["rows"]


def only_import(client: Client, dataset_id: str) -> dict[str, Any]:
    imports = client.get(f"/datasets/{dataset_id}/imports").json()["data"]
    assert len(imports) == 1, imports
    return imports[0]


def stored_items(dataset_id: str) -> list[dict[str, Any]]:
    """Every row item of a dataset, all generations (what a scan of the table finds)."""
    table = boto3.resource("dynamodb").Table(settings().rows_table)
    items = table.scan()["Items"]
    row_pk = re.compile(re.escape(dataset_id) + r"#\d+\.\d+$")  # not audit-trail items
    return [item for item in items if row_pk.match(str(item["pk"]))]


def report_of(client: Client, body: str) -> dict[str, Any]:
    """The report of the import an S3 notification (``drop``'s return) starts, by its id."""
    obj = json.loads(body)["Records"][0]["s3"]["object"]
    key = unquote_plus(obj["key"])
    import_id = import_id_of(settings().drop_bucket, key, obj.get("versionId"), obj["eTag"], obj["sequencer"])
    response = client.get(f"/imports/{import_id}")
    assert response.status == 200, response.body
    return response.json()["data"]


def drain(context: FakeContext | None = None) -> list[dict[str, Any]]:
    """Deliver every message on the import queue (chunks, continuations) until it is empty."""
    results = []
    while bodies := queued_messages():
        for body in bodies:
            results.append(run_handler(body, context=context))
    return results


def numbered_csv(count: int, start: int = 1) -> bytes:
    lines = ["n,label"] + [f"{i},row {i}" for i in range(start, start + count)]
    return ("\n".join(lines) + "\n").encode()


def parquet_bytes(table: pa.Table, **kwargs: Any) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **kwargs)
    return sink.getvalue()


# --- the happy path and its report -------------------------------------------------------------
def test_a_dropped_csv_creates_the_dataset_and_reports_the_import(client: Client) -> None:
    # Given a CSV dropped into a folder named after a dataset that does not exist yet
    body = drop("people/people.csv", b'name,age\n"Doe, J",42\nAnn,\n')
    # When S3's notification reaches the import function
    assert run_handler(body) == {"batchItemFailures": []}
    # Then the dataset exists with typed columns and exactly the file's rows
    dataset = dataset_named(client, "people")
    assert dataset["row_count"] == 2
    assert [(c["name"], c["type"]) for c in dataset["columns"]] == [("name", "string"), ("age", "number")]
    rows = all_rows(client, dataset["id"])
    assert [(r["name"], r["age"], r["row_index"]) for r in rows] == [("Doe, J", 42, 0), ("Ann", None, 1)]
    # And the import report says so, in the list and by id
    report = only_import(client, dataset["id"])
    assert report["status"] == "succeeded"
    assert (report["rows_total"], report["rows_imported"], report["rows_rejected"]) == (2, 2, 0)
    assert report["errors"] == [] and report["mode"] == "append" and report["format"] == "csv"
    assert report["source"]["key"] == "drop/default/people/people.csv"
    assert report["source"]["bucket"] == settings().drop_bucket
    assert report["started_at"] <= report["finished_at"]
    assert client.get(f"/imports/{report['id']}").json()["data"] == report


def test_a_redelivered_event_imports_nothing_again(client: Client) -> None:
    body = drop("twice/data.csv", numbered_csv(30))
    run_handler(body)
    # The same notification again, in a new SQS message (new message id), even twice in one batch.
    assert run_handler(body, body) == {"batchItemFailures": []}
    dataset = dataset_named(client, "twice")
    assert dataset["row_count"] == 30
    assert len(all_rows(client, dataset["id"])) == 30
    assert len(stored_items(dataset["id"])) == 30
    assert only_import(client, dataset["id"])["rows_imported"] == 30


def test_the_same_key_uploaded_again_with_new_content_is_a_new_import(client: Client) -> None:
    run_handler(drop("again/data.csv", numbered_csv(3)))
    run_handler(drop("again/data.csv", numbered_csv(2, start=10)))
    dataset = dataset_named(client, "again")
    assert dataset["row_count"] == 5
    assert sorted(r["n"] for r in all_rows(client, dataset["id"])) == [1, 2, 3, 10, 11]


def test_url_encoded_keys_are_decoded(client: Client) -> None:
    body = drop("my data/2024 Q1+Q2.csv", numbered_csv(2))
    assert "my+data/2024+Q1%2BQ2.csv" in body  # how S3 writes the key in its event
    run_handler(body)
    dataset = dataset_named(client, "my data")
    assert dataset["row_count"] == 2
    assert only_import(client, dataset["id"])["source"]["key"] == "drop/default/my data/2024 Q1+Q2.csv"


def test_s3_test_events_and_foreign_messages_are_skipped(client: Client) -> None:
    test_event = json.dumps(
        {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": settings().drop_bucket}
    )
    assert run_handler(test_event, "not json", json.dumps({"what": "else"})) == {"batchItemFailures": []}
    assert client.get("/datasets").json()["data"] == []


def test_an_unknown_workspace_is_refused_without_retries(client: Client) -> None:
    body = drop("people/people.csv", numbered_csv(2), workspace="nobody")
    assert run_handler(body) == {"batchItemFailures": []}
    assert import_store.get("nobody", "anything") is None
    table = boto3.resource("dynamodb").Table(settings().meta_table)
    assert not [i for i in table.scan()["Items"] if str(i["pk"]).startswith("WS#nobody")]


def test_files_outside_the_layout_are_ignored(client: Client) -> None:
    for key in ("loose.csv", "people/notes.txt", "a/b/c.csv"):
        assert run_handler(drop(key, b"a\n1\n")) == {"batchItemFailures": []}
    assert client.get("/datasets").json()["data"] == []


# --- bad files ----------------------------------------------------------------------------------
def test_one_bad_row_fails_the_import_and_writes_nothing(client: Client) -> None:
    created = client.post("/datasets", {"name": "typed", "columns": [{"name": "n", "type": "number"}]})
    dataset_id = created.json()["data"]["id"]
    run_handler(drop("typed/data.csv", b"n,label\n1,a\nseven,b\n3,c\n"))
    report = only_import(client, dataset_id)
    assert report["status"] == "failed"
    assert report["rows_total"] == 3 and report["rows_imported"] == 0 and report["rows_rejected"] == 1
    assert report["errors"] == [
        {"row": 1, "column": "n", "message": "'seven' is not a number (number column)"}
    ]
    assert report["reason"].startswith("1 of the file's 3 rows are bad and max-bad-rows allows 0")
    assert client.get(f"/datasets/{dataset_id}").json()["data"]["row_count"] == 0
    assert stored_items(dataset_id) == []
    # The file's new column was not added either: nothing of a failed validation is kept.
    assert [c["name"] for c in client.get(f"/datasets/{dataset_id}").json()["data"]["columns"]] == ["n"]


def test_max_bad_rows_lets_a_file_through_without_its_bad_rows(client: Client) -> None:
    body = drop("lenient/data.csv", b"n\n1\n2\n3,extra\n4\n", metadata={"max-bad-rows": "1"})
    run_handler(body)
    dataset = dataset_named(client, "lenient")
    report = only_import(client, dataset["id"])
    assert report["status"] == "succeeded" and report["max_bad_rows"] == 1
    assert (report["rows_total"], report["rows_imported"], report["rows_rejected"]) == (4, 3, 1)
    assert report["errors"] == [
        {"row": 2, "column": None, "message": "the row has 2 fields; the header has 1"}
    ]
    assert report["reason"] is None
    assert dataset["row_count"] == 3
    assert [r["n"] for r in all_rows(client, dataset["id"])] == [1, 2, 4]


def test_errors_list_at_most_the_first_100(client: Client) -> None:
    client.post("/datasets", {"name": "many", "columns": [{"name": "n", "type": "number"}]})
    run_handler(drop("many/data.csv", b"n\n" + b"x\n" * 150))
    report = only_import(client, dataset_named(client, "many")["id"])
    assert report["status"] == "failed" and report["rows_rejected"] == 150
    assert [e["row"] for e in report["errors"]] == list(range(100))


def test_a_broken_file_fails_with_a_clear_error_and_creates_no_dataset(client: Client) -> None:
    body = drop("broken/data.parquet", b"PAR1 definitely not parquet")
    run_handler(body)
    report = report_of(client, body)
    assert report["status"] == "failed" and report["dataset_id"] is None
    assert report["reason"].startswith("the file cannot be imported: the file is not a readable Parquet")
    assert report["errors"][0]["message"] == report["reason"]
    assert client.get("/datasets").json()["data"] == []


def test_bad_import_options_fail_the_import(client: Client) -> None:
    body = drop("opts/data.csv", numbered_csv(2), metadata={"mode": "overwrite"})
    run_handler(body)
    report = report_of(client, body)
    assert report["status"] == "failed"
    message = "x-amz-meta-mode must be 'append' or 'replace', not 'overwrite'"
    assert report["errors"] == [{"row": None, "column": None, "message": message}]
    assert report["reason"] == message
    assert client.get("/datasets").json()["data"] == []


def test_the_plan_row_limit_fails_the_import_before_writing(client: Client) -> None:
    from datasets_core.store import workspaces

    workspaces.set_plan("default", max_rows=5)
    body = drop("limited/data.csv", numbered_csv(6))
    run_handler(body)
    report = report_of(client, body)
    assert report["status"] == "failed" and "limit of 5 rows" in report["reason"]
    assert client.get("/datasets").json()["data"] == []
    assert workspaces.get("default")["row_count"] == 0


# --- parquet, indexes, replace, upsert ---------------------------------------------------------
def test_parquet_into_a_dataset_with_an_index(client: Client) -> None:
    client.post(
        "/datasets",
        {"name": "sales", "columns": [{"name": "region", "type": "string", "indexed": True}]},
    )
    table = pa.table(
        {
            "region": pa.array(["north", "south", "north"]).dictionary_encode(),
            "amount": pa.array([Decimal("10.50"), Decimal("3.25"), None], pa.decimal128(9, 2)),
        }
    )
    run_handler(drop("sales/q1.parquet", parquet_bytes(table)))
    dataset = dataset_named(client, "sales")
    assert dataset["row_count"] == 3
    response = client.get(f"/datasets/{dataset['id']}/rows", params={"region": "eq.north"}).json()
    assert response["meta"]["plan"] == "index:region"
    assert [r["amount"] for r in response["data"]["rows"]] == [10.5, None]


def test_replace_swaps_the_rows_at_once_and_purges_the_old_ones(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a dataset with three rows written through the API
    created = client.post("/datasets", {"name": "swap"}).json()["data"]
    client.post(f"/datasets/{created['id']}/rows", {"rows": [{"n": i} for i in range(3)]})
    # When a replacement file is imported in chunks of 2 rows, one chunk at a time
    monkeypatch.setenv("IMPORT_PART_ROWS", "2")
    settings.cache_clear()
    body = drop("swap/new.csv", numbered_csv(5, start=100), metadata={"mode": "replace"})
    run_handler(body)
    first, *rest = queued_messages()
    run_handler(first)
    # Then, halfway, readers still see exactly the old rows
    assert sorted(r["n"] for r in all_rows(client, created["id"])) == [0, 1, 2]
    assert client.get(f"/datasets/{created['id']}").json()["data"]["row_count"] == 3
    for message in rest:
        run_handler(message)
    # And afterwards exactly the new ones, row_count exact, row_index from 0
    rows = all_rows(client, created["id"])
    assert [(r["n"], r["row_index"]) for r in rows] == [(100 + i, i) for i in range(5)]
    assert client.get(f"/datasets/{created['id']}").json()["data"]["row_count"] == 5
    report = only_import(client, created["id"])
    assert report["status"] == "succeeded" and report["mode"] == "replace" and report["rows_imported"] == 5
    # And the old generation is purged by the maintenance task the swap queued
    run_maintenance()
    assert len(stored_items(created["id"])) == 5
    from datasets_core.store import workspaces

    assert workspaces.get("default")["row_count"] == 5


def test_upsert_on_merges_by_an_indexed_column(client: Client) -> None:
    created = client.post(
        "/datasets",
        {"name": "crm", "columns": [{"name": "email", "type": "string", "indexed": True}]},
    ).json()["data"]
    client.post(f"/datasets/{created['id']}/rows", {"rows": [{"email": "a@x.io", "score": 1}]})
    body = drop("crm/update.csv", b"email,score\na@x.io,5\nb@x.io,7\n", metadata={"upsert-on": "email"})
    run_handler(body)
    rows = all_rows(client, created["id"])
    assert sorted((r["email"], r["score"]) for r in rows) == [("a@x.io", 5), ("b@x.io", 7)]
    assert client.get(f"/datasets/{created['id']}").json()["data"]["row_count"] == 2
    report = only_import(client, created["id"])
    assert report["status"] == "succeeded" and report["upsert_on"] == "email" and report["rows_imported"] == 2


def test_upsert_on_a_column_without_index_fails(client: Client) -> None:
    body = drop("noindex/update.csv", b"email\na@x.io\n", metadata={"upsert-on": "email"})
    run_handler(body)
    report = report_of(client, body)
    assert report["status"] == "failed" and "ready index" in report["reason"]


# --- long imports -------------------------------------------------------------------------------
def test_a_validation_cut_short_continues_with_no_row_missing_and_none_twice(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 10)
    monkeypatch.setenv("IMPORT_PART_ROWS", "30")
    settings.cache_clear()
    body = drop("long/data.csv", numbered_csv(95))
    # The Lambda deadline nears after a few chunks of validation: the run checkpoints and hands over.
    assert run_handler(body, context=FakeContext(remaining=[900_000] * 12 + [5_000])) == {
        "batchItemFailures": []
    }
    report = report_of(client, body)
    assert (report["status"], report["rows_imported"], report["dataset_id"]) == ("running", 0, None)
    assert client.get("/datasets").json()["data"] == []  # nothing written while validating
    # The continuation validates the rest, then the file is written in 4 chunks of at most 30 rows.
    [continuation] = queued_messages()
    assert json.loads(continuation) == pipeline.json.loads(
        pipeline.continuation_message("default", report["id"])
    )
    assert run_handler(continuation) == {"batchItemFailures": []}
    chunk_messages = queued_messages()
    assert sorted(json.loads(m)["import_chunk"]["chunk"] for m in chunk_messages) == [0, 1, 2, 3]
    for message in chunk_messages:
        assert run_handler(message) == {"batchItemFailures": []}
    assert queued_messages() == []
    dataset = dataset_named(client, "long")
    rows = all_rows(client, dataset["id"])
    assert [r["n"] for r in rows] == list(range(1, 96))
    assert len({r["id"] for r in rows}) == 95
    assert [r["row_index"] for r in rows] == list(range(95))
    assert dataset["row_count"] == 95
    report = only_import(client, dataset["id"])
    assert (report["status"], report["rows_imported"], report["chunks_total"], report["chunks_done"]) == (
        "succeeded",
        95,
        4,
        4,
    )
    # A late duplicate of the original event, or of a chunk, changes nothing.
    run_handler(body)
    run_handler(chunk_messages[2])
    assert len(stored_items(dataset["id"])) == 95
    assert dataset_named(client, "long")["row_count"] == 95


def test_an_import_whose_chunk_keeps_failing_is_failed_and_rolled_back(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasets_core.store import workspaces

    # Given a new dataset's file of 5 chunks, the fourth of which the store keeps refusing
    monkeypatch.setenv("IMPORT_PART_ROWS", "10")
    settings.cache_clear()
    write = row_store.batch_write

    def refuses_chunk_3(requests: list[dict[str, Any]], **kwargs: Any) -> Any:
        if any(30 <= int(r.get("PutRequest", {}).get("Item", {}).get("sk", -1)) < 40 for r in requests):
            raise RuntimeError("storage keeps failing")
        return write(requests, **kwargs)

    monkeypatch.setattr(row_store, "batch_write", refuses_chunk_3)
    body = drop("doomed/data.csv", numbered_csv(45))
    run_handler(body)
    messages = queued_messages()
    outcomes = [run_handler(message) for message in messages]
    assert sum(len(outcome["batchItemFailures"]) for outcome in outcomes) == 1
    dataset = dataset_named(client, "doomed")
    assert dataset["row_count"] == 35  # the other chunks landed and were counted
    # When the failing chunk's last allowed delivery (maxReceiveCount) fails too
    failing = next(m for m in messages if json.loads(m)["import_chunk"]["chunk"] == 3)
    assert run_handler(failing, receive_count=pipeline.MAX_RECEIVES) == {"batchItemFailures": []}
    # Then the import failed, everything it wrote is gone, and so is the dataset it created
    report = report_of(client, body)
    assert report["status"] == "failed" and report["rows_imported"] == 0 and report["dataset_id"] is None
    assert "failed 5 times" in report["reason"]
    assert client.get("/datasets").json()["data"] == []
    assert stored_items(dataset["id"]) == []
    assert workspaces.get("default")["row_count"] == 0
    run_maintenance()  # the purge of the removed dataset
    assert stored_items(dataset["id"]) == []


# --- endpoints ----------------------------------------------------------------------------------
def test_create_upload_presigns_a_put_into_the_drop_folder(client: Client) -> None:
    dataset = client.post("/datasets", {"name": "Uploads here"}).json()["data"]
    response = client.post(
        f"/datasets/{dataset['id']}/uploads", {"filename": "big file.parquet", "mode": "replace"}
    )
    assert response.status == 201, response.body
    data = response.json()["data"]
    assert data["key"] == "drop/default/Uploads here/big file.parquet"
    assert data["headers"] == {"x-amz-meta-mode": "replace", "x-amz-meta-import-id": data["import_id"]}
    assert data["expires_at"].endswith("Z")
    url = urlsplit(data["upload_url"])
    assert url.path.endswith("/drop/default/Uploads%20here/big%20file.parquet")
    signed = parse_qs(url.query)["X-Amz-SignedHeaders"][0].split(";")
    assert {"x-amz-meta-mode", "x-amz-meta-import-id"} <= set(signed)  # the PUT must carry them
    # The promised import exists already, waiting for its file.
    report = client.get(f"/imports/{data['import_id']}").json()["data"]
    assert (report["status"], report["dataset_id"], report["mode"]) == ("queued", dataset["id"], "replace")
    assert report["source"]["key"] == data["key"]


BAD_UPLOAD_BODIES = [
    {"filename": "notes.txt"},
    {"filename": "a/b.csv"},
    {"filename": "x.csv", "mode": "merge"},
    {"filename": "x.csv", "upsert_on": "email", "mode": "replace"},
    {"filename": "x.csv", "upsert_on": "email"},  # no index on email
    {"filename": "x.csv", "max_bad_rows": -1},
    {"filename": "x.csv", "unexpected": 1},
]


def test_create_upload_refuses_bad_bodies(client: Client) -> None:
    dataset = client.post("/datasets", {"name": "strict"}).json()["data"]
    for body in BAD_UPLOAD_BODIES:
        response = client.post(f"/datasets/{dataset['id']}/uploads", body)
        assert response.status == 400, (body, response.body)
        assert response.json()["error"]["code"] == "invalid_body", body
    assert client.post(f"/datasets/{dataset['id']}/uploads", body="{not json").status == 400


def test_imports_of_another_workspace_are_not_found(client: Client) -> None:
    run_handler(drop("mine/data.csv", numbered_csv(2)))
    dataset = dataset_named(client, "mine")
    report = only_import(client, dataset["id"])
    other = make_key(workspace="other")
    response = client.get(f"/imports/{report['id']}", key=other)
    assert response.status == 404 and response.json()["error"]["code"] == "import_not_found"
    response = client.get(f"/datasets/{dataset['id']}/imports", key=other)
    assert response.status == 404 and response.json()["error"]["code"] == "dataset_not_found"
    response = client.post(f"/datasets/{dataset['id']}/uploads", {"filename": "x.csv"}, key=other)
    assert response.status == 404
    assert client.get("/imports/imp_missing").json()["error"]["code"] == "import_not_found"


def test_list_imports_pages_newest_first(client: Client) -> None:
    for n in range(3):
        run_handler(drop(f"paged/file{n}.csv", numbered_csv(1, start=n)))
    dataset = dataset_named(client, "paged")
    page = client.get(f"/datasets/{dataset['id']}/imports", params={"limit": "2", "offset": "1"}).json()
    assert page["meta"] == {"total": 3, "limit": 2, "offset": 1}
    assert [i["source"]["key"].rsplit("/", 1)[1] for i in page["data"]] == ["file1.csv", "file0.csv"]
    bad = client.get(f"/datasets/{dataset['id']}/imports", params={"limit": "0"})
    assert bad.status == 400 and bad.json()["error"]["code"] == "invalid_query"


def test_row_ids_are_deterministic_per_import_and_row(client: Client) -> None:
    run_handler(drop("ids/data.csv", numbered_csv(3)))
    dataset = dataset_named(client, "ids")
    rows = all_rows(client, dataset["id"])
    report = only_import(client, dataset["id"])
    expected = convert.row_ids(
        [r["row_index"] for r in rows], [convert.row_seed(report["id"], n) for n in (1, 2, 3)]
    )
    assert [r["id"] for r in rows] == expected
    item = row_store.get(dataset_store.get("default", dataset["id"]), 0)
    assert item is not None and item["id"] == expected[0]


def test_runs_that_are_always_short_still_validate_one_chunk_at_a_time(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 10)
    short = FakeContext(remaining=[1_000])  # every run is already at its deadline
    # The first run starts the file and reads one chunk before it hands over.
    body = drop("short/data.csv", numbered_csv(35))
    run_handler(body, context=FakeContext(remaining=[900_000, 900_000, 1_000]))
    # Each continuation reads exactly one more chunk (types over the file, then conversion).
    runs = 0
    while continuations := queued_messages():
        run_handler(*continuations, context=short)
        runs += 1
    assert runs == 3 + 4  # the rest of the vote on types, then the 4 chunks of the conversion
    dataset = dataset_named(client, "short")
    assert only_import(client, dataset["id"])["status"] == "succeeded"
    assert [r["n"] for r in all_rows(client, dataset["id"])] == list(range(1, 36))
    assert dataset["row_count"] == 35


def test_a_file_arriving_at_the_end_of_an_invocation_is_put_back_for_the_next(client: Client) -> None:
    body = drop("late/data.csv", numbered_csv(3))
    assert run_handler(body, context=FakeContext(remaining=[1_000])) == {"batchItemFailures": []}
    assert client.get("/datasets").json()["data"] == []  # not even started
    [deferred] = queued_messages()
    assert deferred == body
    run_handler(deferred)
    assert dataset_named(client, "late")["row_count"] == 3


# --- values a file may hold ---------------------------------------------------------------------
def test_numbers_are_imported_exactly_and_unstorable_ones_are_bad_rows(client: Client) -> None:
    # Given a JSON Lines file with an exact decimal, a big-but-storable number and two that
    # DynamoDB cannot store exactly
    lines = [
        '{"k": 1, "v": 12345678901234567890.5}',
        '{"k": 2, "v": 1e125}',
        '{"k": 3, "v": 1e-400}',
        '{"k": 4, "v": 123456789012345678901234567890123456789}',
        '{"k": 5, "v": 0.1}',
    ]
    body = drop("exact/data.jsonl", ("\n".join(lines) + "\n").encode(), metadata={"max-bad-rows": "2"})
    run_handler(body)
    dataset = dataset_named(client, "exact")
    report = only_import(client, dataset["id"])
    # Then the two bad values are bad rows counted against max-bad-rows, not a failed file
    assert report["status"] == "succeeded", report
    assert (report["rows_total"], report["rows_imported"], report["rows_rejected"]) == (5, 3, 2)
    assert [(error["row"], error["column"]) for error in report["errors"]] == [(2, "v"), (3, "v")]
    # And the others come back to the last digit
    response = client.get(f"/datasets/{dataset['id']}/rows", params={"order": "k", "select": "v"})
    text = response.body.decode()
    assert '"v":12345678901234567890.5' in text and '"v":0.1' in text
    assert '"v":1' + "0" * 125 in text


def test_a_csv_of_numbers_up_to_1e125_imports(client: Client) -> None:
    run_handler(drop("big/data.csv", b"v\n1e50\n1e125\n-9.5e124\n"))
    dataset = dataset_named(client, "big")
    assert only_import(client, dataset["id"])["status"] == "succeeded"
    assert dataset["row_count"] == 3


def test_a_json_line_nested_too_deeply_is_one_bad_row(client: Client) -> None:
    deep = '{"k": 2, "v": ' + "[" * 5000 + "]" * 5000 + "}"
    body = drop(
        "deep/data.jsonl", ('{"k": 1}\n' + deep + '\n{"k": 3}\n').encode(), metadata={"max-bad-rows": "1"}
    )
    run_handler(body)
    dataset = dataset_named(client, "deep")
    report = only_import(client, dataset["id"])
    assert report["status"] == "succeeded", report
    assert (report["rows_imported"], report["rows_rejected"]) == (2, 1)
    assert report["errors"][0]["row"] == 1 and "nested too deeply" in report["errors"][0]["message"]


def test_a_csv_cell_over_a_megabyte_is_one_bad_row(client: Client) -> None:
    huge = "x" * 1_200_000
    data = f"k,text\n1,short\n2,{huge}\n3,short too\n".encode()
    run_handler(drop("wide/data.csv", data, metadata={"max-bad-rows": "1"}))
    dataset = dataset_named(client, "wide")
    report = only_import(client, dataset["id"])
    assert report["status"] == "succeeded", report
    assert (report["rows_imported"], report["rows_rejected"]) == (2, 1)
    assert report["errors"][0]["row"] == 1 and "bytes" in report["errors"][0]["message"]
    assert [row["k"] for row in all_rows(client, dataset["id"])] == [1, 3]
