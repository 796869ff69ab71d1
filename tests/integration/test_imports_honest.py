"""Honest imports (SPEC §7): whole-file majority typing, the ``types`` option, a reason
for every failure, no dataset left by a failed file, the import id of an upload, preview/commit."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest

from datasets_core.config import settings
from datasets_core.imports.models import import_id_of
from datasets_core.store import workspaces

from .conftest import Client
from .import_support import queued_messages, run_handler, s3_notification
from .test_imports import all_rows, dataset_named, drop, report_of, stored_items


def ages_csv(bad: tuple[str, ...] = ("forty", "n/a", "?")) -> bytes:
    """20 rows; ``age`` holds numbers except for the ``bad`` values (rows 5, 11, 17)."""
    lines = ["name,age,zip"]
    odd = iter(bad)
    for n in range(20):
        age = next(odd) if n in (5, 11, 17) else str(20 + n)
        lines.append(f"person {n},{age},{n:05d}")
    return ("\n".join(lines) + "\n").encode()


def upload(client: Client, dataset_id: str, body: dict[str, Any], data: bytes) -> tuple[dict[str, Any], str]:
    """``POST .../uploads``, then the PUT a client makes with the answer (its headers as metadata);
    the answer and the S3 notification of the object."""
    response = client.post(f"/datasets/{dataset_id}/uploads", body)
    assert response.status == 201, response.body
    answer = response.json()["data"]
    metadata = {name.removeprefix("x-amz-meta-"): value for name, value in answer["headers"].items()}
    put = boto3.client("s3").put_object(
        Bucket=answer["bucket"], Key=answer["key"], Body=data, Metadata=metadata
    )
    notification = s3_notification(
        answer["bucket"], answer["key"], len(data), put["ETag"].strip('"'), put.get("VersionId")
    )
    return answer, json.dumps(notification)


# --- majority typing ------------------------------------------------------------------------------
def test_a_number_column_with_three_bad_values_fails_the_file_and_leaves_nothing(client: Client) -> None:
    # Given a CSV whose age column holds numbers except for 3 values, and max-bad-rows 0
    body = drop("people/people.csv", ages_csv())
    # When it is imported
    run_handler(body)
    # Then the column was typed number by its majority, the 3 values are 3 bad rows, reported
    report = report_of(client, body)
    assert (report["status"], report["rows_total"], report["rows_rejected"]) == ("failed", 20, 3)
    assert [(e["row"], e["column"]) for e in report["errors"]] == [(5, "age"), (11, "age"), (17, "age")]
    assert "'forty' is not a number" in report["errors"][0]["message"]
    assert report["reason"].startswith("3 of the file's 20 rows are bad and max-bad-rows allows 0")
    assert "column 'age' is number because 17 of its 20 values are" in report["reason"]
    assert "types=age:string" in report["reason"]
    # And nothing is left behind: no dataset, no row, no usage, no staging file
    assert report["dataset_id"] is None and report["rows_imported"] == 0
    assert client.get("/datasets").json()["data"] == []
    assert workspaces.get("default")["row_count"] == 0
    replica = boto3.client("s3").list_objects_v2(Bucket=settings().replica_bucket)
    assert replica.get("KeyCount", 0) == 0


def test_with_max_bad_rows_3_the_rest_is_imported_as_numbers(client: Client) -> None:
    body = drop("people/people.csv", ages_csv(), metadata={"max-bad-rows": "3"})
    run_handler(body)
    dataset = dataset_named(client, "people")
    assert {c["name"]: c["type"] for c in dataset["columns"]} == {
        "name": "string",
        "age": "number",
        "zip": "string",  # 00000, 00001 ...: identifiers, not numbers
    }
    report = report_of(client, body)
    assert (report["status"], report["rows_imported"], report["rows_rejected"]) == ("succeeded", 17, 3)
    assert dataset["row_count"] == 17
    # The column compares as numbers, not as text.
    older = client.get(f"/datasets/{dataset['id']}/rows", params={"age": "gte.36"}).json()["data"]
    assert sorted(row["age"] for row in older["rows"]) == [36, 38, 39]


def test_a_column_without_a_majority_is_text(client: Client) -> None:
    data = b"code\n1\nA2\n3\nB4\n"
    body = drop("codes/codes.csv", data)
    run_handler(body)
    assert report_of(client, body)["status"] == "succeeded"
    dataset = dataset_named(client, "codes")
    assert [(c["name"], c["type"]) for c in dataset["columns"]] == [("code", "string")]


# --- the types option ---------------------------------------------------------------------------
def test_types_in_the_object_metadata_override_inference(client: Client) -> None:
    body = drop("people/people.csv", ages_csv(), metadata={"types": "age:string,zip:number"})
    run_handler(body)
    report = report_of(client, body)
    assert report["status"] == "succeeded" and report["types"] == {"age": "string", "zip": "number"}
    dataset = dataset_named(client, "people")
    assert {c["name"]: c["type"] for c in dataset["columns"]} == {
        "name": "string",
        "age": "string",
        "zip": "number",
    }
    rows = all_rows(client, dataset["id"])
    assert [row["age"] for row in rows[4:7]] == ["24", "forty", "26"]
    assert [row["zip"] for row in rows[:3]] == [0, 1, 2]


def test_types_that_clash_with_the_dataset_fail_the_file_with_a_reason(client: Client) -> None:
    created = client.post("/datasets", {"name": "typed", "columns": [{"name": "age", "type": "number"}]})
    dataset_id = created.json()["data"]["id"]
    body = drop("typed/people.csv", ages_csv(), metadata={"types": "age:string"})
    run_handler(body)
    report = report_of(client, body)
    assert report["status"] == "failed" and "a column's type cannot change" in report["reason"]
    # A failed file leaves an existing dataset as it was.
    after = client.get(f"/datasets/{dataset_id}").json()["data"]
    assert [c["name"] for c in after["columns"]] == ["age"] and after["row_count"] == 0


# --- uploads: the promised import id, types, preview and commit ----------------------------------
def test_an_upload_returns_the_id_its_import_will_have(client: Client) -> None:
    dataset = client.post("/datasets", {"name": "people"}).json()["data"]
    answer, notification = upload(
        client, dataset["id"], {"filename": "people.csv", "types": {"age": "string"}}, ages_csv()
    )
    assert answer["headers"]["x-amz-meta-types"] == "age:string"
    # Before the file arrives, the import is already there: queued.
    queued = client.get(f"/imports/{answer['import_id']}").json()["data"]
    assert (queued["status"], queued["dataset_id"], queued["types"]) == (
        "queued",
        dataset["id"],
        {"age": "string"},
    )
    run_handler(notification)
    report = client.get(f"/imports/{answer['import_id']}").json()["data"]
    assert (report["status"], report["rows_imported"]) == ("succeeded", 20)
    assert report["source"]["version"] is not None  # the object the file became
    listed = client.get(f"/datasets/{dataset['id']}/imports").json()["data"]
    assert [item["id"] for item in listed] == [answer["import_id"]]
    # A second PUT through the same URL is the same import (one upload, one import).
    put = boto3.client("s3").put_object(
        Bucket=answer["bucket"],
        Key=answer["key"],
        Body=ages_csv(),
        Metadata={name.removeprefix("x-amz-meta-"): value for name, value in answer["headers"].items()},
    )
    again = s3_notification(answer["bucket"], answer["key"], 1, put["ETag"].strip('"'), put["VersionId"])
    run_handler(json.dumps(again))
    assert client.get(f"/datasets/{dataset['id']}").json()["data"]["row_count"] == 20
    assert len(client.get(f"/datasets/{dataset['id']}/imports").json()["data"]) == 1


def test_preview_shows_the_detected_columns_and_commit_imports_with_new_types(client: Client) -> None:
    # Given an upload that asks for a preview
    dataset = client.post("/datasets", {"name": "people"}).json()["data"]
    answer, notification = upload(
        client, dataset["id"], {"filename": "people.csv", "preview": True}, ages_csv()
    )
    import_id = answer["import_id"]
    run_handler(notification)
    # Then the file was validated but nothing imported: the import waits in its preview
    report = client.get(f"/imports/{import_id}").json()["data"]
    assert (report["status"], report["preview"], report["rows_rejected"]) == ("queued", True, 3)
    assert client.get(f"/datasets/{dataset['id']}").json()["data"]["columns"] == []
    assert stored_items(dataset["id"]) == []
    preview = client.get(f"/imports/{import_id}/preview")
    assert preview.status == 200, preview.body
    shown = preview.json()["data"]
    assert shown["columns"] == [
        {"name": "name", "type": "string", "new": True, "detected": {"seen": 20, "fit": 20}},
        {"name": "age", "type": "number", "new": True, "detected": {"seen": 20, "fit": 17}},
        {"name": "zip", "type": "string", "new": True, "detected": {"seen": 20, "fit": 20}},
    ]
    assert shown["rows"][0] == {"name": "person 0", "age": 20, "zip": "00000"}
    assert len(shown["rows"]) == 17 and shown["rows_rejected"] == 3
    assert [error["row"] for error in shown["errors"]] == [5, 11, 17]
    # When it is committed with age as text (the file is validated again with it)
    committed = client.post(f"/imports/{import_id}/commit", {"types": {"age": "string"}})
    assert committed.status == 202, committed.body
    assert committed.json()["data"]["types"] == {"age": "string"}
    for message in queued_messages():
        run_handler(message)
    # Then every row is imported, age as text
    report = client.get(f"/imports/{import_id}").json()["data"]
    assert (report["status"], report["rows_imported"], report["rows_rejected"]) == ("succeeded", 20, 0)
    detail = client.get(f"/datasets/{dataset['id']}").json()["data"]
    assert {c["name"]: c["type"] for c in detail["columns"]}["age"] == "string"
    assert detail["row_count"] == 20
    # And neither the preview nor a second commit is there any more
    assert client.get(f"/imports/{import_id}/preview").status == 409
    again = client.post(f"/imports/{import_id}/commit", {})
    assert again.status == 409 and again.json()["error"]["code"] == "conflict"


def test_commit_without_types_imports_the_validated_rows(client: Client) -> None:
    dataset = client.post("/datasets", {"name": "people"}).json()["data"]
    body = {"filename": "people.csv", "preview": True, "max_bad_rows": 3}
    answer, notification = upload(client, dataset["id"], body, ages_csv())
    run_handler(notification)
    assert client.post(f"/imports/{answer['import_id']}/commit", body="").status == 202
    for message in queued_messages():
        run_handler(message)
    report = client.get(f"/imports/{answer['import_id']}").json()["data"]
    assert (report["status"], report["rows_imported"]) == ("succeeded", 17)
    assert client.get(f"/datasets/{dataset['id']}").json()["data"]["row_count"] == 17


def test_preview_and_commit_refuse_what_they_cannot_do(client: Client) -> None:
    body = drop("plain/data.csv", b"n\n1\n")
    run_handler(body)
    plain = report_of(client, body)
    refused = client.get(f"/imports/{plain['id']}/preview")
    assert refused.status == 409 and "not uploaded with preview" in refused.json()["error"]["message"]
    assert client.post(f"/imports/{plain['id']}/commit", {}).status == 409
    assert client.get("/imports/imp_000000000000000000000000/preview").status == 404
    assert client.post("/imports/imp_000000000000000000000000/commit", {}).status == 404
    bad = client.post(f"/imports/{plain['id']}/commit", {"types": {"n": "integer"}})
    assert bad.status == 400 and bad.json()["error"]["code"] == "invalid_body"


# --- row numbers ---------------------------------------------------------------------------------
def test_import_reports_and_api_errors_number_rows_from_the_same_base(client: Client) -> None:
    created = client.post("/datasets", {"name": "nums", "columns": [{"name": "n", "type": "number"}]})
    dataset_id = created.json()["data"]["id"]
    api = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": 1}, {"n": "x"}]})
    assert api.status == 400 and api.json()["error"]["details"]["row"] == 1
    body = drop("nums/data.csv", b"n\n1\nx\n")
    run_handler(body)
    assert report_of(client, body)["errors"][0]["row"] == 1  # the second row, as in the API


# --- exactly once without a version ----------------------------------------------------------------
def test_an_event_without_version_is_imported_once_and_a_new_put_again(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given S3 events that name no version (an unversioned bucket), keyed by ETag and sequencer
    bucket = settings().drop_bucket
    key = "drop/default/unversioned/data.csv"
    data = ("n\n" + "".join(f"{i}\n" for i in range(50))).encode()
    put = boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
    event = s3_notification(bucket, key, len(data), put["ETag"].strip('"'))
    event["Records"][0]["s3"]["object"]["sequencer"] = "0062A1B2C3D4E5F601"
    # When the same event is delivered twice
    run_handler(json.dumps(event))
    run_handler(json.dumps(event))
    # Then the file is imported once
    dataset = dataset_named(client, "unversioned")
    assert dataset["row_count"] == 50
    obj = event["Records"][0]["s3"]["object"]
    import_id = import_id_of(bucket, unquote_plus(obj["key"]), None, obj["eTag"], obj["sequencer"])
    assert client.get(f"/imports/{import_id}").json()["data"]["rows_imported"] == 50
    # And the same bytes uploaded again on purpose (a new PUT: a new sequencer) are a new import
    again = json.loads(json.dumps(event))
    again["Records"][0]["s3"]["object"]["sequencer"] = "0062A1B2C3D4E5F6FF"
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data)
    run_handler(json.dumps(again))
    assert dataset_named(client, "unversioned")["row_count"] == 100
    assert len(client.get(f"/datasets/{dataset['id']}/imports").json()["data"]) == 2
