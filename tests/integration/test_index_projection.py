"""Keys-only indexes: what a row write costs in index writes, what an index page reads, and
how many round trips it waits for (README "Index projections").

Counted with ``bench.inprocess.DynamoMeter``: every DynamoDB request the handlers send, priced
from the item images before and after it, and the longest chain of round trips that wait for
one another (from the code's thread structure, not from timing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from bench import data
from bench.inprocess import Call, DynamoMeter, critical_path
from datasets_core.config import settings
from datasets_core.query import paths
from datasets_core.store import datasets as dataset_store
from datasets_core.store import rows as row_store

from .conftest import Client

ROWS = 200
SHARDS_FOR = 800_000  # expected_rows: 8 shards


@pytest.fixture
def meter(aws_env: None) -> Iterator[DynamoMeter]:
    with DynamoMeter() as installed:
        yield installed


def _dataset(client: Client, name: str) -> str:
    created = client.post("/datasets", {"name": name, "columns": data.COLUMNS, "expected_rows": SHARDS_FOR})
    assert created.status == 201, created.body
    dataset_id = str(created.json()["data"]["id"])
    assert dataset_store.get("default", dataset_id).shards == 8
    return dataset_id


def _rows_of(dataset_id: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(dataset_id)}#\d+\.\d+$")


def _row_writes(calls: list[Call], dataset_id: str) -> tuple[int, int]:
    """(table units, index units) written to the dataset's row items."""
    pattern = _rows_of(dataset_id)
    table = index = 0
    for call in calls:
        for name, key, units in call.writes:
            if name == settings().rows_table and pattern.match(key["pk"]["S"]):
                table += units.table
                index += units.index_total
    return table, index


def _row_updates(calls: list[Call], dataset_id: str) -> list[dict[str, Any]]:
    pattern = _rows_of(dataset_id)
    return [
        call.params
        for call in calls
        if call.operation == "UpdateItem" and pattern.match(call.params["Key"]["pk"]["S"])
    ]


def _set_attributes(update: dict[str, Any]) -> set[str]:
    """Attributes an UpdateItem's SET clause writes."""
    names = update.get("ExpressionAttributeNames", {})
    clause = update["UpdateExpression"].split(" REMOVE ")[0].removeprefix("SET ")
    return {names.get(part.split("=")[0].strip(), part.split("=")[0].strip()) for part in clause.split(",")}


def test_row_writes_write_only_the_index_entries_whose_keys_change(
    client: Client, meter: DynamoMeter
) -> None:
    dataset_id = _dataset(client, "writes")
    meter.take()
    inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": data.rows(0, 10)})
    assert inserted.status == 201, inserted.body
    # A new row enters each of its three indexes once.
    assert _row_writes(meter.take(), dataset_id) == (10, 30)
    row = inserted.json()["data"]["rows"][0]
    path = f"/datasets/{dataset_id}/rows/{row['id']}"

    # An unindexed column: the row only; its UpdateItem names no index attribute at all.
    assert client.patch(path, {"set": {"note": "changed"}}).status == 200
    calls = meter.take()
    assert _row_writes(calls, dataset_id) == (1, 0)
    [update] = _row_updates(calls, dataset_id)
    assert not [
        name for name in update["ExpressionAttributeNames"].values() if re.fullmatch(r"x\d[ps]", name)
    ]

    # An indexed column: its entry moves (a delete and a put); the others stay. Only the sort
    # key is sent: the entry's partition does not change.
    assert client.patch(path, {"set": {"amount": 12345.5}}).status == 200
    calls = meter.take()
    assert _row_writes(calls, dataset_id) == (1, 2)
    [update] = _row_updates(calls, dataset_id)
    assert {name for name in _set_attributes(update) if name.startswith("x")} == {"x2s"}

    # The same value again, and a whole-row replace that keeps the indexed values: no index
    # attribute is set (each is required to be unchanged instead).
    assert client.patch(path, {"set": {"amount": 12345.5}}).status == 200
    same = {key: value for key, value in row.items() if key in {c["name"] for c in data.COLUMNS}}
    assert client.put(path, {**same, "amount": 12345.5, "note": None}).status == 200
    calls = meter.take()
    assert _row_writes(calls, dataset_id) == (2, 0)
    for update in _row_updates(calls, dataset_id):
        assert not {name for name in _set_attributes(update) if name.startswith("x")}, update


