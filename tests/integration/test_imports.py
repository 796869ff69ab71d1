"""Drop-folder imports (SPEC §7) through the real import handler and the API, on moto."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datasets_core.config import settings
from datasets_core.imports import pipeline
from datasets_core.store import imports as import_store
from datasets_core.store import rows as row_store

from .conftest import Client, make_key, queued_maintenance, run_maintenance
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
        {"row": 2, "column": "n", "message": "'seven' is not a number (number column)"}
    ]
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
        {"row": 3, "column": None, "message": "the row has 2 fields; the header has 1"}
    ]
    assert dataset["row_count"] == 3
    assert [r["n"] for r in all_rows(client, dataset["id"])] == [1, 2, 4]


def test_errors_list_at_most_the_first_100(client: Client) -> None:
    client.post("/datasets", {"name": "many", "columns": [{"name": "n", "type": "number"}]})
    run_handler(drop("many/data.csv", b"n\n" + b"x\n" * 150))
    report = only_import(client, dataset_named(client, "many")["id"])
    assert report["status"] == "failed" and report["rows_rejected"] == 150
    assert [e["row"] for e in report["errors"]] == list(range(1, 101))


def test_a_broken_file_fails_with_a_clear_error(client: Client) -> None:
    run_handler(drop("broken/data.parquet", b"PAR1 definitely not parquet"))
    dataset = dataset_named(client, "broken")
    report = only_import(client, dataset["id"])
    assert report["status"] == "failed"
    assert report["errors"][0]["message"].startswith(
        "the file cannot be imported: the file is not a readable Parquet"
    )
    assert dataset["row_count"] == 0


def test_bad_import_options_fail_the_import(client: Client) -> None:
    run_handler(drop("opts/data.csv", numbered_csv(2), metadata={"mode": "overwrite"}))
    report = only_import(client, dataset_named(client, "opts")["id"])
    assert report["status"] == "failed"
    assert report["errors"] == [
        {
            "row": None,
            "column": None,
            "message": "x-amz-meta-mode must be 'append' or 'replace', not 'overwrite'",
        }
    ]


def test_the_plan_row_limit_fails_the_import_before_writing(client: Client) -> None:
    from datasets_core.store import workspaces

    workspaces.set_plan("default", max_rows=5)
    run_handler(drop("limited/data.csv", numbered_csv(6)))
    dataset = dataset_named(client, "limited")
    report = only_import(client, dataset["id"])
    assert report["status"] == "failed" and "limit of 5 rows" in report["errors"][0]["message"]
    assert dataset["row_count"] == 0 and workspaces.get("default")["row_count"] == 0


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
    # When a replacement file is imported in two runs (the first one cut short)
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 2)
    body = drop("swap/new.csv", numbered_csv(5, start=100), metadata={"mode": "replace"})
    run_handler(body, context=FakeContext(remaining=[900_000] * 4 + [1_000]))
    # Then, halfway, readers still see exactly the old rows
    assert sorted(r["n"] for r in all_rows(client, created["id"])) == [0, 1, 2]
    assert client.get(f"/datasets/{created['id']}").json()["data"]["row_count"] == 3
    [continuation] = queued_messages()
    run_handler(continuation)
    # And afterwards exactly the new ones, row_count exact, row_index from 0
    rows = all_rows(client, created["id"])
    assert [(r["n"], r["row_index"]) for r in rows] == [(100 + i, i) for i in range(5)]
    assert client.get(f"/datasets/{created['id']}").json()["data"]["row_count"] == 5
    report = only_import(client, created["id"])
    assert report["status"] == "succeeded" and report["mode"] == "replace" and report["rows_imported"] == 5
    # And the old generation is purged by the maintenance task the swap queued
    assert run_maintenance(queued_maintenance()) == {"batchItemFailures": []}
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
    run_handler(drop("noindex/update.csv", b"email\na@x.io\n", metadata={"upsert-on": "email"}))
    report = only_import(client, dataset_named(client, "noindex")["id"])
    assert report["status"] == "failed" and "ready index" in report["errors"][0]["message"]


# --- long imports -------------------------------------------------------------------------------
def test_an_import_cut_short_continues_with_no_row_missing_and_none_twice(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 10)
    body = drop("long/data.csv", numbered_csv(95))
    # The Lambda deadline nears after a few chunks: the run checkpoints and hands over.
    assert run_handler(body, context=FakeContext(remaining=[900_000] * 8 + [5_000])) == {
        "batchItemFailures": []
    }
    dataset = dataset_named(client, "long")
    report = only_import(client, dataset["id"])
    assert report["status"] == "running"
    assert report["rows_total"] == 95 and 0 < report["rows_imported"] < 95
    assert dataset["row_count"] == report["rows_imported"]  # progress and row_count move together
    # The continuation message finishes it.
    continuations = queued_messages()
    assert len(continuations) == 1
    assert run_handler(*continuations) == {"batchItemFailures": []}
    assert queued_messages() == []
    rows = all_rows(client, dataset["id"])
    assert [r["n"] for r in rows] == list(range(1, 96))
    assert len({r["id"] for r in rows}) == 95
    assert [r["row_index"] for r in rows] == list(range(95))
    assert client.get(f"/datasets/{dataset['id']}").json()["data"]["row_count"] == 95
    report = only_import(client, dataset["id"])
    assert (report["status"], report["rows_imported"]) == ("succeeded", 95)
    # A late duplicate of the original event changes nothing.
    run_handler(body)
    assert len(stored_items(dataset["id"])) == 95


def test_a_run_that_dies_after_writing_a_chunk_is_resumed_without_double_counting(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 10)
    commit = import_store.commit_chunk
    calls = {"n": 0}

    def dies_on_third_commit(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("the invocation died after writing chunk 3")
        commit(*args, **kwargs)

    monkeypatch.setattr(import_store, "commit_chunk", dies_on_third_commit)
    body = drop("crashy/data.csv", numbered_csv(45))
    first = run_handler(body)
    assert len(first["batchItemFailures"]) == 1  # SQS will deliver the message again
    dataset = dataset_named(client, "crashy")
    assert dataset["row_count"] == 20 and only_import(client, dataset["id"])["rows_imported"] == 20
    assert len(stored_items(dataset["id"])) == 30  # chunk 3 landed but was never counted
    # The redelivery resumes at the checkpoint and rewrites chunk 3 in place.
    assert run_handler(body, receive_count=2) == {"batchItemFailures": []}
    rows = all_rows(client, dataset["id"])
    assert [r["n"] for r in rows] == list(range(1, 46))
    assert len(stored_items(dataset["id"])) == 45
    assert client.get(f"/datasets/{dataset['id']}").json()["data"]["row_count"] == 45


def test_an_import_that_keeps_failing_is_failed_and_rolled_back(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 10)
    commit = import_store.commit_chunk
    calls = {"n": 0}

    def fails_after_two(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("storage keeps failing")
        commit(*args, **kwargs)

    monkeypatch.setattr(import_store, "commit_chunk", fails_after_two)
    body = drop("doomed/data.csv", numbered_csv(45))
    assert len(run_handler(body)["batchItemFailures"]) == 1
    # The last delivery the queue allows (maxReceiveCount) gives up cleanly instead of dead-lettering.
    assert run_handler(body, receive_count=pipeline.MAX_RECEIVES) == {"batchItemFailures": []}
    dataset = dataset_named(client, "doomed")
    report = only_import(client, dataset["id"])
    assert report["status"] == "failed" and report["rows_imported"] == 0
    assert dataset["row_count"] == 0 and stored_items(dataset["id"]) == []
    from datasets_core.store import workspaces

    assert workspaces.get("default")["row_count"] == 0


# --- endpoints ----------------------------------------------------------------------------------
def test_create_upload_presigns_a_put_into_the_drop_folder(client: Client) -> None:
    dataset = client.post("/datasets", {"name": "Uploads here"}).json()["data"]
    response = client.post(
        f"/datasets/{dataset['id']}/uploads", {"filename": "big file.parquet", "mode": "replace"}
    )
    assert response.status == 201, response.body
    data = response.json()["data"]
    assert data["key"] == "drop/default/Uploads here/big file.parquet"
    assert data["headers"] == {"x-amz-meta-mode": "replace"}
    assert data["expires_at"].endswith("Z")
    url = urlsplit(data["upload_url"])
    assert url.path.endswith("/drop/default/Uploads%20here/big%20file.parquet")
    signed = parse_qs(url.query)["X-Amz-SignedHeaders"][0].split(";")
    assert "x-amz-meta-mode" in signed  # the PUT must carry the header, or S3 refuses it


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
    expected = pipeline.convert.row_ids(
        [r["row_index"] for r in rows], [pipeline.convert.row_seed(report["id"], n) for n in (1, 2, 3)]
    )
    assert [r["id"] for r in rows] == expected
    item = row_store.get(dataset_named(client, "ids") | {"shards": 8}, 0)
    assert item is not None and item["id"] == expected[0]


def test_runs_that_are_always_short_still_finish_one_chunk_at_a_time(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "CHUNK_ROWS", 10)
    short = FakeContext(remaining=[1_000])  # every run is already at its deadline
    # The first run starts the file, validates it and hands over before writing anything.
    run_handler(drop("short/data.csv", numbered_csv(35)), context=FakeContext(remaining=[900_000, 1_000]))
    dataset = dataset_named(client, "short")
    report = only_import(client, dataset["id"])
    assert (report["status"], report["rows_total"], report["rows_imported"]) == ("running", 35, 0)
    # Each continuation writes exactly one chunk, then hands over again.
    progress = []
    while continuations := queued_messages():
        run_handler(*continuations, context=short)
        progress.append(only_import(client, dataset["id"])["rows_imported"])
    assert progress == [10, 20, 30, 35]
    assert only_import(client, dataset["id"])["status"] == "succeeded"
    assert [r["n"] for r in all_rows(client, dataset["id"])] == list(range(1, 36))
    assert client.get(f"/datasets/{dataset['id']}").json()["data"]["row_count"] == 35


def test_a_file_arriving_at_the_end_of_an_invocation_is_put_back_for_the_next(client: Client) -> None:
    body = drop("late/data.csv", numbered_csv(3))
    assert run_handler(body, context=FakeContext(remaining=[1_000])) == {"batchItemFailures": []}
    assert client.get("/datasets").json()["data"] == []  # not even started
    [deferred] = queued_messages()
    assert deferred == body
    run_handler(deferred)
    assert dataset_named(client, "late")["row_count"] == 3
