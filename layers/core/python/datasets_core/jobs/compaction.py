"""Compaction: fold the change log into a new snapshot version, in bounded, resumable chunks.

1. ``plan``: pick the cut (the clock minus the write margin: every change logged at or before
   it has landed), allocate the new version, and note the snapshot it starts from.
2. ``write``: one chunk of ``CHUNK_ROWS`` row indexes per step — the base snapshot's rows of
   that range, minus those the log names, plus those rows as they are now — written as one
   Parquet part. The checkpoint lists the parts written, so a run cut short resumes at the
   next chunk and a redone chunk rewrites the same part.
3. ``publish``: record the version and point the dataset at it, if the dataset still points
   at the base snapshot (an import or another compaction that got there first wins; this
   version's files are then removed).
4. ``tidy``: forget log items folded by the *previous* snapshot (a reader that read the old
   pointer just before the switch still finds what it needs), and versions past retention.

Readers never wait for it and never see a difference: before ``publish`` they read the base
snapshot and the log; after, the new snapshot and the (shorter) log — the same rows.
"""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import aws
from ..config import settings
from ..errors import Conflict, DatasetNotFound
from ..records import Dataset, Part, ReplicaPointer, held_past
from ..replica import arrow, layout
from ..replica.cuts import running_imports_floor
from ..replica.table import changed_rows, read_rows, snapshot
from ..store import changelog
from ..store import datasets as dataset_store
from ..store import rows as row_store
from ..timeutil import now, now_iso, parse_iso
from . import engine
from .compaction_requests import request, threshold

__all__ = ["request", "expire_versions"]

CHUNK_ROWS = 250_000
ROW_GROUP = 100_000


@engine.kind("compact")
def step(job: engine.Job, checkpoint: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    try:
        dataset = dataset_store.get(job.workspace, job.dataset_id)
    except DatasetNotFound:
        return checkpoint, True
    stage = checkpoint.get("stage", "plan")
    if stage == "plan":
        planned = _plan(dataset)
        return (checkpoint, True) if planned is None else (planned, False)
    if dataset.generation != checkpoint["generation"]:
        _abandon(dataset, checkpoint)  # replaced meanwhile: the replace brought its own snapshot
        return checkpoint, True
    if stage == "write":
        return _write(dataset, checkpoint), False
    if stage == "publish":
        return _publish(dataset, checkpoint)
    return _tidy(dataset, checkpoint), True


def _base(dataset: Dataset) -> ReplicaPointer | None:
    pointer = dataset.replica
    return pointer if pointer is not None and pointer.generation == dataset.generation else None


def _plan(dataset: Dataset) -> dict[str, Any] | None:
    """The compaction's checkpoint, or None when there is nothing it may fold yet."""
    base = _base(dataset)
    # Never past the start of an append import still writing: its rows go into a snapshot
    # from its file, which it can publish only on a snapshot that holds none of them.
    cut = max(min(changelog.cut_position(), running_imports_floor(dataset)), base.cut if base else 0)
    if base is not None and cut <= base.cut:
        return None  # (an import is writing since the base's cut: it publishes its own rows)
    changed = _changed(dataset, base, cut)
    if not changed:
        if _changed(dataset, base, None):  # only changes newer than the cut: fold them once it passes
            raise engine.Later(max(1, settings().cut_margin_seconds))
        return None  # nothing changed: a new version would copy the base
    end = max(base.end if base else 0, max(changed, default=-1) + 1)
    return {
        "stage": "write",
        "generation": dataset.generation,
        "base": base.version if base else 0,
        "cut": cut,
        "version": layout.allocate_version(dataset),
        "start": 0,
        "end": end,
        "parts": [],
        "imports": [list(entry) for entry in base.imports] if base else [],
    }


def _changed(dataset: Dataset, base: ReplicaPointer | None, cut: int | None) -> set[int]:
    """Row indexes logged after the base snapshot's cut, up to ``cut`` (None: up to now)."""
    entries = changelog.since(
        dataset.id, dataset.generation, base.cut if base else 0, row_store.ReadMeter(), upto=cut
    )
    return changed_rows(entries, base)


def _write(dataset: Dataset, checkpoint: dict[str, Any]) -> dict[str, Any]:
    start, end = int(checkpoint["start"]), int(checkpoint["end"])
    if start >= end:
        return {**checkpoint, "stage": "publish"}
    stop = min(start + CHUNK_ROWS, end)
    base = _base(dataset) if checkpoint["base"] else None
    if base is not None and base.version != checkpoint["base"]:
        base = layout.version(dataset.workspace, dataset.id, int(checkpoint["base"]))
    changed = {index for index in _changed(dataset, base, int(checkpoint["cut"])) if start <= index < stop}
    kept = _base_rows(dataset, base, start, stop)
    if changed and kept.num_rows:
        drop = pc.is_in(kept.column("row_index"), value_set=pa.array(sorted(changed), pa.int64()))
        kept = kept.filter(pc.invert(drop))
    current = read_rows(dataset, changed, row_store.ReadMeter())
    chunk = arrow.concat([kept, arrow.rows_table(dataset, current)], dataset)
    parts = list(checkpoint["parts"])
    if chunk.num_rows:
        chunk = chunk.take(pc.sort_indices(chunk, sort_keys=[("row_index", "ascending")]))
        version = int(checkpoint["version"])
        key = layout.part_key(dataset, version, len(parts))
        size = _upload(chunk, key)
        indexes = chunk.column("row_index")
        parts.append(
            Part(key, chunk.num_rows, size, pc.min(indexes).as_py(), pc.max(indexes).as_py()).to_item()
        )
    return {**checkpoint, "start": stop, "parts": parts}


def _base_rows(dataset: Dataset, base: ReplicaPointer | None, start: int, stop: int) -> pa.Table:
    if base is None:
        return arrow.empty_table(dataset)
    cached = snapshot(dataset, base).table
    indexes = cached.column("row_index")
    mask = pc.and_(pc.greater_equal(indexes, start), pc.less(indexes, stop))
    return arrow.conform(cached.filter(mask), dataset)


def _upload(table: pa.Table, key: str) -> int:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=ROW_GROUP, compression="zstd")
    body = sink.getvalue()
    aws.client("s3").put_object(Bucket=settings().replica_bucket, Key=key, Body=body)
    return len(body)


