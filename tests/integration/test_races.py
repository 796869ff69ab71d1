"""Races forced at the exact interleaving that loses data, through the real handlers (SPEC §4,
§7): a write overtaken by a replace import's swap or by the dataset's deletion, purges
delivered twice or killed mid-way, upserts of one new value racing, a bulk PATCH racing a
write to another column. Each test steps in at the one point where the other operation must
run (a wrapped store call), so the outcome does not depend on timing.

What must hold after each: the write either landed and is readable, or was refused (409/404)
with nothing of it left; ``row_count``, the workspace's row count and ``dataset_count`` equal
what is readable; a deleted dataset leaves no item behind once purged.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from datasets_core import auth
from datasets_core.config import settings
from datasets_core.logic import datasets as dataset_logic
from datasets_core.store import rows as row_store
from datasets_core.store import workspaces
from tests.iam import recorder

from .conftest import Client, maintenance_round, run_maintenance
from .import_support import drop, run_handler

OWNER = auth.Principal("default", "test", frozenset({"datasets:admin"}))


# --- helpers --------------------------------------------------------------------------------------
def _dataset(client: Client, name: str, rows: int, columns: list[dict[str, Any]] | None = None) -> str:
    created = client.post("/datasets", {"name": name, **({"columns": columns} if columns else {})})
    assert created.status == 201, created.body
    dataset_id = str(created.json()["data"]["id"])
    if rows:
        inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": i} for i in range(rows)]})
        assert inserted.status == 201, inserted.body
    return dataset_id


def _rows(client: Client, dataset_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/datasets/{dataset_id}/rows", params={"limit": "1000"})
    assert response.status == 200, response.body
    return list(response.json()["data"]["rows"])


def _row_count(client: Client, dataset_id: str) -> int:
    return int(client.get(f"/datasets/{dataset_id}").json()["data"]["row_count"])


def _usage() -> dict[str, Any]:
    return workspaces.get("default")


def _replace(name: str, values: list[int]) -> None:
    """A complete ``mode=replace`` import of ``values`` into dataset ``name``."""
    body = "n\n" + "".join(f"{value}\n" for value in values)
    outcome = run_handler(drop(f"{name}/replace.csv", body.encode(), metadata={"mode": "replace"}))
    assert not outcome["batchItemFailures"], outcome


def _leftovers(dataset_id: str) -> list[str]:
    """Every item or file of the dataset still stored anywhere (finished job records, which
    expire through TTL, aside)."""
    found: list[str] = []
    for item in boto3.resource("dynamodb").Table(settings().rows_table).scan()["Items"]:
        if str(item["pk"]).startswith(dataset_id + "#"):
            found.append(f"rows {item['pk']} {item['sk']}")
    for item in boto3.resource("dynamodb").Table(settings().meta_table).scan()["Items"]:
        text = " ".join(str(value) for value in item.values() if isinstance(value, str))
        if dataset_id in text and not (str(item["sk"]).startswith("JOB#") and item.get("expires_at_epoch")):
            found.append(f"meta {item['sk']}")
    listed = boto3.client("s3").list_objects_v2(Bucket=settings().replica_bucket)
    found += [obj["Key"] for obj in listed.get("Contents", []) if f"ds={dataset_id}/" in obj["Key"]]
    return found


@contextmanager
def _once_before(target: Any, name: str, race: Callable[[], None]) -> Iterator[None]:
    """Within the block, run ``race`` once, right before the first call of ``target.name``."""
    original = getattr(target, name)
    fired = {"done": False}

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not fired["done"]:
            fired["done"] = True
            with recorder.as_the_test():  # another client's requests, not this function's calls
                race()
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(target, name, wrapped)
        yield


# --- writes overtaken by a replace import -------------------------------------------------------------
def test_an_insert_overtaken_by_a_replace_swap_is_refused_and_leaves_nothing(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = _dataset(client, "swapped", 3)
    # The insert has read the dataset (generation 0) and allocated its row indexes; the whole
    # replace import runs and swaps before its rows are written.
    with _once_before(row_store, "put_new", lambda: _replace("swapped", [100, 101, 102, 103, 104])):
        response = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": 7}, {"n": 8}]})
    assert response.status == 409, response.body
    assert response.json()["error"]["code"] == "conflict"
    run_maintenance()  # the old generation's purge
    assert sorted(row["n"] for row in _rows(client, dataset_id)) == [100, 101, 102, 103, 104]
    assert _row_count(client, dataset_id) == 5
    assert _usage()["row_count"] == 5
    row_items = [key for key in _leftovers(dataset_id) if re.match(rf"rows {dataset_id}#\d+\.\d+ ", key)]
    assert len(row_items) == 5, row_items  # the new generation's rows, nothing of the refused insert


def test_a_row_delete_overtaken_by_a_replace_swap_counts_nothing(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = _dataset(client, "swapped-delete", 3)
    victim = _rows(client, dataset_id)[0]["id"]
    with _once_before(row_store, "delete_row", lambda: _replace("swapped-delete", [100, 101])):
        response = client.delete(f"/datasets/{dataset_id}/rows/{victim}")
    assert response.status == 409, response.body
    assert _row_count(client, dataset_id) == 2 and _usage()["row_count"] == 2
    assert sorted(row["n"] for row in _rows(client, dataset_id)) == [100, 101]


def test_an_update_overtaken_by_a_replace_swap_is_refused(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = _dataset(client, "swapped-update", 2)
    victim = _rows(client, dataset_id)[0]["id"]
    with _once_before(row_store, "update_fields", lambda: _replace("swapped-update", [100, 101])):
        response = client.patch(f"/datasets/{dataset_id}/rows/{victim}", {"set": {"n": 55}})
    assert response.status == 409, response.body
    assert sorted(row["n"] for row in _rows(client, dataset_id)) == [100, 101]
    assert _row_count(client, dataset_id) == 2 and _usage()["row_count"] == 2


def test_writes_while_a_replace_import_writes_are_refused_with_retry_after(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = _dataset(client, "replacing", 2)
    victim = _rows(client, dataset_id)[0]["id"]
    answers: dict[str, Any] = {}

    def writes_during_the_import() -> None:
        answers["insert"] = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": 9}]})
        answers["update"] = client.patch(f"/datasets/{dataset_id}/rows/{victim}", {"set": {"n": 9}})
        answers["bulk"] = client.patch(f"/datasets/{dataset_id}/rows", {"set": {"n": 9}})
        answers["delete"] = client.delete(f"/datasets/{dataset_id}/rows/{victim}")

    from datasets_core.store import imports as import_store

    original = import_store.swap_generation

    def swap(*args: Any, **kwargs: Any) -> Any:
        writes_during_the_import()  # the new rows are written, the swap has not happened
        return original(*args, **kwargs)

    monkeypatch.setattr(import_store, "swap_generation", swap)
    _replace("replacing", [100, 101, 102])
    for kind, response in answers.items():
        assert response.status == 409, (kind, response.body)
        assert response.headers.get("Retry-After"), (kind, response.headers)
    assert sorted(row["n"] for row in _rows(client, dataset_id)) == [100, 101, 102]
    assert _row_count(client, dataset_id) == 3 and _usage()["row_count"] == 3


# --- writes overtaken by the dataset's deletion ---------------------------------------------------
def _delete_and_purge(dataset_id: str) -> None:
    dataset_logic.delete(OWNER, dataset_id)
    run_maintenance()


def test_an_insert_whose_rows_land_after_the_purge_leaves_no_orphan(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = _dataset(client, "deleted-under-insert", 4)
    with _once_before(row_store, "put_new", lambda: _delete_and_purge(dataset_id)):
        response = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": i} for i in range(7)]})
    assert response.status == 404, response.body
    run_maintenance()
    assert _leftovers(dataset_id) == []
    assert _usage()["row_count"] == 0 and _usage()["dataset_count"] == 0


def test_a_row_delete_overtaken_by_the_dataset_delete_does_not_count_twice(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep = _dataset(client, "kept", 2)
    dataset_id = _dataset(client, "deleted-under-row-delete", 3)
    victim = _rows(client, dataset_id)[0]["id"]
    with _once_before(row_store, "delete_row", lambda: dataset_logic.delete(OWNER, dataset_id)):
        response = client.delete(f"/datasets/{dataset_id}/rows/{victim}")
    assert response.status == 404, response.body
    run_maintenance()
    assert _leftovers(dataset_id) == []
    assert _usage()["row_count"] == _row_count(client, keep) == 2
    assert _usage()["dataset_count"] == 1


def test_an_update_overtaken_by_the_dataset_delete_is_not_found(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = _dataset(client, "deleted-under-update", 3)
    victim = _rows(client, dataset_id)[0]["id"]
    with _once_before(row_store, "update_fields", lambda: dataset_logic.delete(OWNER, dataset_id)):
        response = client.patch(f"/datasets/{dataset_id}/rows/{victim}", {"set": {"n": 5}})
    assert response.status == 404, response.body
    run_maintenance()
    assert _leftovers(dataset_id) == []
    assert _usage()["row_count"] == 0


# --- purges delivered twice, killed, overlapping ----------------------------------------------------
def test_purge_deliveries_that_repeat_and_die_keep_every_count_exact(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasets_core.jobs import engine as job_engine
    from datasets_core.jobs import purge

    monkeypatch.setattr(purge, "PAGE", 2)  # many steps
    keep = _dataset(client, "neighbour", 5)
    dataset_id = _dataset(client, "purged", 13)
    client.patch(f"/datasets/{dataset_id}/rows", {"set": {"flag": True}})  # audit and log items too
    assert _usage()["row_count"] == 18
    client.delete(f"/datasets/{dataset_id}")
    assert _usage()["row_count"] == 5 and _usage()["dataset_count"] == 1
    job_id = next(
        str(item["id"])
        for item in boto3.resource("dynamodb").Table(settings().meta_table).scan()["Items"]
        if str(item["sk"]).startswith("JOB#") and item.get("dataset_id") == dataset_id
    )
    # One step, then the same message delivered again while the continuation is queued.
    maintenance_round(remaining_ms=1_000)
    job_engine.enqueue("default", job_id)
    maintenance_round(remaining_ms=1_000)
    # A run killed mid-step (its lease left to lapse), then the redelivery after the lapse.
    original = row_store.batch_write
    calls = {"n": 0}

    def dies(requests: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(requests)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(row_store, "batch_write", dies)
        with pytest.raises(KeyboardInterrupt):
            run_maintenance()
    later = job_engine.time.time() + 3_600
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(job_engine.time, "time", lambda: later)
        job_engine.enqueue("default", job_id)
        job_engine.enqueue("default", job_id)
        run_maintenance()
    assert job_engine.get("default", job_id)["status"] == "succeeded"
    assert _leftovers(dataset_id) == []
    assert _usage()["row_count"] == _row_count(client, keep) == 5
    assert _usage()["dataset_count"] == 1


# --- upserts of one new value ----------------------------------------------------------------------
def test_upserts_of_one_new_value_racing_create_one_row(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasets_core.logic import upsert

    dataset_id = _dataset(client, "people", 0, [{"name": "email", "type": "string", "indexed": True}])
    body = {"rows": [{"email": "a@x.io", "visits": 1}], "upsert_on": "email"}
    # The first upsert has looked the value up (no row holds it); a second upsert of the same
    # value runs to the end before the first creates its row.
    second: dict[str, Any] = {}

    def racer() -> None:
        second["answer"] = client.post(
            f"/datasets/{dataset_id}/rows",
            {"rows": [{"email": "a@x.io", "plan": "pro"}], "upsert_on": "email"},
        )

    with _once_before(upsert, "_create", racer):
        first = client.post(f"/datasets/{dataset_id}/rows", body)
    assert second["answer"].status == 201 and first.status == 201, (first.body, second["answer"].body)
    rows = _rows(client, dataset_id)
    assert len(rows) == 1 and rows[0]["email"] == "a@x.io"
    assert rows[0]["visits"] == 1 and rows[0]["plan"] == "pro"  # both requests' fields, one row
    assert _row_count(client, dataset_id) == 1 and _usage()["row_count"] == 1


# --- a bulk PATCH racing a write to another column --------------------------------------------------
def test_a_bulk_patch_racing_another_column_write_skips_no_matching_row(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = _dataset(client, "bulk", 0)
    client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"group": "a", "note": str(i)} for i in range(30)]})
    rows = _rows(client, dataset_id)
    original = row_store.update_fields
    lock = threading.Lock()
    nested = threading.local()
    touched = {"n": 0}

    def racing(dataset: Any, item: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        # Before each of the first 10 rows is written, another request changes its unrelated
        # column (the bulk write runs its rows on several threads: one racer at a time).
        if not getattr(nested, "inside", False):
            with lock:
                if touched["n"] < 10:
                    touched["n"] += 1
                    nested.inside = True
                    try:
                        other = client.patch(
                            f"/datasets/{dataset_id}/rows/{item['id']}", {"set": {"note": "changed"}}
                        )
                    finally:
                        nested.inside = False
                    assert other.status == 200, other.body
        return original(dataset, item, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(row_store, "update_fields", racing)
        response = client.patch(
            f"/datasets/{dataset_id}/rows", {"where": {"group": "a"}, "set": {"status": "done"}}
        )
    assert response.status == 200, response.body
    assert response.json()["data"]["updated"] == len(rows) == 30
    after = _rows(client, dataset_id)
    assert all(row["status"] == "done" for row in after)
    assert sum(row["note"] == "changed" for row in after) == 10
