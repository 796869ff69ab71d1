"""Where a snapshot's cut may be: every change logged at or before it must be in the snapshot.

Compaction and an append import's publish both choose a cut. Two things bound it:

- **The clock less the write margin** (``changelog.cut_position``): a log item at or before
  it has landed, so reading the log now sees every one of them.
- **Append imports still writing** (``running_imports_floor``): such an import publishes its
  rows' snapshot from its file, which it may do only on a snapshot that holds none of them,
  so no cut may pass its start (less the clock allowance).
"""

from __future__ import annotations

from ..records import Dataset
from ..store import changelog
from ..store import imports as import_store
from ..store import rows as row_store


def running_imports_floor(dataset: Dataset, ignoring: str | None = None) -> int:
    """The last cut a snapshot may have and hold no row of an append import writing into the
    dataset's live generation (other than ``ignoring``): before its start, less the clock
    allowance (a large number when no import is writing)."""
    floor = 2**63 - 1
    for record in import_store.list_for_dataset(dataset.workspace, dataset.id):
        plan = record.get("plan") or {}
        writing = record.get("status") == "running" and record.get("stage") == "write"
        ours = ignoring is not None and record.get("id") == ignoring
        if (
            writing
            and not ours
            and "started_position" in plan
            and int(plan.get("generation", -1)) == dataset.generation
        ):
            floor = min(floor, int(plan["started_position"]) - changelog.CLOCK_ALLOWANCE - 1)
    return floor


def past_held_items(dataset: Dataset, after: int, held: set[str], importing: str) -> int:
    """The furthest cut, from ``after`` on, that an append import's snapshot may take.

    That snapshot holds the base snapshot's rows (every change at or before ``after``) and the
    rows of the imports named in ``held`` (their log origins, its own among them). So
    it holds every change logged up to the first log item of another origin: its cut may move
    there (within the bounds above), and readers then skip the import's log items without
    reading them.
    """
    limit = min(changelog.cut_position(), running_imports_floor(dataset, ignoring=importing))
    if limit <= after:
        return after
    for entry in changelog.since(dataset.id, dataset.generation, after, row_store.ReadMeter(), upto=limit):
        if entry.origin not in held:
            return max(after, entry.position - 1)
    return limit
