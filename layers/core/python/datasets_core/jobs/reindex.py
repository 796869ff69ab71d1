"""Index backfill: give every existing row its entries for newly indexed columns, and remove
the entries of dropped ones, one page of one shard per step (checkpoint: generation, shard,
last row index read). When the walk is done the new indexes become ``ready``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import DatasetNotFound
from ..records import INDEX_BUILDING
from ..store import datasets as dataset_store
from ..store import rows as row_store
from . import engine

PAGE = 500
_WRITERS = 8


def request(workspace: str, dataset_id: str, changed_at: str) -> None:
    """Backfill after an index change (one job per change: each walks every row once)."""
    engine.submit(workspace, f"reindex:{dataset_id}:{changed_at}", "reindex", dataset_id, {})


@engine.kind("reindex")
def step(job: engine.Job, checkpoint: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    try:
        dataset = dataset_store.get(job.workspace, job.dataset_id)
    except DatasetNotFound:
        return checkpoint, True  # deleted meanwhile: its purge removes everything
    if "columns" not in checkpoint:  # this job's work: what was building or retired when it began
        checkpoint = {
            "columns": [c.name for c in dataset.columns if c.slot and c.index_status == INDEX_BUILDING],
            "retired": [int(c.retired_slot) for c in dataset.columns if c.retired_slot],
        }
    building = [
        c for c in dataset.columns if c.name in checkpoint["columns"] and c.index_status == INDEX_BUILDING
    ]
    retired = [slot for slot in checkpoint["retired"] if any(c.retired_slot == slot for c in dataset.columns)]
    if not building and not retired:
        return checkpoint, True
    if checkpoint.get("generation") != dataset.generation:
        checkpoint = {**checkpoint, "generation": dataset.generation, "shard": 0, "after": None}
    shard = int(checkpoint["shard"])
    if shard >= dataset.shards:
        dataset_store.finish_reindex(job.workspace, job.dataset_id, [c.name for c in building], retired)
        return checkpoint, True
    meter = row_store.ReadMeter()
    pk = row_store.partitions(dataset)[shard]
    after = checkpoint.get("after")
    items = list(row_store.query_partition(pk, meter, page_size=PAGE, after_sk=after, max_items=PAGE))
    if items:
        row_store.rows()
        with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
            list(pool.map(lambda item: row_store.set_index_entries(dataset, item, building, retired), items))
    if len(items) < PAGE:
        return {**checkpoint, "shard": shard + 1, "after": None}, False
    return {**checkpoint, "after": int(items[-1]["sk"])}, False
