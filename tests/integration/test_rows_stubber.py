"""DynamoDB pushing back while the API inserts rows (Stubber on the rows table's client).

``POST .../rows`` is all or nothing: throttled or unprocessed batches are retried, and when
DynamoDB keeps refusing, the rows that did land are deleted again and no counter moves. The
meta table (row_index blocks, ``row_count``, the plan's row reservation) stays on moto.
"""

from __future__ import annotations

from typing import Any

from botocore.stub import Stubber

from datasets_core.store import datasets as dataset_store
from datasets_core.store import workspaces

from .conftest import Client
from .stubbing import Unprocessed, batch_call

ROWS = [{"n": i} for i in range(40)]  # one full batch of 25 and one of 15


def _dataset(client: Client) -> str:
    created = client.post("/datasets", {"name": "busy", "columns": [{"name": "n", "type": "number"}]})
    assert created.status == 201, created.body
    return str(created.json()["data"]["id"])


def _counts(dataset_id: str) -> tuple[int, int]:
    dataset: dict[str, Any] = dataset_store.get("default", dataset_id)
    return int(dataset["row_count"]), int(workspaces.get("default")["row_count"])


def test_throttled_and_unprocessed_batches_are_retried_and_counted_once(
    client: Client, stub: Stubber
) -> None:
    dataset_id = _dataset(client)
    calls = Unprocessed(stub)
    # rows: the first batch is throttled, then 7 of it come back unprocessed; 3 of the second, once
    batch_call(stub, throttled=True)
    batch_call(stub, unprocessed=7)
    batch_call(stub)
    batch_call(stub, unprocessed=3)
    batch_call(stub)
    # audit-trail entries: one per row, in full batches
    batch_call(stub)
    batch_call(stub)
    response = client.post(f"/datasets/{dataset_id}/rows", {"rows": ROWS})
    assert response.status == 201, response.body
    assert response.json()["data"]["inserted"] == 40
    stub.assert_no_pending_responses()
    assert calls.sizes == [25, 25, 7, 15, 3, 25, 15]
    assert _counts(dataset_id) == (40, 40)


def test_a_batch_refused_every_time_writes_nothing_and_counts_nothing(client: Client, stub: Stubber) -> None:
    dataset_id = _dataset(client)
    calls = Unprocessed(stub)
    for _ in range(10):  # row_store's retry budget for one batch
        batch_call(stub, throttled=True)
    response = client.post(f"/datasets/{dataset_id}/rows", {"rows": ROWS})
    assert response.status == 503, response.body
    error = response.json()["error"]
    assert error["code"] == "internal_error" and "nothing was changed" in error["message"]
    stub.assert_no_pending_responses()
    assert calls.sizes == [25] * 10
    assert _counts(dataset_id) == (0, 0)  # the plan's reservation was given back too


def test_rows_that_landed_before_a_refusal_are_deleted_again(client: Client, stub: Stubber) -> None:
    dataset_id = _dataset(client)
    calls = Unprocessed(stub)
    batch_call(stub)  # the first 25 rows land
    for _ in range(10):
        batch_call(stub, unprocessed=15)  # the other 15 never do
    batch_call(stub)  # the undo: the 25 landed rows deleted in one batch
    response = client.post(f"/datasets/{dataset_id}/rows", {"rows": ROWS})
    assert response.status == 503, response.body
    stub.assert_no_pending_responses()
    assert calls.sizes == [25] + [15] * 10 + [25]
    assert calls.deletes == 25
    assert _counts(dataset_id) == (0, 0)