def _query(client: Client, dataset_id: str, params: list[tuple[str, str]]) -> dict[str, Any]:
    response = client.get(f"/datasets/{dataset_id}/rows", params=params)
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    "params",
    [
        [("order", "amount"), ("count", "none")],
        [("amount", "gte.2000"), ("order", "amount.desc"), ("count", "none")],
        [("city", "eq.Paris")],  # with its total, counted on the index in the same wave
        [("amount", "gte.2000"), ("amount", "lt.8000"), ("order", "amount")],
    ],
    ids=["order", "range desc", "eq with total", "range with total"],
)
def test_an_index_page_waits_for_three_round_trips(
    client: Client, meter: DynamoMeter, params: list[tuple[str, str]]
) -> None:
    """SPEC §10: the dataset item, every shard's first index page (and the counts of a total)
    at once, then the page's rows in one batched get — on 8 shards."""
    dataset_id = _dataset(client, "reads")
    for start in range(0, ROWS, 100):
        assert client.post(f"/datasets/{dataset_id}/rows", {"rows": data.rows(start, 100)}).status == 201
    query = [*params, ("limit", "5")]
    expected = _query(client, dataset_id, query)  # the key lookup is cached from here on
    meter.take()
    with critical_path() as lane:
        body = _query(client, dataset_id, query)
    calls = meter.take()
    assert body == expected and body["meta"]["plan"].startswith("index:")
    assert len(body["data"]["rows"]) == 5
    waves: dict[int, set[str]] = {}
    for call in calls:
        waves.setdefault(call.depth, set()).add(call.operation + ("(index)" if call.index else ""))
    assert lane.depth == 3, waves
    # The key's rate counter (a new slice of its window) is written beside the dataset read.
    assert waves[1] - {"UpdateItem"} == {"Query"}, waves
    assert {**waves, 1: {"Query"}} == {1: {"Query"}, 2: {"Query(index)"}, 3: {"BatchGetItem"}}
    gets = [call for call in calls if call.operation == "BatchGetItem"]
    index_entries = sum(call.items for call in calls if call.index)
    # items_read: the index entries and the rows fetched (the page and its look-ahead row).
    fetched = 5 + (1 if body["meta"]["next_cursor"] else 0)
    assert sum(call.items for call in gets) == fetched
    assert body["meta"]["items_read"] == index_entries + fetched
    # The page reads its rows as the index is read: eventually consistent (half the units).
    assert all(not call.params["RequestItems"][settings().rows_table].get("ConsistentRead") for call in gets)


def test_a_row_whose_index_entry_is_stale_is_not_returned_at_the_old_place(client: Client) -> None:
    """Indexes are eventually consistent: an entry may describe a value its row no longer has
    (or a row deleted since). Such an entry yields no row, so rows keep their exact order."""
    dataset_id = _dataset(client, "stale")
    created = client.post(f"/datasets/{dataset_id}/rows", {"rows": data.rows(0, 3)}).json()["data"]["rows"]
    dataset = dataset_store.get("default", dataset_id)
    amount = next(column for column in dataset.columns if column.name == "amount")
    items = [row_store.get(dataset, row["row_index"]) for row in created]
    entries = [
        {"pk": item["pk"], "sk": item["sk"], "_key": bytes(item[f"x{amount.slot}s"])}
        for item in items
        if item
    ]
    stale = dict(entries[1], _key=row_store.index_keys(dataset, 1, {"amount": -1})[f"x{amount.slot}s"])
    gone = dict(entries[2], sk=999)
    meter = paths.Meter()
    fetched = paths.fetch_rows(
        dataset, int(amount.slot or 0), [entries[0], stale, gone], meter, consistent=True
    )
    assert [item["id"] for item in fetched] == [created[0]["id"]]
    assert meter.items_read == 2  # both existing rows were read; the missing one was not there
