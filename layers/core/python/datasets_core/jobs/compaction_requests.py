"""When a dataset's replica delta is worth folding into a new snapshot, and asking for it.

Light (no pyarrow): the analytics function asks after reading a large delta, and row inserts
ask when the rows added since the snapshot cross a multiple of the threshold, so a dataset
loaded through the API gets its snapshot before a query would have to read every row from
the change log. One job per base snapshot (its id names it), so asking twice queues once.
"""

from __future__ import annotations

from ..config import settings
from ..records import Dataset, ReplicaPointer
from . import engine


def current_pointer(dataset: Dataset) -> ReplicaPointer | None:
    pointer = dataset.replica
    return pointer if pointer is not None and pointer.generation == dataset.generation else None


def threshold(pointer: ReplicaPointer | None) -> int:
    """Changed rows past which a compaction pays: a fixed floor, or 5% of the snapshot."""
    rows = pointer.rows if pointer is not None else 0
    return max(settings().compact_after_rows, rows // 20)


def request(dataset: Dataset, *, delay_seconds: int = 0) -> bool:
    """Queue a compaction of the dataset's current snapshot (once per snapshot)."""
    pointer = current_pointer(dataset)
    base = pointer.version if pointer is not None else 0
    return engine.submit(
        dataset.workspace,
        f"compact:{dataset.id}:{dataset.generation}:{base}",
        "compact",
        dataset.id,
        {},
        delay_seconds=delay_seconds,
    )


def after_insert(dataset: Dataset, start: int, count: int) -> None:
    """Ask for a compaction when an insert's rows (row indexes ``start`` .. ``start + count - 1``)
    carry the rows added since the snapshot across a multiple of the threshold.

    Decided on row indexes, not on the row count as read before the insert: concurrent inserts
    all read the same count, so none of them saw the crossing (a load by several writers could
    go without a compaction), while their row index ranges are disjoint: exactly one holds it."""
    pointer = current_pointer(dataset)
    step = threshold(pointer)
    before = max(0, start - (pointer.end if pointer is not None else 0))
    if before // step != (before + count) // step:
        # A snapshot's cut lags the clock by the cut margin: run once the rows just written are
        # behind it, or the compaction would find nothing it may fold yet.
        request(dataset, delay_seconds=settings().cut_margin_seconds)
