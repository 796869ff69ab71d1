"""Drop-folder imports on the local stack: files written by pyarrow and by polars are put into the
drop bucket through the stack's AWS endpoint (or a presigned URL), S3 notifies the import queue,
the worker runs the import handler, and the API reports the result."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
from decimal import Decimal
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import requests

from datasets_core.imports.models import import_id_of
from tests.integration.import_support import s3_notification

from .conftest import Stack, wait_for

BUCKET = "datasets-drop-local"
IMPORT_TIMEOUT = 30.0


# --- helpers ----------------------------------------------------------------------------------
def put(
    stack: Stack, dataset: str, filename: str, data: bytes, metadata: dict[str, str] | None = None
) -> dict:
    return stack.client("s3").put_object(
        Bucket=BUCKET, Key=f"drop/default/{dataset}/{filename}", Body=data, Metadata=metadata or {}
    )


def dataset_id(stack: Stack, name: str) -> str | None:
    found = [
        d for d in stack.request("GET", "/datasets", params={"q": name}).json()["data"] if d["name"] == name
    ]
    return found[0]["id"] if found else None


def finished_imports(stack: Stack, name: str, count: int = 1) -> list[dict[str, Any]]:
    """Poll the dataset's imports until ``count`` of them have finished; newest first."""

    def done() -> list[dict[str, Any]] | None:
        ident = dataset_id(stack, name)
        if ident is None:
            return None
        imports = stack.request("GET", f"/datasets/{ident}/imports").json()["data"]
        finished = [i for i in imports if i["status"] in ("succeeded", "failed")]
        return finished if len(finished) >= count else None

    return wait_for(done, IMPORT_TIMEOUT, f"{count} finished import(s) of '{name}'", interval=0.2)


def report_of_put(stack: Stack, key: str, put_response: dict[str, Any]) -> dict[str, Any]:
    """The finished report of the import a PUT into the drop bucket started (by its id)."""
    import_id = import_id_of(BUCKET, key, put_response["VersionId"])

    def done() -> dict[str, Any] | None:
        response = stack.request("GET", f"/imports/{import_id}")
        if response.status_code != 200:
            return None
        report = response.json()["data"]
        return report if report["status"] in ("succeeded", "failed") else None

    return wait_for(done, IMPORT_TIMEOUT, f"import {import_id}", interval=0.2)


def dataset(stack: Stack, name: str) -> dict[str, Any]:
    ident = dataset_id(stack, name)
    assert ident is not None
    return stack.request("GET", f"/datasets/{ident}").json()["data"]


def rows(stack: Stack, name: str) -> list[dict[str, Any]]:
    ident = dataset_id(stack, name)
    response = stack.request("GET", f"/datasets/{ident}/rows", params={"limit": "1000"})
    assert response.status_code == 200, response.text
    return response.json()["data"]["rows"]


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


# --- two independent writers, every §7 type ---------------------------------------------------
def test_parquet_from_pyarrow_with_every_type(stack: Stack) -> None:
    table = pa.table(
        {
            "i32": pa.array([1, None, -3], pa.int32()),
            "u64": pa.array([2**63, 0, 1], pa.uint64()),
            "f64": pa.array([0.5, 1e-3, None]),
            "f32": pa.array([0.25, 1.5, 2.0], pa.float32()),
            "dec": pa.array([Decimal("12.34"), Decimal("-0.01"), None], pa.decimal128(12, 2)),
            "s": pa.array(["a", None, "ç"]),
            "cat": pa.array(["x", "y", "x"]).dictionary_encode(),
            "b": pa.array([True, False, None]),
            "d": pa.array([dt.date(2024, 1, 1), None, dt.date(1970, 1, 1)], pa.date32()),
            "ts": pa.array([dt.datetime(2024, 1, 1, 12, 30)] * 3, pa.timestamp("ms")),
            "tsz": pa.array(
                [dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)] * 3, pa.timestamp("us", tz="Asia/Tokyo")
            ),
            "l": pa.array([[1, 2], None, []], pa.list_(pa.int16())),
            "st": pa.array([{"k": "v"}, {"k": None}, None], pa.struct([("k", pa.string())])),
            "m": pa.array([[("a", 1.5)], [], None], pa.map_(pa.string(), pa.float64())),
        }
    )
    put(stack, "arrow types", "types.parquet", parquet_bytes(table))
    [report] = finished_imports(stack, "arrow types")
    assert report["status"] == "succeeded", report
    assert (report["rows_total"], report["rows_imported"]) == (3, 3)
    info = dataset(stack, "arrow types")
    assert info["row_count"] == 3
    assert {c["name"]: c["type"] for c in info["columns"]} == {
        "i32": "number",
        "u64": "number",
        "f64": "number",
        "f32": "number",
        "dec": "number",
        "s": "string",
        "cat": "string",
        "b": "boolean",
        "d": "date",
        "ts": "datetime",
        "tsz": "datetime",
        "l": "json",
        "st": "json",
        "m": "json",
    }
    first, second, third = rows(stack, "arrow types")
    assert first["u64"] == 2**63 and first["dec"] == 12.34 and first["f32"] == 0.25
    assert (first["cat"], third["cat"], third["s"]) == ("x", "x", "ç")
    assert (first["d"], second["d"]) == ("2024-01-01", None)
    assert first["ts"] == "2024-01-01T12:30:00Z" and first["tsz"] == "2024-01-01T12:00:00Z"
    assert (first["l"], second["l"], third["l"]) == ([1, 2], None, [])
    assert (first["st"], second["st"], first["m"]) == ({"k": "v"}, {"k": None}, {"a": 1.5})


