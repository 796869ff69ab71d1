"""Parallel chunked imports (SPEC §7, §11; issues 10, 13, 14): a file written in chunks, one message
each, counted exactly once under redelivery and crashes, racing API writes and deletes, and
published as a snapshot version made from the file."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from datasets_core import jsonutil
from datasets_core.config import settings
from datasets_core.imports import chunks
from datasets_core.jobs import compaction
from datasets_core.replica import layout
from datasets_core.store import changelog, workspaces
from datasets_core.store import datasets as dataset_store
from datasets_core.store import imports as import_store
from datasets_core.store import rows as row_store
from tests.iam import recorder

from .conftest import Client, run_maintenance
from .import_support import drop, queued_messages, run_handler
from .test_imports import all_rows, dataset_named, numbered_csv, report_of, stored_items


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Chunks of 10 rows (the default is 100,000)."""
    monkeypatch.setenv("IMPORT_PART_ROWS", "10")
    settings.cache_clear()
    return 10


def chunk_of(message: str) -> int:
    return int(json.loads(message)["import_chunk"]["chunk"])


def start(key: str, data: bytes, metadata: dict[str, str] | None = None) -> tuple[str, list[str]]:
    """Drop a file and run its validation; the notification and the chunk messages it sent."""
    body = drop(key, data, metadata)
    assert run_handler(body) == {"batchItemFailures": []}
    messages = queued_messages()
    assert messages and all("import_chunk" in json.loads(m) for m in messages)
    return body, sorted(messages, key=chunk_of)


def replica_query(client: Client, dataset_id: str, **params: str) -> dict[str, Any]:
    """A query only the replica answers (``neq`` on an unindexed column), every row."""
    response = client.get(
        f"/datasets/{dataset_id}/rows", params={"label": "neq.~", "limit": "1000", **params}
    )
    assert response.status == 200, response.body
    body = response.json()
    assert body["meta"]["plan"] == "replica", body["meta"]
    return body


def _logged(dataset_id: str, generation: int, after: int) -> list[changelog.Entry]:
    """The change log after ``after``, read by the test (its shard reads run on worker threads)."""
    with recorder.as_the_test():
        return changelog.since(dataset_id, generation, after, row_store.ReadMeter())


# --- exactly once ---------------------------------------------------------------------------------
def test_every_chunk_delivered_twice_in_any_order_counts_each_row_once(
    client: Client, small_chunks: int
) -> None:
    # Given a 95-row file split into 10 chunks
    body, messages = start("twice/data.csv", numbered_csv(95))
    assert [chunk_of(m) for m in messages] == list(range(10))
    report = report_of(client, body)
    assert (report["status"], report["chunks_total"], report["chunks_done"]) == ("running", 10, 0)
    # When every chunk message arrives twice, in a shuffled order
    deliveries = messages * 2
    random.Random(7).shuffle(deliveries)
    for message in deliveries:
        assert run_handler(message) == {"batchItemFailures": []}
    # Then each row is there once and counted once
    dataset = dataset_named(client, "twice")
    rows = all_rows(client, dataset["id"])
    assert [row["n"] for row in rows] == list(range(1, 96))
    assert [row["row_index"] for row in rows] == list(range(95))
    assert dataset["row_count"] == 95 and len(stored_items(dataset["id"])) == 95
    assert workspaces.get("default")["row_count"] == 95
    report = report_of(client, body)
    assert (report["status"], report["rows_imported"], report["chunks_done"]) == ("succeeded", 95, 10)
    assert report["max_concurrent_chunks"] == 1  # one after the other in this test
    # And a late third delivery of any of them changes nothing
    run_handler(messages[4])
    assert dataset_named(client, "twice")["row_count"] == 95


