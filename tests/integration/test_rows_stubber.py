"""DynamoDB pushing back on the API's row writes (botocore Stubber on the rows table's client).

Moto never throttles and never leaves items unprocessed, so these answers come from the stub,
in order, while the meta table (row_index blocks, ``row_count``, the plan's row reservation)
stays on moto and its counters are the real ones.

- ``POST .../rows`` goes through ``store.rows.batch_write`` (full batches of 25, retries of
  exactly what was left, backoff) and is all or nothing: when DynamoDB keeps refusing, the rows
  that landed are deleted again. The error is SPEC §2's ``internal_error`` envelope with
  ``details.written``: how many rows of the request are stored (and counted) afterwards.
- ``DELETE .../rows`` deletes row by row (conditional ``DeleteItem``: a batch cannot check the
  row id); a delete DynamoDB refused (after botocore's own retries, which the Stubber bypasses)
  fails the request with the same envelope, and ``row_count`` moves by the deletes that landed.

The audit trail lives in the rows table too, so each successful write is followed by its
trail's ``BatchWriteItem`` calls.
"""

from __future__ import annotations

from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.stub import Stubber

from datasets_core.config import settings
from datasets_core.logic import bulk_where
from datasets_core.store import datasets as dataset_store
from datasets_core.store import workspaces

from .conftest import Client
from .stubbing import Unprocessed, batch_call, log_call, no_backoff

ROWS = [{"n": i} for i in range(40)]  # one full batch of 25 and one of 15
# ``row_store.batch_write``'s backoff ceilings (uniform(0, ceiling) is patched to the ceiling).
BACKOFF = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0, 2.0]