def test_parquet_from_polars(stack: Stack) -> None:
    frame = pl.DataFrame(
        {
            "id_no": [1, 2, 3],
            "score": [1.25, None, -7.5],
            "name": ["ann", "bob", None],
            "kind": pl.Series(["a", "b", "a"], dtype=pl.Categorical),
            "ok": [True, None, False],
            "day": [dt.date(2024, 5, 1), dt.date(2024, 5, 2), None],
            "at": pl.Series(
                [dt.datetime(2024, 5, 1, 8, 0), None, dt.datetime(2024, 5, 1, 9, 15, 0, 500000)]
            ).dt.replace_time_zone("Europe/Berlin"),
            "tags": [["x"], [], None],
            "amount": pl.Series([Decimal("1.10"), Decimal("2.00"), None], dtype=pl.Decimal(10, 2)),
        }
    )
    sink = io.BytesIO()
    frame.write_parquet(sink)
    put(stack, "polars", "frame.parquet", sink.getvalue())
    [report] = finished_imports(stack, "polars")
    assert report["status"] == "succeeded", report
    assert dataset(stack, "polars")["row_count"] == 3
    one, two, three = rows(stack, "polars")
    assert (one["id_no"], one["score"], one["name"], one["kind"], one["ok"]) == (1, 1.25, "ann", "a", True)
    assert one["day"] == "2024-05-01" and three["day"] is None
    assert one["at"] == "2024-05-01T06:00:00Z"  # 08:00 in Berlin (CEST, +2)
    assert three["at"] == "2024-05-01T07:15:00.5Z"
    assert (one["tags"], two["tags"], three["tags"]) == (["x"], [], None)
    assert (one["amount"], two["amount"], three["amount"]) == (1.1, 2, None)


# --- CSV, JSON Lines ----------------------------------------------------------------------------
CSV = (
    "\ufeffname,amount,active,day,note\r\n"
    '"Doe, Jane",12.50,true,2024-01-31,"said ""hi"""\r\n'
    '"two\nlines",-3,false,,\r\n'
    'plain,1e3,TRUE,2024-02-29,"a, b, c,"\r\n'
)


def test_csv_gz_with_every_quoting_edge_case(stack: Stack) -> None:
    put(stack, "quoting", "people.csv.gz", gzip.compress(CSV.encode()))
    [report] = finished_imports(stack, "quoting")
    assert report["status"] == "succeeded", report
    assert [(r["name"], r["amount"], r["active"], r["day"], r["note"]) for r in rows(stack, "quoting")] == [
        ("Doe, Jane", 12.5, True, "2024-01-31", 'said "hi"'),
        ("two\nlines", -3, False, None, None),
        ("plain", 1000, True, "2024-02-29", "a, b, c,"),
    ]
    assert dataset(stack, "quoting")["row_count"] == 3


def test_json_lines(stack: Stack) -> None:
    lines = [{"a": 1, "b": {"x": [1]}}, {"a": 2.5, "c": "2024-01-01"}]
    put(stack, "lines", "data.jsonl", "\n".join(json.dumps(line) for line in lines).encode())
    [report] = finished_imports(stack, "lines")
    assert report["status"] == "succeeded", report
    assert [(r["a"], r["b"], r["c"]) for r in rows(stack, "lines")] == [
        (1, {"x": [1]}, None),
        (2.5, None, "2024-01-01"),
    ]


# --- bad files -----------------------------------------------------------------------------------
def test_a_broken_file_fails_and_leaves_no_dataset(stack: Stack) -> None:
    response = put(stack, "broken", "data.csv.gz", b"\x1f\x8b\x08 not really gzip")
    report = report_of_put(stack, "drop/default/broken/data.csv.gz", response)
    assert report["status"] == "failed" and report["dataset_id"] is None
    assert "compressed file is broken" in report["reason"]
    assert dataset_id(stack, "broken") is None


