"""A dataset's rows as one Arrow table: the current snapshot, minus the rows changed since its
cut, plus those rows as they are now (read strongly consistently), so an answer reflects every
write acknowledged before the request began.

Snapshots are immutable, so a warm function keeps them in memory by (dataset, version) — with
the views derived from them (casefolded text, number text) — and a repeated query downloads
nothing. The cache is bounded by bytes (least recently used first out).
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from msgspec import Struct, field

from .. import aws
from ..config import settings
from ..query.ast import Ref
from ..query.columnar import ColumnData
from ..query.fields import Field, fields, resolve
from ..records import Dataset, ReplicaPointer
from ..store import changelog
from ..store import rows as row_store
from . import arrow

_BATCH_GET = 100  # keys per BatchGetItem
_READERS = 16


class Snapshot(Struct):
    """A version's rows in memory, with the per-field views computed so far."""

    pointer: ReplicaPointer | None
    table: pa.Table
    views: dict[Ref, ColumnData] = field(default_factory=dict)
    row_positions: dict[int, int] | None = None

    @property
    def nbytes(self) -> int:
        return int(self.table.nbytes) + sum(_view_bytes(view) for view in self.views.values())

    def positions(self) -> dict[int, int]:
        """row_index → position in the table (built once, for deltas)."""
        if self.row_positions is None:
            self.row_positions = {
                index: position for position, index in enumerate(self.table.column("row_index").to_pylist())
            }
        return self.row_positions


def _view_bytes(view: ColumnData) -> int:
    return sum(
        int(getattr(value, "nbytes", 0)) for value in vars(view).values() if isinstance(value, pa.Array)
    )


class _Cache:
    def __init__(self) -> None:
        self.entries: OrderedDict[tuple[str, int, int], Snapshot] = OrderedDict()
        self.lock = threading.Lock()

    @staticmethod
    def budget() -> int:
        memory_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048"))
        return memory_mb * 1024 * 1024 // 3  # room for the query's own arrays beside it

    def get(self, key: tuple[str, int, int]) -> Snapshot | None:
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
            return found

    def put(self, key: tuple[str, int, int], snapshot: Snapshot) -> None:
        with self.lock:
            self.entries[key] = snapshot
            self.entries.move_to_end(key)
            while len(self.entries) > 1 and sum(s.nbytes for s in self.entries.values()) > self.budget():
                self.entries.popitem(last=False)


CACHE = _Cache()


def snapshot(dataset: Dataset, pointer: ReplicaPointer | None) -> Snapshot:
    """The snapshot of ``pointer`` (an empty one when the dataset has none yet), cached."""
    if pointer is None:
        return Snapshot(None, arrow.empty_table(dataset))
    key = (dataset.id, pointer.generation, pointer.version)
    found = CACHE.get(key)
    if (
        found is not None
        and found.table.column_names == arrow.conform(found.table.slice(0, 0), dataset).column_names
    ):
        return found
    tables = list(_read_parts(pointer))
    loaded = Snapshot(pointer, arrow.concat(tables, dataset))
    CACHE.put(key, loaded)
    return loaded


def _read_parts(pointer: ReplicaPointer) -> list[pa.Table]:
    s3 = aws.client("s3")
    bucket = settings().replica_bucket

    def read(key: str) -> pa.Table:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return pq.read_table(io.BytesIO(body))

    if len(pointer.parts) <= 1:
        return [read(part.key) for part in pointer.parts]
    with ThreadPoolExecutor(max_workers=min(8, len(pointer.parts))) as pool:
        return list(pool.map(read, [part.key for part in pointer.parts]))


# --- the delta ------------------------------------------------------------------------------
class Delta(Struct):
    """Rows changed after a snapshot's cut: which row indexes, and the current rows among them."""

    changed: set[int]
    rows: list[dict[str, Any]]
    entries: int
    items_read: int


def delta(
    dataset: Dataset, pointer: ReplicaPointer | None, meter: row_store.ReadMeter | None = None
) -> Delta:
    """What changed in the dataset's live generation after the snapshot (all of it without one)."""
    meter = meter or row_store.ReadMeter()
    current = pointer if pointer is not None and pointer.generation == dataset.generation else None
    cut = current.cut if current is not None else 0
    entries = changelog.since(dataset.id, dataset.generation, cut, meter)
    changed = changed_rows(entries, current)
    rows = read_rows(dataset, changed, meter)
    return Delta(changed, rows, len(entries), meter.items_read)


def changed_rows(entries: list[changelog.Entry], pointer: ReplicaPointer | None) -> set[int]:
    """Row indexes the change-log ``entries`` name, less those of imports ``pointer``'s
    snapshot was written with (their rows are in it already)."""
    changed: set[int] = set()
    for entry in entries:
        if pointer is not None and pointer.holds_origin(entry.origin):
            continue
        for start, stop in entry.spans:
            changed.update(range(start, stop))
    return changed