@pytest.fixture
def sleeps(stub: Stubber, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return no_backoff(monkeypatch)


@pytest.fixture
def calls(stub: Stubber) -> Unprocessed:
    return Unprocessed(stub)


def _dataset(client: Client) -> str:
    created = client.post("/datasets", {"name": "busy", "columns": [{"name": "n", "type": "number"}]})
    assert created.status == 201, created.body
    return str(created.json()["data"]["id"])


def _counts(dataset_id: str) -> tuple[int, int]:
    """The dataset's ``row_count`` and the workspace's (the plan's usage)."""
    dataset = dataset_store.get("default", dataset_id)
    return dataset.row_count, int(workspaces.get("default")["row_count"])


def _sks(requests: list[dict[str, Any]]) -> list[int]:
    return [int(request["PutRequest"]["Item"]["sk"]) for request in requests]


def _storage_error(response: Any, written: int) -> str:
    """The documented error envelope (SPEC §2: 500 internal_error, request id in details)."""
    assert response.status == 500, response.body
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == "internal_error"
    assert set(error["details"]) == {"written", "request_id"} and error["details"]["request_id"]
    assert error["details"]["written"] == written
    assert "storage service is busy" in error["message"]
    return str(error["message"])


# --- POST .../rows ---------------------------------------------------------------------------
def test_insert_unprocessed_items_once_then_accepted(
    client: Client, stub: Stubber, calls: Unprocessed, sleeps: list[float]
) -> None:
    dataset_id = _dataset(client)
    log_call(stub)  # the change log, before the rows
    batch_call(stub, unprocessed=7)  # rows 0-24: the last 7 come back unprocessed
    batch_call(stub)  # ... and are accepted on the retry
    batch_call(stub)  # rows 25-39
    batch_call(stub)  # audit trail: 25 entries
    batch_call(stub)  # audit trail: 15 entries
    response = client.post(f"/datasets/{dataset_id}/rows", {"rows": ROWS})
    assert response.status == 201, response.body
    data = response.json()["data"]
    assert data["inserted"] == 40 and [row["n"] for row in data["rows"]] == list(range(40))
    stub.assert_no_pending_responses()
    assert calls.sizes == [25, 7, 15, 25, 15]
    assert calls.calls[1] == calls.calls[0][-7:]  # the retry carried exactly what was left
    # every row was sent, and landed, exactly once
    assert sorted(_sks(calls.calls[0][:18] + calls.calls[1] + calls.calls[2])) == list(range(40))
    assert sleeps == [0.1]
    assert _counts(dataset_id) == (40, 40)


@pytest.mark.parametrize(
    "error", ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"]
)
def test_insert_throttled_batch_is_retried(
    client: Client, stub: Stubber, calls: Unprocessed, sleeps: list[float], error: str
) -> None:
    dataset_id = _dataset(client)
    log_call(stub)  # the change log, before the rows
    batch_call(stub, throttled=True, error=error)  # rows 0-24: refused as a whole
    batch_call(stub, throttled=True, error=error)  # ... twice
    batch_call(stub)
    batch_call(stub, throttled=True, error=error)  # rows 25-39: refused once
    batch_call(stub)
    batch_call(stub)  # audit trail
    batch_call(stub)
    response = client.post(f"/datasets/{dataset_id}/rows", {"rows": ROWS})
    assert response.status == 201, response.body
    assert response.json()["data"]["inserted"] == 40
    stub.assert_no_pending_responses()
    assert calls.sizes == [25, 25, 25, 15, 15, 25, 15]
    assert calls.calls[0] == calls.calls[1] == calls.calls[2] and calls.calls[3] == calls.calls[4]
    assert sorted(_sks(calls.calls[2] + calls.calls[4])) == list(range(40))
    assert sleeps == [0.1, 0.2, 0.1]  # the backoff restarts for each batch
    assert _counts(dataset_id) == (40, 40)


def test_insert_throttled_and_unprocessed_mixed_are_counted_once(
    client: Client, stub: Stubber, calls: Unprocessed, sleeps: list[float]
) -> None:
    dataset_id = _dataset(client)
    log_call(stub)  # the change log, before the rows
    batch_call(stub, throttled=True)
    batch_call(stub, unprocessed=7)
    batch_call(stub)
    batch_call(stub, unprocessed=3)
    batch_call(stub)
    batch_call(stub)  # audit trail
    batch_call(stub)
    response = client.post(f"/datasets/{dataset_id}/rows", {"rows": ROWS})
    assert response.status == 201, response.body
    assert response.json()["data"]["inserted"] == 40
    stub.assert_no_pending_responses()
    assert calls.sizes == [25, 25, 7, 15, 3, 25, 15]
    assert calls.calls[2] == calls.calls[0][-7:] and calls.calls[4] == calls.calls[3][-3:]
    assert sleeps == [0.1, 0.2, 0.1]
    assert _counts(dataset_id) == (40, 40)


def test_insert_persistently_unprocessed_fails_with_nothing_written(
    client: Client, stub: Stubber, calls: Unprocessed, sleeps: list[float]
) -> None:
    dataset_id = _dataset(client)
    log_call(stub)  # the change log, before the rows
    batch_call(stub)  # rows 0-24 land
    batch_call(stub, unprocessed=10)  # rows 25-29 land, 30-39 come back ...
    for _ in range(9):  # ... on every one of the batch's 10 attempts
        batch_call(stub, unprocessed=10)
    batch_call(stub)  # the undo: the 30 landed rows deleted again, 25 ...
    batch_call(stub)  # ... and 5
    response = client.post(f"/datasets/{dataset_id}/rows", {"rows": ROWS})
    message = _storage_error(response, written=0)
    assert "nothing was changed" in message
    stub.assert_no_pending_responses()
    assert calls.sizes == [25, 15] + [10] * 9 + [25, 5]
    assert calls.deletes == 30  # no audit trail: nothing was inserted
    undone = [request["DeleteRequest"]["Key"]["sk"] for call in calls.calls[-2:] for request in call]
    assert sorted(int(sk) for sk in undone) == list(range(30))
    assert sleeps == BACKOFF
    assert _counts(dataset_id) == (0, 0)  # the plan's reservation was given back too


def test_insert_refused_entirely_fails_with_nothing_written(
    client: Client, stub: Stubber, calls: Unprocessed, sleeps: list[float]
) -> None:
    dataset_id = _dataset(client)
    log_call(stub)  # the change log, before the rows
    for _ in range(10):  # the first batch's whole retry budget
        batch_call(stub, throttled=True)
    response = client.post(f"/datasets/{dataset_id}/rows", {"rows": ROWS})
    _storage_error(response, written=0)
    stub.assert_no_pending_responses()
    assert calls.sizes == [25] * 10  # nothing landed, so there is nothing to undo
    assert sleeps == BACKOFF
    assert _counts(dataset_id) == (0, 0)


def test_insert_non_retryable_error_is_not_retried(
    client: Client, stub: Stubber, calls: Unprocessed, sleeps: list[float]
) -> None:
    dataset_id = _dataset(client)
    log_call(stub)  # the change log, before the rows
    batch_call(stub)  # rows 0-24 land
    batch_call(stub, throttled=True, error="ValidationException")  # rows 25-39: refused for good
    batch_call(stub)  # the undo
    response = client.post(f"/datasets/{dataset_id}/rows", {"rows": ROWS})
    _storage_error(response, written=0)
    stub.assert_no_pending_responses()
    assert calls.sizes == [25, 15, 25] and calls.deletes == 25
    assert sleeps == []
    assert _counts(dataset_id) == (0, 0)


def test_insert_whose_undo_is_refused_too_counts_exactly_the_rows_left(
    client: Client, stub: Stubber, calls: Unprocessed, sleeps: list[float]
) -> None:
    dataset_id = _dataset(client)
    log_call(stub)  # the change log, before the rows
    batch_call(stub)  # rows 0-24 land
    for _ in range(10):
        batch_call(stub, unprocessed=15)  # rows 25-39 never do
    for _ in range(10):
        batch_call(stub, unprocessed=4)  # the undo removes 21 rows; the last 4 stay
    response = client.post(f"/datasets/{dataset_id}/rows", {"rows": ROWS})
    message = _storage_error(response, written=4)
    assert "4 of the 40 rows were written" in message
    stub.assert_no_pending_responses()
    assert calls.sizes == [25] + [15] * 10 + [25] + [4] * 9
    left = calls.calls[-1]
    assert sorted(int(request["DeleteRequest"]["Key"]["sk"]) for request in left) == [21, 22, 23, 24]
    assert sleeps == BACKOFF + BACKOFF
    # The four rows are stored, so they are counted: row_count is what actually landed.
    assert _counts(dataset_id) == (4, 4)


# --- DELETE .../rows -------------------------------------------------------------------------
def _seed(client: Client, stub: Stubber, calls: Unprocessed, count: int) -> tuple[str, list[dict[str, Any]]]:
    """Insert ``count`` rows through the stub (all accepted); the dataset and the stored items."""
    dataset_id = _dataset(client)
    log_call(stub)  # the change log, before the rows
    batch_call(stub)  # the rows
    batch_call(stub)  # their audit trail
    response = client.post(f"/datasets/{dataset_id}/rows", {"rows": ROWS[:count]})
    assert response.status == 201, response.body
    stub.assert_no_pending_responses()
    items = [request["PutRequest"]["Item"] for request in calls.calls[0]]
    del calls.sizes[:], calls.calls[:]
    calls.deletes = 0
    return dataset_id, items


def _delete_call(stub: Stubber, item: dict[str, Any], *, error: str | None = None) -> None:
    """Expect the conditional DeleteItem of ``item``; answer with ``error`` or the old item."""
    expected = {
        "TableName": settings().rows_table,
        "Key": {"pk": item["pk"], "sk": item["sk"]},
        "ConditionExpression": "id = :id",
        "ExpressionAttributeValues": {":id": item["id"]},
        "ReturnValues": "ALL_OLD",
    }
    if error:
        stub.add_client_error("delete_item", service_error_code=error, expected_params=expected)
        return
    typed = TypeSerializer().serialize
    stub.add_response("delete_item", {"Attributes": {k: typed(v) for k, v in item.items()}}, expected)


@pytest.fixture
def one_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deletes run one after the other, so the stub's answers meet them in order."""
    monkeypatch.setattr(bulk_where, "_WRITERS", 1)


@pytest.mark.usefixtures("one_writer")
def test_bulk_delete_all_accepted(client: Client, stub: Stubber, calls: Unprocessed) -> None:
    dataset_id, items = _seed(client, stub, calls, 5)
    log_call(stub)  # the change log, before the rows
    for item in items[:3]:
        _delete_call(stub, item)
    batch_call(stub)  # audit trail: 3 entries
    response = client.delete(f"/datasets/{dataset_id}/rows", {"row_ids": [item["id"] for item in items[:3]]})
    assert response.status == 200, response.body
    assert response.json() == {"data": {"deleted": 3}}
    stub.assert_no_pending_responses()
    assert calls.sizes == [3]
    assert _counts(dataset_id) == (2, 2)


@pytest.mark.usefixtures("one_writer")
@pytest.mark.parametrize("error", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_bulk_delete_persistently_refused_counts_exactly_the_deletes_that_landed(
    client: Client, stub: Stubber, calls: Unprocessed, error: str
) -> None:
    dataset_id, items = _seed(client, stub, calls, 5)
    log_call(stub)  # the change log, before the rows
    _delete_call(stub, items[0])
    _delete_call(stub, items[1], error=error)  # botocore's retries exhausted
    _delete_call(stub, items[2])
    _delete_call(stub, items[3], error="ConditionalCheckFailedException")  # already gone: not counted
    _delete_call(stub, items[4])
    batch_call(stub)  # audit trail of the three deletes that landed
    response = client.delete(f"/datasets/{dataset_id}/rows", {"row_ids": [item["id"] for item in items]})
    message = _storage_error(response, written=3)
    assert "3 rows were deleted" in message and "1 could not be" in message
    stub.assert_no_pending_responses()
    assert calls.sizes == [3]
    trail = [request["PutRequest"]["Item"]["rid"] for request in calls.calls[0]]
    assert trail == [items[0]["id"], items[2]["id"], items[4]["id"]]
    assert _counts(dataset_id) == (2, 2)  # 5 rows, 3 deleted