def test_one_bad_row_fails_the_file_with_its_row_and_column(stack: Stack) -> None:
    stack.request("POST", "/datasets", json={"name": "strict", "columns": [{"name": "n", "type": "number"}]})
    put(stack, "strict", "data.csv", b"n\n1\n2\nthree\n4\n")
    [report] = finished_imports(stack, "strict")
    assert report["status"] == "failed"
    assert report["errors"] == [
        {"row": 2, "column": "n", "message": "'three' is not a number (number column)"}
    ]
    assert (report["rows_total"], report["rows_imported"], report["rows_rejected"]) == (4, 0, 1)
    assert dataset(stack, "strict")["row_count"] == 0
    # The same file again with max-bad-rows=1 is imported without its bad row.
    put(stack, "strict", "data.csv", b"n\n1\n2\nthree\n4\n", metadata={"max-bad-rows": "1"})
    newest = finished_imports(stack, "strict", count=2)[0]
    assert newest["status"] == "succeeded" and newest["rows_rejected"] == 1
    assert [r["n"] for r in rows(stack, "strict")] == [1, 2, 4]
    assert dataset(stack, "strict")["row_count"] == 3


# --- replace, redelivery, presigned upload ----------------------------------------------------
def test_replace_swaps_every_row(stack: Stack) -> None:
    put(stack, "swap", "v1.csv", b"n\n1\n2\n3\n")
    finished_imports(stack, "swap")
    put(stack, "swap", "v2.parquet", parquet_bytes(pa.table({"n": [10, 20]})), metadata={"mode": "replace"})
    newest = finished_imports(stack, "swap", count=2)[0]
    assert newest["status"] == "succeeded" and newest["mode"] == "replace"
    assert [(r["n"], r["row_index"]) for r in rows(stack, "swap")] == [(10, 0), (20, 1)]
    assert dataset(stack, "swap")["row_count"] == 2


def test_a_redelivered_event_is_imported_once(stack: Stack) -> None:
    put(stack, "redelivered", "data.csv", b"n\n1\n2\n")
    [report] = finished_imports(stack, "redelivered")
    # S3 (at-least-once) sends the same notification again, as a new SQS message.
    source = report["source"]
    head = stack.client("s3").head_object(Bucket=BUCKET, Key=source["key"])
    notification = s3_notification(
        BUCKET, source["key"], source["size"], head["ETag"].strip('"'), head["VersionId"]
    )
    sqs = stack.client("sqs")
    queue = sqs.get_queue_url(QueueName="datasets-import")["QueueUrl"]
    for _ in range(2):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(notification))

    def drained() -> bool:
        counts = sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    wait_for(drained, IMPORT_TIMEOUT, "the import queue to drain", interval=0.2)
    imports = stack.request("GET", f"/datasets/{report['dataset_id']}/imports").json()["data"]
    assert [i["id"] for i in imports] == [report["id"]]
    assert dataset(stack, "redelivered")["row_count"] == 2 and len(rows(stack, "redelivered")) == 2


def test_presigned_upload_is_imported_with_its_options(stack: Stack) -> None:
    created = stack.request("POST", "/datasets", json={"name": "via url"}).json()["data"]
    stack.request("POST", f"/datasets/{created['id']}/rows", json={"rows": [{"n": 0}]})
    upload = stack.request(
        "POST", f"/datasets/{created['id']}/uploads", json={"filename": "new data.csv", "mode": "replace"}
    )
    assert upload.status_code == 201, upload.text
    data = upload.json()["data"]
    put_response = requests.put(data["upload_url"], data=b"n\n7\n8\n", headers=data["headers"], timeout=30)
    assert put_response.status_code == 200, put_response.text
    newest = finished_imports(stack, "via url")[0]
    assert newest["id"] == data["import_id"]  # the id the upload promised
    assert newest["status"] == "succeeded" and newest["mode"] == "replace"
    assert newest["source"]["key"] == data["key"] == "drop/default/via url/new data.csv"
    assert [r["n"] for r in rows(stack, "via url")] == [7, 8]
    assert stack.request("GET", f"/imports/{newest['id']}").json()["data"]["rows_imported"] == 2


# --- chunks written concurrently -----------------------------------------------------------------
def test_a_big_file_is_written_in_chunks_by_concurrent_invocations(stack: Stack) -> None:
    # Given a file of 12 chunks (the stack runs with IMPORT_PART_ROWS=2000, 4 import workers)
    count = 24_000
    data = ("n,label\n" + "".join(f"{i},row {i}\n" for i in range(count))).encode()
    response = put(stack, "chunky", "data.csv", data)
    report = report_of_put(stack, "drop/default/chunky/data.csv", response)
    # Then every row landed once, and more than one chunk was being written at a time
    assert report["status"] == "succeeded", report
    assert (report["rows_imported"], report["chunks_total"], report["chunks_done"]) == (count, 12, 12)
    assert report["max_concurrent_chunks"] > 1, report
    assert dataset(stack, "chunky")["row_count"] == count
    page = stack.request(
        "GET", f"/datasets/{report['dataset_id']}/rows", params={"n": "gte.23990", "label": "neq.x"}
    ).json()
    assert [row["n"] for row in page["data"]["rows"]] == list(range(23_990, count))
    assert page["meta"]["plan"] == "replica" and page["meta"]["replica"]["delta_rows"] == 0
