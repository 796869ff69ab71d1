"""Purges: remove every item of a deleted dataset (or of a replaced generation), page by page.

A deleted dataset's items are its rows (with their index entries), change-log items,
uniqueness items and audit trail in the rows table, its replica files and versions, and its
import records. The purge walks a fixed list of partitions; its checkpoint is the partition
and the last key read, so a run cut short resumes where it stopped and a redelivered run
deletes what is left (deleting what is gone is harmless). No counter moves: the delete gave
the dataset's rows back to the plan when it happened, so running a purge twice, or two at
once, cannot change any count.

A purge starts ``PURGE_DELAY_SECONDS`` after the delete (the message's delay), so a write
that was already in flight when the dataset was deleted has landed — or failed and taken its
rows back — before the purge reads anything.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from ..config import settings
from ..replica import layout
from ..store import changelog, changes, uniques
from ..store import imports as import_store
from ..store import rows as row_store
from ..store.tables import rows
from . import engine

PAGE = 1000


def request_dataset(workspace: str, dataset_id: str, shards: int, generations: int) -> dict[str, Any]:
    """The job record purging a deleted dataset (written in the delete's transaction)."""
    params = {"shards": shards, "generations": generations, "scope": "dataset"}
    return engine.job_item(workspace, f"purge:{dataset_id}", "purge", dataset_id, params)


def start_dataset(workspace: str, dataset_id: str) -> None:
    engine.enqueue(workspace, f"purge:{dataset_id}", delay_seconds=settings().purge_delay_seconds)


def request_generation(workspace: str, dataset_id: str, shards: int, generation: int) -> None:
    """Purge one replaced (or abandoned) generation of a dataset's rows."""
    params = {"shards": shards, "generation": generation, "scope": "generation"}
    engine.submit(
        workspace,
        f"purge:{dataset_id}:{generation}",
        "purge",
        dataset_id,
        params,
        delay_seconds=settings().purge_delay_seconds,
    )


def partitions(dataset_id: str, params: dict[str, Any]) -> list[str]:
    """Every rows-table partition the purge empties, in a fixed order."""
    shards = int(params["shards"])
    if params.get("scope") == "generation":
        generations = [int(params["generation"])]
    else:
        generations = list(range(int(params["generations"])))
    found: list[str] = []
    for gen in generations:
        found += [f"{dataset_id}#{gen}.{shard}" for shard in range(shards)]
        found += changelog.partitions(dataset_id, gen)
        found += uniques.partitions(dataset_id, gen)
    if params.get("scope") != "generation":
        found += changes.partitions(dataset_id)
    return found


@engine.kind("purge")
def step(job: engine.Job, checkpoint: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Delete one page of the next partition that still holds items."""
    targets = partitions(job.dataset_id, job.params)
    number = int(checkpoint.get("partition", 0))
    if number >= len(targets):
        if job.params.get("scope") != "generation":
            layout.forget_all(job.workspace, job.dataset_id)
            import_store.forget_dataset(job.workspace, job.dataset_id)
        return checkpoint, True
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(targets[number]),
        "ProjectionExpression": "pk, sk",
        "Limit": PAGE,
    }
    if checkpoint.get("after") is not None:
        kwargs["ExclusiveStartKey"] = {"pk": targets[number], "sk": checkpoint["after"]}
    page = rows().query(**kwargs)
    keys = [{"pk": item["pk"], "sk": item["sk"]} for item in page.get("Items", [])]
    row_store.batch_write(row_store.delete_requests(keys))
    last = page.get("LastEvaluatedKey")
    if last is None:
        return {"partition": number + 1, "after": None}, False
    return {"partition": number, "after": last["sk"]}, False
