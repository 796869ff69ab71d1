"""Access paths: where the candidate rows of a query come from, behind one interface.

An access path opens into ``Candidates``: a stream of rows (API form, each carrying its
stored item under ``_item``), whether they arrive in the query's order, a total known without
reading every match, and its cost (``items_read``). The planner (``query.planner``) picks one
path per query and runs the same in-memory semantics over any of them; the replica path is
one more path whose answer arrives already computed.

- ``IndexRangePath``: a Query per shard (and per key range) on the column's index slot,
  first pages fetched in one parallel fan-out, merged in exact order.
- ``RowOrderPath``: every shard's rows in row_index order, merged (no filter, no search).
- ``ReplicaPath``: the columnar replica, answered by the analytics function (``replica.remote``).

Reads are budgeted: a path that would read more than ``budget`` items to produce its
candidates raises ``OverBudget``, and the planner answers from the replica instead (SPEC §6b:
whole-dataset work never walks DynamoDB inside a request).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..records import Dataset
from ..store import index as index_store
from ..store import rows as row_store
from . import cursor, index_plan
from .ast import RowsQuery

LOOKAHEAD = 1  # one extra row tells whether there is a next page
_FANOUT = 16  # concurrent first-page reads (shards × key ranges)


class OverBudget(Exception):
    """The path would read more items than the query may spend on it."""


@dataclass
class Candidates:
    rows: Iterator[dict[str, Any]]
    ordered: bool  # rows arrive in the query's order (starting after the cursor, if any)
    total: int | None = None  # counted without reading every match (None: count the matches)
    total_source: str | None = None  # what counted it: "counter" | "index"


class Meter(row_store.ReadMeter):
    """Counts what a request reads; raises ``OverBudget`` past ``budget`` items."""

    def __init__(self, budget: int | None = None) -> None:
        super().__init__()
        self.budget = budget

    def add(self, page: dict[str, Any]) -> None:
        super().add(page)
        if self.budget is not None and self.items_read > self.budget:
            raise OverBudget


def fan_out(streams: list[Iterator[Any]]) -> list[Iterator[Any]]:
    """The streams with their first element fetched concurrently (one round trip for all).

    A stream's first ``next`` issues its first Query; later pages are read lazily by whoever
    consumes it, so a page that the first reads cover costs one parallel round trip.
    """
    if len(streams) <= 1:
        return streams
    row_store.rows()  # create the shared table handle before threads use its client
    done = object()
    with ThreadPoolExecutor(max_workers=min(_FANOUT, len(streams))) as pool:
        heads = list(pool.map(lambda stream: next(stream, done), streams))
    return [
        stream if head is done else itertools.chain([head], stream)
        for head, stream in zip(heads, streams, strict=True)
    ]


def decoded(dataset: Dataset, items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        row = item.get("_row") or row_store.from_item(dataset, item)
        row["_item"] = item
        yield row


class IndexRangePath:
    """Rows of one indexed column's key ranges, read per shard and merged in exact order."""

    def __init__(self, dataset: Dataset, query: RowsQuery, path: index_plan.IndexPath, meter: Meter) -> None:
        self.dataset = dataset
        self.query = query
        self.path = path
        self.meter = meter
        self.plan = f"index:{path.column.name}"

    def open(
        self, order_key: Callable[[dict[str, Any]], Any], position: cursor.Position | None
    ) -> Candidates:
        dataset, query, path = self.dataset, self.query, self.path
        # An ordered walk resumes after the cursor's key; walks by row_index resume in each range.
        after = index_plan.resume_key(path, position) if path.ordered and not path.by_row_index else None
        exact = _memo_key(dataset, order_key)
        wanted = query.page.offset + query.page.limit + LOOKAHEAD
        # Each shard holds about 1/shards of any window; pages grow if a shard holds more.
        page_size = min(-(-wanted // dataset.shards) + 1, 1000)
        parts: list[tuple[index_store.Range, ...]]
        if path.by_row_index:
            parts = [(bounds,) for bounds in index_plan.resume_ranges(path, position)]
        else:
            parts = [path.ranges]
        walks = [
            index_store.walk(
                dataset, path.slot, shard, list(part), path.descending, self.meter, exact, page_size, after
            )
            for shard in range(dataset.shards)
            for part in parts
        ]
        merged = heapq.merge(*fan_out(walks), key=exact)
        total, source = None, None
        if query.count and not query.search and not query.filters:
            total, source = dataset.row_count, "counter"
        elif query.count and path.ordered and path.exact and not query.search:
            total, source = index_store.count(dataset, path.slot, list(path.ranges), self.meter), "index"
        return Candidates(decoded(dataset, merged), path.ordered, total, source)


class RowOrderPath:
    """Rows in row_index order, merged from every shard, read lazily.

    Rows are dealt to shards round-robin (``row_index % shards``), so each shard holds about
    ``1/shards`` of any window: reading each in pages of that share (plus a little) bounds
    the cost by the window, not the dataset. A cursor starts each shard after its row_index.
    """

    plan = "scan"

    def __init__(self, dataset: Dataset, query: RowsQuery, meter: Meter) -> None:
        self.dataset = dataset
        self.query = query
        self.meter = meter

    def open(
        self, order_key: Callable[[dict[str, Any]], Any], position: cursor.Position | None
    ) -> Candidates:
        dataset, query = self.dataset, self.query
        descending = bool(query.order) and query.order[0].descending
        partitions = row_store.partitions(dataset)
        wanted = query.page.offset + query.page.limit + LOOKAHEAD
        page_size = min(wanted // len(partitions) + 2, 1000)
        after = position.row_index if position is not None else None
        streams = [
            row_store.query_partition(
                pk, self.meter, descending=descending, page_size=page_size, after_sk=after
            )
            for pk in partitions
        ]
        merged = heapq.merge(*fan_out(streams), key=lambda item: item["sk"], reverse=descending)
        # No filter, no search: the total is the dataset's counter on every page, a cursor's too.
        return Candidates(decoded(dataset, merged), True, dataset.row_count, "counter")


def _memo_key(
    dataset: Dataset, order_key: Callable[[dict[str, Any]], Any]
) -> Callable[[dict[str, Any]], Any]:
    """The exact order key of a stored item (decoding it once, kept on the item)."""

    def key(item: dict[str, Any]) -> Any:
        if "_row" not in item:
            item["_row"] = row_store.from_item(dataset, item)
        return order_key(item["_row"])

    return key