def read_rows(dataset: Dataset, row_indexes: set[int], meter: row_store.ReadMeter) -> list[dict[str, Any]]:
    """The current rows (API form) of ``row_indexes`` that exist, strongly consistent."""
    if not row_indexes:
        return []
    by_shard: dict[int, list[int]] = {}
    for index in sorted(row_indexes):
        by_shard.setdefault(index % dataset.shards, []).append(index)
    jobs: list[tuple[str, Any]] = []
    for shard, indexes in by_shard.items():
        pk = row_store.partitions(dataset)[shard]
        span = indexes[-1] - indexes[0] + 1
        # Dense runs (an import's rows) read as a key range; scattered rows as batched gets.
        if len(indexes) * dataset.shards >= span // 2:
            jobs.append(("range", (pk, indexes[0], indexes[-1], set(indexes))))
        else:
            for start in range(0, len(indexes), _BATCH_GET):
                jobs.append(
                    ("keys", [{"pk": pk, "sk": index} for index in indexes[start : start + _BATCH_GET]])
                )

    def run(job: tuple[str, Any]) -> list[dict[str, Any]]:
        kind, detail = job
        if kind == "range":
            pk, low, high, wanted = detail
            items = row_store.query_range(pk, low, high, meter)
            return [item for item in items if item["sk"] in wanted]
        return row_store.batch_get(detail, meter)

    row_store.rows()
    with ThreadPoolExecutor(max_workers=min(_READERS, len(jobs))) as pool:
        items = [item for part in pool.map(run, jobs) for item in part]
    return [row_store.from_item(dataset, item) for item in sorted(items, key=lambda item: item["sk"])]


# --- the table a query reads -------------------------------------------------------------------
class ReplicaTable:
    """Snapshot rows not changed since its cut, then the changed rows as they are now."""

    def __init__(self, dataset: Dataset, base: Snapshot, change: Delta | None) -> None:
        self.dataset = dataset
        self.base = base
        self.change = change
        self.known: dict[str, Field] = fields(dataset.columns)
        positions = base.positions() if change and change.changed else {}
        dropped = [positions[index] for index in (change.changed if change else ()) if index in positions]
        self.keep: pa.Array | None = None
        if dropped:
            keep = [True] * base.table.num_rows
            for position in dropped:
                keep[position] = False
            self.keep = pa.array(keep, pa.bool_())
        self.extra = arrow.rows_table(dataset, change.rows) if change and change.rows else None
        self.num_rows = (
            base.table.num_rows if self.keep is None else int(pc.sum(self.keep).as_py() or 0)
        ) + (self.extra.num_rows if self.extra is not None else 0)
        self._views: dict[Ref, ColumnData] = {}
        self._table: pa.Table | None = None
        # Changed rows follow the snapshot's: the rows are in row_index order unless a changed
        # row is older than a snapshot row (an update), which ``in_row_order`` tells readers.
        base_rows = base.table.num_rows
        last_base = base.table.column("row_index")[base_rows - 1].as_py() if base_rows else -1
        self.in_row_order = (
            self.extra is None or change is None or min(row["row_index"] for row in change.rows) > last_base
        )

    @property
    def items_read(self) -> int:
        return self.change.items_read if self.change else 0

    @property
    def table(self) -> pa.Table:
        """The combined rows as one Arrow table."""
        if self._table is None:
            parts = [self.base.table if self.keep is None else self.base.table.filter(self.keep)]
            if self.extra is not None:
                parts.append(self.extra)
            self._table = (
                arrow.concat(parts, self.dataset) if len(parts) > 1 else arrow.conform(parts[0], self.dataset)
            )
        return self._table

    def column(self, ref: Ref) -> ColumnData:
        """The field's data over every row (views of the snapshot part reused across queries)."""
        found = self._views.get(ref)
        if found is None:
            found = self._views[ref] = self._build(ref)
        return found

    def _build(self, ref: Ref) -> ColumnData:
        field_ = resolve(ref, self.known)
        if ref.path:
            base_data = self.column(Ref(ref.name))
            from ..query.fields import json_at

            return ColumnData(
                field_,
                None,
                lambda: [None if v is None else json_at(v, ref.path, ref.as_text) for v in base_data.objects],
            )
        base_view = self.base.views.get(ref)
        if base_view is None:
            base_view = self.base.views[ref] = _data(field_, self.base.table, self.dataset)
        if self.keep is None and self.extra is None:
            return base_view
        extra_view = _data(field_, self.extra, self.dataset) if self.extra is not None else None
        return _Combined(
            field_,
            base_view,
            self.keep,
            extra_view,
            self.table.column(field_.name).combine_chunks(),
            self.dataset,
        )

    def rows(self, indices: Sequence[int] | pa.Array) -> list[dict[str, Any]]:
        return arrow.take_rows(self.table, indices, self.dataset)


def _data(field_: Field, table: pa.Table, dataset: Dataset) -> ColumnData:
    column = dataset.column(field_.name)
    array = table.column(field_.name).combine_chunks()
    return ColumnData(field_, array, lambda: arrow.to_python(array, column))


class _Combined(ColumnData):
    """A field over snapshot rows kept (``keep``) followed by changed rows: views are the
    snapshot's cached views, filtered, then the changed rows' views."""

    def __init__(
        self,
        field_: Field,
        base: ColumnData,
        keep: pa.Array | None,
        extra: ColumnData | None,
        array: pa.Array,
        dataset: Dataset,
    ) -> None:
        column = dataset.column(field_.name)
        super().__init__(field_, array, lambda: arrow.to_python(array, column))
        self._parts = (base, keep, extra)

    def _joined(self, name: str) -> pa.Array:
        cached = self.__dict__.get("_joined_" + name)
        if cached is not None:
            return cached
        base, keep, extra = self._parts
        joined = getattr(base, name)
        if keep is not None:
            joined = joined.filter(keep)
        if extra is not None:
            second = getattr(extra, name)
            joined = pa.concat_arrays(
                [joined, second if second.type == joined.type else second.cast(joined.type)]
            )
        self.__dict__["_joined_" + name] = joined
        return joined

    @property
    def fold(self) -> pa.Array:  # type: ignore[override]
        return self._joined("fold")

    @property
    def text(self) -> pa.Array:  # type: ignore[override]
        return self._joined("text")

    @property
    def fold_text(self) -> pa.Array:  # type: ignore[override]
        return self._joined("fold_text")
