"""DynamoDB pushing back during an import (botocore Stubber on the rows table's client).

The meta table stays on moto, so the import record and ``row_count`` are the real ones; the
rows table's ``BatchWriteItem`` answers come from the stub, in order.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.stub import Stubber

from datasets_core.config import settings
from datasets_core.imports import pipeline
from datasets_core.imports.models import import_id_of
from datasets_core.store import changelog, workspaces
from datasets_core.store import datasets as dataset_store
from datasets_core.store import imports as import_store

from .conftest import Client
from .import_support import drop, run_handler
from .stubbing import Unprocessed, batch_call, log_call, query_call

ROWS = 40  # one full batch of 25 and one of 15


def csv_body(count: int = ROWS) -> bytes:
    return ("n\n" + "".join(f"{i}\n" for i in range(count))).encode()


def report_of(dataset: Any) -> dict[str, Any]:
    [record] = import_store.list_for_dataset("default", dataset.id)
    return record


def test_throttling_and_unprocessed_items_are_retried_until_every_row_is_counted_once(
    client: Client, stub: Stubber
) -> None:
    calls = Unprocessed(stub)
    # Given DynamoDB throttles the first batch, then leaves 7 of it unprocessed, then takes the rest
    log_call(stub)  # the change log, before the rows
    batch_call(stub, throttled=True)
    batch_call(stub, unprocessed=7)
    batch_call(stub)
    # and leaves 3 of the second batch unprocessed twice
    batch_call(stub, unprocessed=3)
    batch_call(stub, unprocessed=3)
    batch_call(stub)
    # (and the finish reads the change log past the import's own items: its 4 partitions)
    query_call(stub, changelog.LOG_SHARDS)
    # When the file is imported
    assert run_handler(drop("busy/data.csv", csv_body())) == {"batchItemFailures": []}
    # Then every batch was full, retries carried exactly what was left, and the counts are exact
    stub.assert_no_pending_responses()
    assert calls.sizes == [25, 25, 7, 15, 3, 3]
    dataset = dataset_store.find_by_name("default", "busy")
    assert dataset is not None and dataset.row_count == ROWS
    record = report_of(dataset)
    assert (record["status"], record["rows_total"], record["rows_imported"]) == ("succeeded", ROWS, ROWS)
    assert workspaces.get("default")["row_count"] == ROWS


def test_storage_that_keeps_refusing_leaves_the_import_to_a_retry_with_nothing_counted(
    client: Client, stub: Stubber
) -> None:
    calls = Unprocessed(stub)
    log_call(stub)  # the change log, before the rows
    for _ in range(10):  # row_store's retry budget for one batch
        batch_call(stub, throttled=True)
    body = drop("stuck/data.csv", csv_body())
    # The message fails (SQS delivers it again later) ...
    assert len(run_handler(body)["batchItemFailures"]) == 1
    stub.assert_no_pending_responses()
    assert calls.sizes == [25] * 10
    dataset = dataset_store.find_by_name("default", "stuck")
    assert dataset is not None and dataset.row_count == 0
    record = report_of(dataset)
    assert (record["status"], record["rows_imported"]) == ("running", 0)
    assert "owner" not in record  # the lease is released for the retry
    # ... and the retry, with DynamoDB back to normal, imports every row exactly once.
    log_call(stub)  # the change log, before the rows
    # A redelivered chunk first reads which of its rows are there (one partition) and what API
    # writes the change log names since the import began (its 4 partitions): none here.
    query_call(stub, 1 + changelog.LOG_SHARDS)
    batch_call(stub, unprocessed=25)  # even a batch DynamoDB ignores entirely
    batch_call(stub)
    batch_call(stub)
    query_call(stub, changelog.LOG_SHARDS)  # the finish reads the change log past its items
    assert run_handler(body, receive_count=2) == {"batchItemFailures": []}
    stub.assert_no_pending_responses()
    assert calls.sizes[10:] == [25, 25, 15]
    dataset = dataset_store.find_by_name("default", "stuck")
    assert dataset is not None and dataset.row_count == ROWS
    assert report_of(dataset)["rows_imported"] == ROWS
    assert workspaces.get("default")["row_count"] == ROWS


def test_the_last_allowed_delivery_fails_the_import_and_gives_the_rows_back(
    client: Client, stub: Stubber
) -> None:
    Unprocessed(stub)
    log_call(stub)  # the change log, before the rows
    for _ in range(10):
        batch_call(stub, throttled=True)
    # The rollback deletes the rows the import may have written (DynamoDB accepts it now).
    batch_call(stub)
    batch_call(stub)
    body = drop("doomed/data.csv", csv_body())
    assert run_handler(body, receive_count=pipeline.MAX_RECEIVES) == {"batchItemFailures": []}
    stub.assert_no_pending_responses()
    # The dataset the file created is gone with it; the report stays, by the import's id.
    assert dataset_store.find_by_name("default", "doomed") is None
    obj = json.loads(body)["Records"][0]["s3"]["object"]
    import_id = import_id_of(settings().drop_bucket, "drop/default/doomed/data.csv", obj["versionId"])
    record = import_store.get("default", import_id)
    assert record is not None and record["status"] == "failed" and record["rows_imported"] == 0
    assert record["dataset_id"] is None and "storage" in record["reason"]
    assert workspaces.get("default")["row_count"] == 0
