"""Background jobs longer than one invocation, on the local stack (SPEC §11).

A 100,000-row dataset arrives through the drop folder; an index is added and backfilled by
the maintenance function, whose context reports a 10-second timeout
(``MAINTENANCE_TIMEOUT_SECONDS``), so the backfill must stop, checkpoint and continue in
fresh invocations several times (its job record counts the runs). The index then serves
every row. The dataset is deleted: its purge (continued the same way) leaves no item of it
in any table and no file of its replica, and the workspace's counts are exact.

The stack is this module's own (the setting is the stack's), with a one-second purge delay.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import Stack, local_stack, wait_for

ROWS = 100_000
DATASET = "long jobs"
MAINTENANCE_TIMEOUT_SECONDS = 10
META, ROWS_TABLE, REPLICA_BUCKET = "datasets-meta", "datasets-rows", "datasets-replica-local"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with local_stack(
        Path(tmp_path_factory.mktemp("long-jobs")),
        MAINTENANCE_TIMEOUT_SECONDS=str(MAINTENANCE_TIMEOUT_SECONDS),
        PURGE_DELAY_SECONDS="1",
    ) as running:
        yield running


def parquet(rows: int) -> bytes:
    numbers = pa.array(range(rows), pa.int64())
    table = pa.table(
        {
            "n": numbers,
            "name": pa.array([f"name-{n}" for n in range(rows)]),
            "group": pa.array([n % 10 for n in range(rows)], pa.int64()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=20_000)
    return sink.getvalue()


def jobs(stack: Stack, prefix: str) -> list[dict[str, Any]]:
    table = stack.client("dynamodb")
    answer = table.query(
        TableName=META,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :job)",
        ExpressionAttributeValues={":pk": {"S": "WS#default"}, ":job": {"S": f"JOB#{prefix}"}},
        ConsistentRead=True,
    )
    return [{name: _plain(value) for name, value in item.items()} for item in answer["Items"]]


def _plain(value: dict[str, Any]) -> Any:
    kind, inner = next(iter(value.items()))
    if kind == "N":
        return int(inner)
    if kind == "M":
        return {name: _plain(v) for name, v in inner.items()}
    return inner


def items_naming(stack: Stack, table: str, dataset_id: str) -> list[dict[str, Any]]:
    """Every item of ``table`` that mentions the dataset (a whole-table scan: this stack's own)."""
    client = stack.client("dynamodb")
    found, kwargs = [], {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        found += [item for item in page["Items"] if dataset_id in json.dumps(item)]
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_a_100k_row_index_backfill_and_purge_continue_across_invocations(stack: Stack) -> None:
    # Given 100,000 rows imported through the drop folder,
    stack.client("s3").put_object(
        Bucket="datasets-drop-local", Key=f"drop/default/{DATASET}/rows.parquet", Body=parquet(ROWS)
    )

    def imported() -> dict[str, Any] | None:
        listing = stack.request("GET", "/datasets", params={"q": DATASET}).json()["data"]
        found = [d for d in listing if d["name"] == DATASET]
        if not found:
            return None
        listed = stack.request("GET", f"/datasets/{found[0]['id']}/imports").json()["data"]
        return listed[0] if listed and listed[0]["status"] in ("succeeded", "failed") else None

    record = wait_for(imported, 240, "the 100,000-row import", interval=1)
    assert record["status"] == "succeeded" and record["rows_imported"] == ROWS, record
    dataset_id = record["dataset_id"]

    # when an index is added on n (a backfill of every row),
    added = stack.request("PATCH", f"/datasets/{dataset_id}", json={"indexes": {"add": ["n"]}})
    assert added.status_code == 200, added.text

    def index_ready() -> bool:
        response = stack.request("GET", f"/datasets/{dataset_id}")
        if response.status_code != 200:  # a poll that meets a busy stack (503/504) polls again
            return False
        columns = response.json()["data"]["columns"]
        return any(c["name"] == "n" and c.get("index_status") == "ready" for c in columns)

    wait_for(index_ready, 600, "the index on n to be ready", interval=1)
    # then the backfill ran in at least four invocations (three continuations),
    [backfill] = jobs(stack, f"reindex:{dataset_id}:")
    assert backfill["status"] == "succeeded" and backfill["runs"] >= 4, backfill
    # and the index serves every row: a walk in index order meets each n once, in order.
    seen: list[int] = []
    cursor = None
    while True:
        params = {"order": "n", "select": "n", "limit": "1000", "count": "none"}
        if cursor:
            params["cursor"] = cursor
        body = stack.request("GET", f"/datasets/{dataset_id}/rows", params=params).json()
        assert body["meta"]["plan"] == "index:n", body["meta"]
        seen += [row["n"] for row in body["data"]["rows"]]
        cursor = body["meta"]["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(ROWS))
    for n in (0, 4_242, 77_777, ROWS - 1):
        spot = stack.request("GET", f"/datasets/{dataset_id}/rows", params={"n": f"eq.{n}"}).json()
        assert spot["meta"]["plan"] == "index:n"
        assert [(row["n"], row["name"], row["group"]) for row in spot["data"]["rows"]] == [
            (n, f"name-{n}", n % 10)
        ]

    # When the dataset is deleted,
    assert stack.request("DELETE", f"/datasets/{dataset_id}").status_code == 200

    def purged() -> dict[str, Any] | None:
        found = jobs(stack, f"purge:{dataset_id}")
        return found[0] if found and found[0]["status"] in ("succeeded", "failed") else None

    purge = wait_for(purged, 600, "the purge", interval=1)
    # then the purge, continued across invocations too, left no item of it in any table
    assert purge["status"] == "succeeded" and purge["runs"] >= 4, purge
    assert items_naming(stack, ROWS_TABLE, dataset_id) == []
    leftovers = [
        item for item in items_naming(stack, META, dataset_id) if not item["sk"]["S"].startswith("JOB#")
    ]
    assert leftovers == []
    replica = stack.client("s3").list_objects_v2(Bucket=REPLICA_BUCKET, Prefix="replica/")
    assert [obj["Key"] for obj in replica.get("Contents", []) if dataset_id in obj["Key"]] == []
    # and the workspace's counts are exact: no dataset, every row of the plan free again.
    meta = stack.client("dynamodb")
    workspace = meta.query(
        TableName=META,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "WS#default"}},
        ConsistentRead=True,
    )["Items"]
    plan = next(item for item in workspace if item["sk"]["S"] == "WORKSPACE")
    allowances = [
        int(item["allowance"]["N"]) for item in workspace if item["sk"]["S"].startswith("ALLOWANCE#")
    ]
    assert int(plan.get("dataset_count", {"N": "0"})["N"]) == 0
    max_rows = int(plan.get("max_rows", {"N": "1000000"})["N"])
    assert sum(allowances) == max_rows
