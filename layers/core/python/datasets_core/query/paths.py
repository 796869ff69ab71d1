"""Access paths: where the candidate rows of a query come from, behind one interface.

An access path opens into ``Candidates``: a stream of rows (API form, each carrying its
stored item under ``_item``), whether they arrive in the query's order, a total known without
reading every match, and its cost (``items_read``). The planner (``query.planner``) picks one
path per query and runs the same in-memory semantics over any of them; the replica path is
one more path whose answer arrives already computed.

- ``IndexRangePath``: a Query per shard (and per key range) on the column's index slot,
  first pages fetched in one parallel fan-out (with the index counts of a total), the
  entries merged in key order, then the rows fetched with batched gets (the index projects
  keys only) in exact order.
- ``RowOrderPath``: every shard's rows in row_index order, merged (no filter, no search).
- ``ReplicaPath``: the columnar replica, answered by the analytics function (``replica.remote``).

Reads are budgeted: a path that would read more than ``budget`` items to produce its
candidates raises ``OverBudget``, and the planner answers from the replica instead (SPEC §6b:
whole-dataset work never walks DynamoDB inside a request).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from msgspec import Struct

from ..records import Dataset
from ..store import encoding
from ..store import index as index_store
from ..store import rows as row_store
from . import cursor, index_plan
from .ast import RowsQuery

LOOKAHEAD = 1  # one extra row tells whether there is a next page
_FANOUT = 16  # concurrent first-page reads (shards × key ranges)
_GET_BATCH = 100  # BatchGetItem's most keys
_T = TypeVar("_T")


class OverBudget(Exception):
    """The path would read more items than the query may spend on it."""


class Candidates(Struct):
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


def concurrently(thunks: list[Callable[[], _T]]) -> list[_T]:
    """Run independent reads at once (one round trip for all); their results in order."""
    if len(thunks) <= 1:
        return [thunk() for thunk in thunks]
    row_store.rows()  # create the shared table handle before threads use its client
    with ThreadPoolExecutor(max_workers=min(_FANOUT, len(thunks))) as pool:
        return list(pool.map(lambda thunk: thunk(), thunks))


def fan_out(streams: list[Iterator[Any]]) -> list[Iterator[Any]]:
    """The streams with their first element fetched concurrently (one round trip for all).

    A stream's first ``next`` issues its first Query; later pages are read lazily by whoever
    consumes it, so a page that the first reads cover costs one parallel round trip.
    """
    done = object()
    heads = concurrently([partial(next, stream, done) for stream in streams])
    return [
        stream if head is done else itertools.chain([head], stream)
        for head, stream in zip(heads, streams, strict=True)
    ]


def first_page_size(wanted: int, shards: int) -> int:
    """Index entries the first Query of each shard asks for, to cover ``wanted`` merged rows.

    Rows are dealt to shards by ``row_index``, so a shard holds about ``wanted / shards`` of
    any window, give or take a binomial spread. The first page covers the share plus three
    standard deviations: a second page on some shard (one more round trip on the critical
    path) becomes rare, and it stays cheap — keys-only entries are small, so one page of
    them is one read unit either way (README "Index projections").
    """
    if shards <= 1:
        return min(wanted, 1000)
    p = 1 / shards
    share = wanted * p + 3 * math.sqrt(wanted * p * (1 - p))
    return min(wanted, math.ceil(share) + 1, 1000)


def fetch_rows(
    dataset: Dataset, slot: int, entries: list[dict[str, Any]], meter: Meter, *, consistent: bool
) -> list[dict[str, Any]]:
    """The stored rows of index ``entries`` of ``slot``, in their order, read with batched gets
    (in parallel past 100 keys).

    An index is eventually consistent: an entry may name a row deleted since (no row) or
    describe a value the row no longer holds. A row is kept only when its own index key is
    the entry's, so every row comes at the place its current value gives it — the order
    stays exact — and a row that moved is found at its new place once the index has it."""
    if not entries:
        return []
    keys = [{"pk": entry["pk"], "sk": entry["sk"]} for entry in entries]
    batches = [keys[start : start + _GET_BATCH] for start in range(0, len(keys), _GET_BATCH)]
    found = {
        (item["pk"], int(item["sk"])): item
        for batch in concurrently(
            [partial(row_store.batch_get, batch, meter, consistent=consistent) for batch in batches]
        )
        for item in batch
    }
    attr = f"x{slot}s"
    rows = []
    for entry in entries:
        item = found.get((entry["pk"], entry["sk"]))
        if item is not None and item.get(attr) == entry["_key"]:
            rows.append(item)
    return rows


def decoded(dataset: Dataset, items: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        row = item.get("_row") or row_store.from_item(dataset, item)
        row["_item"] = item
        yield row


class IndexRangePath:
    """Rows of one indexed column's key ranges, read per shard and merged in exact order."""

    def __init__(
        self,
        dataset: Dataset,
        query: RowsQuery,
        path: index_plan.IndexPath,
        meter: Meter,
        *,
        consistent: bool = False,
    ) -> None:
        self.dataset = dataset
        self.query = query
        self.path = path
        self.meter = meter
        self.plan = f"index:{path.column.name}"
        # A page reads its rows as consistently as the index it walks (eventually: half the
        # read units); bulk writes read them strongly (they write from what they read).
        self.consistent = consistent

    def _fetch(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return fetch_rows(self.dataset, self.path.slot, entries, self.meter, consistent=self.consistent)

    def open(
        self, order_key: Callable[[dict[str, Any]], Any], position: cursor.Position | None
    ) -> Candidates:
        dataset, query, path = self.dataset, self.query, self.path
        # An ordered walk resumes after the cursor's key; walks by row_index resume in each range.
        after = index_plan.resume_key(path, position) if path.ordered and not path.by_row_index else None
        wanted = query.page.offset + query.page.limit + LOOKAHEAD
        page_size = first_page_size(wanted, dataset.shards)
        parts: list[tuple[index_store.Range, ...]]
        if path.by_row_index:
            parts = [(bounds,) for bounds in index_plan.resume_ranges(path, position)]
        else:
            parts = [path.ranges]
        walks = [
            index_store.walk(
                dataset, path.slot, shard, list(part), path.descending, self.meter, page_size, after
            )
            for shard in range(dataset.shards)
            for part in parts
        ]
        total, source = None, None
        counts: list[Callable[[], Any]] = []
        if query.count and not query.search and not query.filters:
            total, source = dataset.row_count, "counter"
        elif query.count and path.ordered and path.exact and not query.search:
            counts = [
                partial(index_store.count, dataset, path.slot, shard, bounds, self.meter)
                for shard in range(dataset.shards)
                for bounds in path.ranges
            ]
            source = "index"
        # One round trip for the first index page of every walk and the counts of the total.
        done = object()
        firsts: list[Callable[[], Any]] = [partial(next, stream, done) for stream in walks]
        heads = concurrently([*firsts, *counts])
        if counts:
            total = sum(heads[len(walks) :])
        started = [
            stream if head is done else itertools.chain([head], stream)
            for head, stream in zip(heads[: len(walks)], walks, strict=True)
        ]
        if not path.ordered:
            return self._unordered(started, position, wanted)
        entries: Iterator[dict[str, Any]] = heapq.merge(*started, key=_merge_key(path))
        if path.ordered and not path.by_row_index:
            entries = _exact_groups(entries, _memo_key(dataset, order_key), self._fetch)
        rows = _hydrated(entries, wanted, self._fetch)
        return Candidates(decoded(dataset, rows), path.ordered, total, source)

    def _unordered(
        self, walks: list[Iterator[dict[str, Any]]], position: cursor.Position | None, wanted: int
    ) -> Candidates:
        """Every entry of the ranges (they are not in the query's order). When the ranges hold
        exactly the matches and the order is row_index, the entries alone give the page and
        the total: only the page's rows are fetched. Otherwise every row is (in one wave)."""
        dataset, query = self.dataset, self.query
        everything = [entry for walk in walks for entry in walk]
        order = query.order
        by_row_index = not order or (
            len(order) == 1 and order[0].column == "row_index" and not order[0].ref.path
        )
        if not (self.path.exact and not query.search and by_row_index):
            return Candidates(decoded(dataset, iter(self._fetch(everything))), False)
        descending = bool(order) and order[0].descending
        everything.sort(key=lambda entry: entry["sk"], reverse=descending)
        total = len(everything)
        if position is not None:
            everything = [
                entry
                for entry in everything
                if (entry["sk"] < position.row_index if descending else entry["sk"] > position.row_index)
            ]
        rows = _hydrated(iter(everything), wanted, self._fetch)
        return Candidates(decoded(dataset, rows), True, total if query.count else None, "index")


def _merge_key(path: index_plan.IndexPath) -> Callable[[dict[str, Any]], Any]:
    """Key order of entries across walks: the query's order except within groups of cut keys.

    Walks of pinned values (``by_row_index``) merge by row_index. Ordered walks merge by the
    range's position in walk order (nulls first or last), the key's value part (descending
    walks: reversed) and row_index (ties ascending, as §5 breaks them)."""
    if path.by_row_index:
        return lambda entry: entry["sk"]
    if path.descending:
        return lambda entry: (entry["_range"], _Reversed(encoding.value_part(entry["_key"])), entry["sk"])
    return lambda entry: (entry["_range"], encoding.value_part(entry["_key"]), entry["sk"])


class _Reversed:
    """A value part compared in reverse (descending walks)."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and other.value == self.value

    __hash__ = None  # type: ignore[assignment]


_Fetch = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def _exact_groups(
    entries: Iterator[dict[str, Any]], exact_key: Callable[[dict[str, Any]], Any], fetch: _Fetch
) -> Iterator[dict[str, Any]]:
    """Merged entries in exact order: a group of equal cut keys (values longer than a key
    keeps) is held to its end, its rows fetched and sorted by their exact values. Only such
    groups are held, so a long run of ties streams. Entries of such groups are rows."""
    held: list[dict[str, Any]] = []
    for entry in entries:
        value = encoding.value_part(entry["_key"])
        if held and (value != encoding.value_part(held[0]["_key"]) or entry["_range"] != held[0]["_range"]):
            yield from sorted(fetch(held), key=exact_key)
            held = []
        if held or len(value) >= encoding.MAX_VALUE_BYTES:
            held.append(entry)
        else:
            yield entry
    if held:
        yield from sorted(fetch(held), key=exact_key)


def _hydrated(entries: Iterator[dict[str, Any]], first: int, fetch: _Fetch) -> Iterator[dict[str, Any]]:
    """The rows of ``entries`` in order, fetched in batches as the consumer reaches them: the
    first batch is the page (``first`` entries: offset, limit and look-ahead), later ones
    double (rows that in-memory conditions drop call for more). Entries that are rows
    already (re-sorted groups) are kept as they are."""
    size = first
    while True:
        batch = list(itertools.islice(entries, size))
        if not batch:
            return
        fetched = fetch([entry for entry in batch if "id" not in entry])
        rows = {(row["pk"], int(row["sk"])): row for row in fetched}
        for entry in batch:
            row = entry if "id" in entry else rows.get((entry["pk"], entry["sk"]))
            if row is not None:
                yield row
        size = min(size * 2, 1000)


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