def _publish(dataset: Dataset, checkpoint: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    parts = tuple(Part.from_item(part) for part in checkpoint["parts"])
    pointer = ReplicaPointer(
        version=int(checkpoint["version"]),
        generation=int(checkpoint["generation"]),
        cut=int(checkpoint["cut"]),
        rows=sum(part.rows for part in parts),
        parts=parts,
        # Imports whose rows the base held with log items past this cut: still skipped after it.
        imports=held_past(
            ((str(entry[0]), int(entry[1])) for entry in checkpoint.get("imports", [])),
            int(checkpoint["cut"]),
        ),
        created_at=now_iso(),
        cause="compaction",
    )
    base = _base(dataset)
    if (base.version if base else 0) != checkpoint["base"]:
        _abandon(dataset, checkpoint)
        return checkpoint, True
    layout.record_version(dataset, pointer)
    try:
        dataset_store.set_replica(dataset, pointer, expected=base)
    except Conflict:
        _abandon(dataset, checkpoint)
        return checkpoint, True
    previous_cut = base.cut if base else 0
    return {**checkpoint, "stage": "tidy", "forget_upto": previous_cut}, False


def _abandon(dataset: Dataset, checkpoint: dict[str, Any]) -> None:
    if "version" in checkpoint:
        layout.forget_version(dataset, int(checkpoint["version"]))


def _tidy(dataset: Dataset, checkpoint: dict[str, Any]) -> dict[str, Any]:
    if checkpoint.get("forget_upto"):
        changelog.forget(dataset.id, dataset.generation, int(checkpoint["forget_upto"]))
    expire_versions(dataset)
    _again_if_behind(dataset)
    return checkpoint


def _again_if_behind(dataset: Dataset) -> None:
    """Queue the next compaction when the rows changed after this one's cut are already past the
    threshold (a load through the API outran it: its later requests named this job's base)."""
    pointer = _base(dataset)
    if pointer is None:
        return
    if len(_changed(dataset, pointer, None)) >= threshold(pointer):
        request(dataset, delay_seconds=settings().cut_margin_seconds)


def expire_versions(dataset: Dataset) -> int:
    """Remove versions older than the retention (never the current one); how many."""
    current = dataset.replica.version if dataset.replica else None
    horizon = now() - timedelta(days=settings().version_retention_days)
    removed = 0
    for pointer in layout.versions(dataset.workspace, dataset.id):
        if pointer.version == current or not pointer.created_at:
            continue
        if parse_iso(pointer.created_at) < horizon:
            layout.forget_version(dataset, pointer.version)
            removed += 1
    return removed
