"""Background work the API hands off: purging rows of deleted datasets and replaced generations,
backfilling new indexes and clearing dropped ones. Tasks travel on the maintenance queue."""

from __future__ import annotations

import json
from typing import Any

from .. import aws
from ..config import settings
from ..observability import logger
from ..store import datasets as dataset_store
from ..store import rows as row_store


def request_purge(workspace: str, dataset_id: str) -> None:
    """Queue the removal of a deleted dataset's rows.

    The dataset is already gone for readers and a ``PURGE#`` marker records the work, so a
    failed send is logged rather than failing the request; the marker is re-queued by the
    maintenance sweep.
    """
    queue_url = settings().maintenance_queue_url
    if not queue_url:
        logger.warning(
            "no maintenance queue configured; purge left pending", extra={"dataset_id": dataset_id}
        )
        return
    try:
        aws.client("sqs").send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(
                {"task": "purge_dataset", "workspace": workspace, "dataset_id": dataset_id}
            ),
        )
    except Exception:  # noqa: BLE001 - the PURGE marker keeps the work; see docstring
        logger.exception("could not queue dataset purge", extra={"dataset_id": dataset_id})


def request_reindex(workspace: str, dataset_id: str) -> None:
    """Queue the backfill of new indexes and the cleanup of dropped ones."""
    _send({"task": "reindex", "workspace": workspace, "dataset_id": dataset_id})


def request_generation_purge(workspace: str, dataset_id: str, generation: int) -> None:
    """Queue the removal of a replaced generation of a dataset's rows."""
    _send(
        {
            "task": "purge_generation",
            "workspace": workspace,
            "dataset_id": dataset_id,
            "generation": generation,
        }
    )


def _send(task: dict[str, Any]) -> None:
    queue_url = settings().maintenance_queue_url
    if not queue_url:
        logger.warning("no maintenance queue configured; task left undone", extra={"task": task})
        return
    aws.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(task))


# --- the worker's side ------------------------------------------------------------------------
def run_task(task: dict[str, Any]) -> None:
    """Carry out one queued task; safe to run twice (every step is idempotent)."""
    kind = task.get("task")
    workspace, dataset_id = str(task["workspace"]), str(task["dataset_id"])
    if kind == "purge_dataset":
        removed = _purge_all_generations(workspace, dataset_id)
        dataset_store.finish_purge(workspace, dataset_id, removed)
    elif kind == "purge_generation":
        _purge_partitions(_shell(workspace, dataset_id), int(task["generation"]))
    elif kind == "reindex":
        _reindex(workspace, dataset_id)
    else:
        logger.error("unknown maintenance task", extra={"task": task})


def _shell(workspace: str, dataset_id: str) -> dict[str, Any]:
    """Enough of a dataset to address its partitions, also once its item is gone."""
    marker = dataset_store.purge_marker(workspace, dataset_id)
    if marker is not None:
        return {"id": dataset_id, "shards": marker["shards"], "generation": marker.get("generation", 0)}
    return dataset_store.get(workspace, dataset_id)


def _purge_all_generations(workspace: str, dataset_id: str) -> int:
    dataset = _shell(workspace, dataset_id)
    return sum(_purge_partitions(dataset, gen) for gen in range(int(dataset.get("generation", 0)) + 1))


def _purge_partitions(dataset: dict[str, Any], gen: int) -> int:
    meter = row_store.ReadMeter()
    removed = 0
    for pk in row_store.partitions(dataset, gen):
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in row_store.query_partition(pk, meter)]
        row_store.batch_write(row_store.delete_requests(keys))
        removed += len(keys)
    return removed


def _reindex(workspace: str, dataset_id: str) -> None:
    dataset = dataset_store.get(workspace, dataset_id)
    building = [c for c in dataset.get("columns", []) if c.get("index_status") == "building"]
    retired = [int(c["retired_slot"]) for c in dataset.get("columns", []) if c.get("retired_slot")]
    if building or retired:
        meter = row_store.ReadMeter()
        for pk in row_store.partitions(dataset):
            for item in row_store.query_partition(pk, meter):
                row = row_store.from_item(dataset, item)
                row_store.set_index_entries(dataset, item, row, building, retired)
    dataset_store.finish_reindex(workspace, dataset_id, [c["name"] for c in building], retired)