def test_a_chunk_that_crashes_mid_write_is_finished_exactly_once_and_api_writes_stand(
    client: Client, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given chunks written in sub-batches of 4 rows, and a crash inside chunk 2 after its first one
    monkeypatch.setattr(chunks, "SUB_ROWS", 4)
    write = row_store.batch_write
    crashed = []

    def crash_once_in_chunk_2(requests: list[dict[str, Any]], **kwargs: Any) -> Any:
        keys = [int(r["PutRequest"]["Item"]["sk"]) for r in requests if "PutRequest" in r]
        if not crashed and keys and min(keys) == 24:
            crashed.append(keys)
            raise RuntimeError("the invocation died inside chunk 2")
        return write(requests, **kwargs)

    monkeypatch.setattr(row_store, "batch_write", crash_once_in_chunk_2)
    body, messages = start("crashy/data.csv", numbered_csv(45))
    outcomes = [run_handler(message) for message in messages]
    assert [len(outcome["batchItemFailures"]) for outcome in outcomes] == [0, 0, 1, 0, 0]
    dataset = dataset_named(client, "crashy")
    # Rows 20-23 of chunk 2 landed; the chunk was not counted.
    assert dataset["row_count"] == 35 and len(stored_items(dataset["id"])) == 39
    assert report_of(client, body)["rows_imported"] == 35
    # When, before the redelivery, the API updates one landed row of chunk 2 and deletes another
    landed = {row["row_index"]: row for row in all_rows(client, dataset["id"])}
    updated = client.patch(f"/datasets/{dataset['id']}/rows/{landed[21]['id']}", {"set": {"label": "edited"}})
    assert updated.status == 200, updated.body
    assert client.delete(f"/datasets/{dataset['id']}/rows/{landed[22]['id']}").status == 200
    # And the chunk's message comes back
    assert run_handler(messages[2], receive_count=2) == {"batchItemFailures": []}
    # Then the chunk is complete, counted once, and the API's update and delete stand
    rows = {row["row_index"]: row for row in all_rows(client, dataset["id"])}
    assert sorted(rows) == [i for i in range(45) if i != 22]
    assert rows[21]["label"] == "edited" and rows[23]["label"] == "row 24"
    dataset = dataset_named(client, "crashy")
    assert dataset["row_count"] == 44 and len(stored_items(dataset["id"])) == 44
    assert workspaces.get("default")["row_count"] == 44
    report = report_of(client, body)
    assert (report["status"], report["rows_imported"], report["chunks_done"]) == ("succeeded", 45, 5)
    # And the replica agrees: the update and the delete are in its delta
    answer = replica_query(client, dataset["id"])
    assert [row["row_index"] for row in answer["data"]["rows"]] == sorted(rows)
    assert {row["row_index"]: row["label"] for row in answer["data"]["rows"]}[21] == "edited"


def test_a_dataset_deleted_while_chunks_run_leaves_no_row_and_exact_usage(
    client: Client, small_chunks: int
) -> None:
    # Given an append into an existing dataset with 3 rows, two of its five chunks written
    created = client.post("/datasets", {"name": "doomed"}).json()["data"]
    client.post(f"/datasets/{created['id']}/rows", {"rows": [{"n": i} for i in range(3)]})
    body, messages = start("doomed/data.csv", numbered_csv(45))
    for message in messages[:2]:
        run_handler(message)
    assert dataset_named(client, "doomed")["row_count"] == 23
    # When the dataset is deleted, then the other chunks arrive
    assert client.delete(f"/datasets/{created['id']}").status == 200
    for message in messages[2:]:
        assert run_handler(message) == {"batchItemFailures": []}
    # Then the import failed, saying why, and the workspace's usage is exact (never negative)
    report = client.get(f"/imports/{report_of(client, body)['id']}").json()["data"]
    assert report["status"] == "failed" and "deleted" in report["reason"]
    assert workspaces.get("default")["row_count"] == 0
    # And once purged, not one item of the dataset is left
    run_maintenance()
    assert stored_items(created["id"]) == []


# --- replace and API writes -----------------------------------------------------------------------
def test_writes_during_a_replace_answer_409_and_nothing_acknowledged_is_lost(
    client: Client, small_chunks: int
) -> None:
    created = client.post("/datasets", {"name": "swap"}).json()["data"]
    dataset_id = created["id"]
    old = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": i} for i in range(3)]}).json()["data"]
    # Given a replace import whose chunks are being written
    body, messages = start("swap/new.csv", numbered_csv(25, start=100), {"mode": "replace"})
    run_handler(messages[0])
    # When the API writes meanwhile, every write is refused with 409 and changes nothing
    insert = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": 7}]})
    assert insert.status == 409 and insert.json()["error"]["code"] == "conflict"
    assert insert.json()["error"]["details"]["import_id"] == report_of(client, body)["id"]
    patch = client.patch(f"/datasets/{dataset_id}/rows/{old['rows'][0]['id']}", {"set": {"n": 8}})
    assert patch.status == 409
    assert client.delete(f"/datasets/{dataset_id}/rows/{old['rows'][1]['id']}").status == 409
    # Readers still see exactly the old rows
    assert sorted(row["n"] for row in all_rows(client, dataset_id)) == [0, 1, 2]
    for message in messages[1:]:
        run_handler(message)
    # Then after the swap: exactly the file's rows, counts exact, and writes work again
    assert [row["n"] for row in all_rows(client, dataset_id)] == list(range(100, 125))
    assert client.get(f"/datasets/{dataset_id}").json()["data"]["row_count"] == 25
    assert client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": 7}]}).status == 201
    run_maintenance()
    assert workspaces.get("default")["row_count"] == 26
    assert len(stored_items(dataset_id)) == 26


def test_an_insert_overtaken_by_a_whole_replace_is_refused_and_not_counted(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an insert that wrote its rows into the dataset's generation but has not counted them
    created = client.post("/datasets", {"name": "race"}).json()["data"]
    dataset_id = created["id"]
    put_new = row_store.put_new
    replaced: list[str] = []

    def then_a_replace_runs(items: list[dict[str, Any]]) -> Any:
        result = put_new(items)
        if not replaced:  # ... when a whole replace import runs and swaps the generation
            # (the file is put by the test, not by the insert's function)
            outside = recorder.CURRENT_FUNCTION.set(None)
            try:
                replaced.append(drop("race/new.csv", numbered_csv(5), {"mode": "replace"}))
            finally:
                recorder.CURRENT_FUNCTION.reset(outside)
            run_handler(replaced[0])
        return result

    monkeypatch.setattr(row_store, "put_new", then_a_replace_runs)
    insert = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": 1000 + i} for i in range(7)]})
    # Then the insert is refused: its rows went to a generation that is no longer the dataset's
    assert insert.status == 409, insert.body
    assert report_of(client, replaced[0])["status"] == "succeeded"
    rows = all_rows(client, dataset_id)
    assert [row["n"] for row in rows] == [1, 2, 3, 4, 5]
    # And nothing counts it: the dataset's count, the workspace's usage and the rows agree
    assert client.get(f"/datasets/{dataset_id}").json()["data"]["row_count"] == 5
    run_maintenance()
    assert workspaces.get("default")["row_count"] == 5
    assert len(stored_items(dataset_id)) == 5


# --- the snapshot an import writes from its file ------------------------------------------------------
def test_an_import_publishes_a_snapshot_from_its_file_and_replica_queries_read_nothing_back(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a 10,000-row file imported in 4 chunks
    monkeypatch.setenv("IMPORT_PART_ROWS", "2500")
    settings.cache_clear()
    lines = ["n,label,score"] + [f"{i},row {i},{i % 97}.5" for i in range(10_000)]
    body, messages = start("big/data.csv", ("\n".join(lines) + "\n").encode())
    for message in messages:
        run_handler(message)
    dataset = dataset_named(client, "big")
    # Then the dataset points at a version made of the import's parts
    versions = layout.versions("default", dataset["id"])
    current = dataset_store.get("default", dataset["id"]).replica
    assert [(v.cause, v.rows) for v in versions] == [("import", 10_000)] and current == versions[0]
    # And a replica query reads nothing from DynamoDB: the snapshot's cut is past the import's
    # own change-log items (the write margin has passed, no other writer logged meanwhile)
    answer = replica_query(client, dataset["id"], score="gte.90", order="score.desc,n.asc")
    assert answer["meta"]["replica"] == {
        "version": versions[0].version,
        "snapshot_rows": 10_000,
        "delta_rows": 0,
    }
    assert answer["meta"]["items_read"] == 0 and current.imports == ()
    expected = sorted((i for i in range(10_000) if i % 97 >= 90), key=lambda i: (-(i % 97), i))
    assert [row["n"] for row in answer["data"]["rows"]] == expected[:1000]
    assert answer["data"]["total"] == len(expected)
    # And the snapshot's rows are the rows DynamoDB holds (ids, timestamps, values)
    record = dataset_store.get("default", dataset["id"])
    items = sorted(stored_items(dataset["id"]), key=lambda item: int(item["sk"]))
    walk = [row_store.from_item(record, item) for item in items[5000:5300]]
    same = replica_query(client, dataset["id"], limit="300", offset="5000")
    assert json.loads(json.dumps(same["data"]["rows"])) == json.loads(jsonutil.dumps(walk))


def test_an_append_builds_on_the_current_snapshot_and_keeps_api_writes_in_the_delta(
    client: Client, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One process, one clock: no allowance for clocks that disagree (the compaction is moments old).
    monkeypatch.setattr(changelog, "CLOCK_ALLOWANCE", 0)
    # Given a dataset with a compacted snapshot of 30 API rows, and 2 API writes after it
    created = client.post("/datasets", {"name": "layers"}).json()["data"]
    dataset_id = created["id"]
    first = client.post(
        f"/datasets/{dataset_id}/rows", {"rows": [{"n": i, "label": "api"} for i in range(30)]}
    )
    compaction.request(dataset_store.get("default", dataset_id))
    run_maintenance()
    base = dataset_store.get("default", dataset_id).replica
    assert base is not None and base.cause == "compaction"
    client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": 500, "label": "after"}]})
    client.patch(
        f"/datasets/{dataset_id}/rows/{first.json()['data']['rows'][0]['id']}", {"set": {"label": "edited"}}
    )
    # When a file of 25 rows is appended in 3 chunks, with an API insert between two of them
    body, messages = start("layers/data.csv", numbered_csv(25, start=100))
    run_handler(messages[0])
    client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": 600, "label": "during"}]})
    for message in messages[1:]:
        run_handler(message)
    # Then the new version holds the old snapshot's parts (copied into its folder) and the file's
    record = dataset_store.get("default", dataset_id)
    pointer = record.replica
    assert pointer is not None and pointer.cause == "import" and pointer.rows == 30 + 25
    # And its cut stops just before the first change the snapshot does not hold (the API insert
    # after the base), so the import's later log items stay skipped by name
    logged = _logged(dataset_id, record.generation, base.cut)
    first_api_write = next(entry for entry in logged if entry.origin == "api")
    assert pointer.cut == first_api_write.position - 1
    assert [import_id for import_id, _ in pointer.imports] == [report_of(client, body)["id"]]
    folder = layout.version_prefix(dataset_store.get("default", dataset_id), pointer.version)
    assert all(part.key.startswith(folder) for part in pointer.parts)
    # And a replica query sees all 57 rows: the API's writes come from the delta, the file's from the snapshot
    answer = replica_query(client, dataset_id)
    walk = all_rows(client, dataset_id)
    assert answer["data"]["rows"] == walk and len(walk) == 30 + 1 + 1 + 25
    assert answer["meta"]["replica"]["delta_rows"] == 3  # the insert after, the edit, the insert during
    assert {row["label"] for row in walk if row["n"] == 0} == {"edited"}


def test_compaction_during_an_import_stops_before_it_so_the_import_still_publishes(
    client: Client, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changelog, "CLOCK_ALLOWANCE", 0)  # one process, one clock
    created = client.post("/datasets", {"name": "busy"}).json()["data"]
    dataset_id = created["id"]
    client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": i, "label": "api"} for i in range(5)]})
    # Given an import in its write stage, and an API insert after it began
    body, messages = start("busy/data.csv", numbered_csv(25, start=100))
    run_handler(messages[0])
    client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": 9, "label": "during"}]})
    # When a compaction runs meanwhile (twice: the second finds nothing it may fold)
    compaction.request(dataset_store.get("default", dataset_id))
    run_maintenance()
    compaction.request(dataset_store.get("default", dataset_id))
    run_maintenance()
    compacted = dataset_store.get("default", dataset_id).replica
    plan = import_store.get("default", report_of(client, body)["id"])["plan"]
    # Then it cut the change log before the import began: it holds none of the import's rows
    assert compacted is not None and compacted.cause == "compaction"
    assert compacted.cut < int(plan["started_position"])
    assert compacted.rows == 5
    assert [v.cause for v in layout.versions("default", dataset_id)] == ["compaction"]  # not twice
    # And the import, once its chunks are written, publishes on top of it
    for message in messages[1:]:
        run_handler(message)
    pointer = dataset_store.get("default", dataset_id).replica
    assert pointer is not None and pointer.cause == "import" and pointer.rows == 5 + 25
    answer = replica_query(client, dataset_id)
    assert answer["data"]["rows"] == all_rows(client, dataset_id)
    assert answer["meta"]["replica"]["delta_rows"] == 1  # the insert made during the import


def test_a_replace_swaps_in_a_snapshot_of_its_file(client: Client, small_chunks: int) -> None:
    created = client.post("/datasets", {"name": "fresh"}).json()["data"]
    dataset_id = created["id"]
    client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": i} for i in range(4)]})
    body, messages = start("fresh/new.csv", numbered_csv(25, start=100), {"mode": "replace"})
    for message in messages:
        run_handler(message)
    pointer = dataset_store.get("default", dataset_id).replica
    assert pointer is not None and (pointer.cause, pointer.rows, pointer.cut) == ("replace", 25, 0)
    answer = replica_query(client, dataset_id)
    assert answer["meta"]["items_read"] == 0 and answer["meta"]["replica"]["delta_rows"] == 0
    assert answer["data"]["rows"] == all_rows(client, dataset_id)
    assert [row["n"] for row in answer["data"]["rows"]] == list(range(100, 125))


def test_a_publish_that_loses_a_race_retries_on_the_new_snapshot_with_every_file_in_place(
    client: Client, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an import about to publish, and a compaction that publishes first (the pointer moves)
    monkeypatch.setattr(changelog, "CLOCK_ALLOWANCE", 0)
    created = client.post("/datasets", {"name": "raced"}).json()["data"]
    dataset_id = created["id"]
    client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": i, "label": "api"} for i in range(4)]})
    compaction.request(dataset_store.get("default", dataset_id))
    run_maintenance()
    body, messages = start("raced/data.csv", numbered_csv(15, start=100))
    set_replica = dataset_store.set_replica
    raced: list[int] = []

    def moved_once(dataset: Any, pointer: Any, *, expected: Any) -> None:
        if not raced:
            raced.append(pointer.version)
            raise dataset_store.Conflict("The dataset's replica moved meanwhile.")
        set_replica(dataset, pointer, expected=expected)

    monkeypatch.setattr(dataset_store, "set_replica", moved_once)
    for message in messages:
        run_handler(message)
    # Then the retry published, and every part it names is there (none lost to the first try)
    pointer = dataset_store.get("default", dataset_id).replica
    assert raced and pointer is not None and pointer.cause == "import" and pointer.rows == 4 + 15
    answer = replica_query(client, dataset_id)
    assert answer["data"]["rows"] == all_rows(client, dataset_id)
    assert answer["meta"]["replica"]["snapshot_rows"] == 19
    assert [v.version for v in layout.versions("default", dataset_id)] == [pointer.version, 1]


def test_an_import_inside_the_write_margin_keeps_the_base_cut_and_its_items_skipped_by_name(
    client: Client, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an append import whose change-log items are all newer than the write margin
    monkeypatch.setenv("CUT_MARGIN_SECONDS", "3600")
    settings.cache_clear()
    body, messages = start("recent/data.csv", numbered_csv(25))
    for message in messages:
        run_handler(message)
    record = dataset_store.get("default", dataset_named(client, "recent")["id"])
    # Then its snapshot's cut stays before the import's items (a write logged inside the margin
    # may not have landed yet) and names the import, whose items readers then read and skip
    pointer = record.replica
    logged = _logged(record.id, record.generation, 0)
    assert pointer is not None and len(logged) == len(messages)
    assert pointer.cut < min(entry.position for entry in logged)
    assert [import_id for import_id, _ in pointer.imports] == [report_of(client, body)["id"]]
    answer = replica_query(client, record.id)
    assert answer["meta"]["items_read"] == len(messages) and answer["meta"]["replica"]["delta_rows"] == 0
    assert answer["data"]["rows"] == all_rows(client, record.id) and len(answer["data"]["rows"]) == 25


def test_an_import_publishing_while_another_writes_leaves_that_one_a_base_to_publish_on(
    client: Client, small_chunks: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changelog, "CLOCK_ALLOWANCE", 0)  # one process, one clock
    created = client.post("/datasets", {"name": "pair"}).json()["data"]
    dataset_id = created["id"]
    # Given two append imports into one dataset: the second starts before the first finishes
    first_body, first_messages = start("pair/first.csv", numbered_csv(20))
    run_handler(first_messages[0])
    second_body, second_messages = start("pair/second.csv", numbered_csv(20, start=500))
    run_handler(second_messages[0])
    # When the first finishes and publishes while the second is still writing
    for message in first_messages[1:]:
        run_handler(message)
    first = dataset_store.get("default", dataset_id).replica
    second_plan = import_store.get("default", report_of(client, second_body)["id"])["plan"]
    # Then the first's cut stays before the second began (it holds none of the second's rows)
    assert first is not None and first.cause == "import" and first.rows == 20
    assert first.cut < int(second_plan["started_position"])
    # And the second, once written, still publishes its rows from its file on top of it
    for message in second_messages[1:]:
        run_handler(message)
    second = dataset_store.get("default", dataset_id).replica
    assert second is not None and second.cause == "import" and second.rows == 40
    answer = replica_query(client, dataset_id)
    assert answer["data"]["rows"] == all_rows(client, dataset_id) and len(answer["data"]["rows"]) == 40
    assert answer["meta"]["replica"]["delta_rows"] == 0
