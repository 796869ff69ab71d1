"""Write units per row and the read cost of an index page, for two index projections; the
critical path of an index page (README "Index projections").

Measured in this process (``bench.inprocess``): the real handlers against moto, every
DynamoDB request priced from the item images before and after it (``bench.capacity``). The
dataset is the bench's (three indexed columns, two unindexed), spread over 8 shards. Both
runs use the same code; only the rows table's index projection differs: ``ALL`` (what the
indexes projected before) and the stack's own (keys only).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from infra import tables
from infra.tables import ALL

from . import capacity, data, report
from .inprocess import Call, DynamoMeter, critical_path, environment
from .report import Figure

INSERT_ROWS = 100  # rows in the measured insert body
UPDATES = 20  # single-row PATCHes measured per kind
PAGE_ROWS = 2_000  # rows in the dataset the index pages read
LIMIT = 20
SHARDS_FOR = 800_000  # expected_rows at creation: 8 shards
ROUND_TRIPS_TARGET = 3

# Index pages measured: (label, query parameters), each with count=none.
PAGES: list[tuple[str, list[tuple[str, str]]]] = [
    ("eq city=Paris", [("city", "eq.Paris")]),
    ("order=amount", [("order", "amount")]),
    (
        "range amount, order=amount.desc",
        [("amount", "gte.2500"), ("amount", "lt.7500"), ("order", "amount.desc")],
    ),
]

# Monthly cost model (README): on-demand, us-east-1.
SECONDS_PER_MONTH = 30 * 24 * 3600
PRICE_WRU = Decimal("1.25") / 1_000_000
PRICE_RRU = Decimal("0.25") / 1_000_000
PRICE_GB_MONTH = Decimal("0.25")
INDEX_ENTRY_OVERHEAD = 100  # bytes DynamoDB adds to each index entry for storage


@dataclass
class Kind:
    """One kind of write: units per row on the row's own item and its index entries, and in all."""

    rows: int = 0
    row_units: int = 0  # the row items' table writes
    index_units: int = 0  # their index entries' writes
    all_units: int = 0  # every item the requests wrote (change log, counters, audit trail...)

    def per_row(self, units: int) -> float:
        return units / self.rows if self.rows else 0.0


@dataclass
class Page:
    label: str
    items_read: int
    index_entries: int
    rows_fetched: int
    index_units: float
    get_units: float
    round_trips: int
    chain: list[str] = field(default_factory=list)


@dataclass
class Measured:
    projection: str
    writes: dict[str, Kind]
    pages: list[Page]
    row_bytes: float  # average stored row item
    entry_bytes: float  # average index entry (per index)


def measure(projection: str | None) -> Measured:
    """Write and read costs with the rows table's indexes projecting ``projection`` (None: the stack's)."""
    with environment(projection) as client, DynamoMeter() as meter:
        body = {"name": "amplification", "columns": data.COLUMNS, "expected_rows": SHARDS_FOR}
        dataset_id = client.call("POST", "/datasets", body)["data"]["id"]
        rows_pattern = re.compile(rf"^{re.escape(dataset_id)}#\d+\.\d+$")
        meter.take()

        created = client.call("POST", f"/datasets/{dataset_id}/rows", {"rows": data.rows(0, INSERT_ROWS)})
        rows = created["data"]["rows"]
        writes = {"insert": _kind(meter.take(), rows_pattern, INSERT_ROWS)}
        for row in rows[:UPDATES]:
            change = {"amount": round(float(row["amount"]) + 1, 2)}
            client.call("PATCH", f"/datasets/{dataset_id}/rows/{row['id']}", {"set": change})
        writes["update indexed"] = _kind(meter.take(), rows_pattern, UPDATES)
        for row in rows[:UPDATES]:
            client.call("PATCH", f"/datasets/{dataset_id}/rows/{row['id']}", {"set": {"note": "changed"}})
        writes["update unindexed"] = _kind(meter.take(), rows_pattern, UPDATES)

        meter.paused = True
        for start in range(INSERT_ROWS, PAGE_ROWS, 1000):
            count = min(1000, PAGE_ROWS - start)
            client.call("POST", f"/datasets/{dataset_id}/rows", {"rows": data.rows(start, count)})
        meter.paused = False
        row_bytes, entry_bytes = _sizes(meter, dataset_id, rows_pattern)
        pages = [_page(client, meter, dataset_id, label, params) for label, params in PAGES]
    return Measured(projection or tables.ROWS.gsis[0].projection, writes, pages, row_bytes, entry_bytes)


def _kind(calls: list[Call], rows_pattern: re.Pattern[str], rows: int) -> Kind:
    from datasets_core.config import settings

    kind = Kind(rows=rows)
    for call in calls:
        for table, key, units in call.writes:
            kind.all_units += units.total
            if table == settings().rows_table and rows_pattern.match(str(key["pk"].get("S", ""))):
                kind.row_units += units.table
                kind.index_units += units.index_total
    return kind


def _sizes(meter: DynamoMeter, dataset_id: str, rows_pattern: re.Pattern[str]) -> tuple[float, float]:
    """Average stored row and index entry (keys only) of the dataset, in bytes."""
    from datasets_core.config import settings

    meter.paused = True
    try:
        reader = meter.reader
        pages = reader.get_paginator("scan").paginate(TableName=settings().rows_table)
        items = [item for page in pages for item in page["Items"] if rows_pattern.match(item["pk"]["S"])]
    finally:
        meter.paused = False
    keys_only = capacity.Table.of(tables.ROWS)
    entries = [
        capacity.item_size(entry)
        for item in items
        for index in keys_only.indexes
        if (entry := keys_only.entry(index, item)) is not None
    ]
    return statistics.fmean(capacity.item_size(item) for item in items), statistics.fmean(entries)


def _page(
    client: Any, meter: DynamoMeter, dataset_id: str, label: str, params: list[tuple[str, str]]
) -> Page:
    query = [*params, ("limit", str(LIMIT)), ("count", "none")]
    client.call("GET", f"/datasets/{dataset_id}/rows", params=query)  # the key lookup is cached from here on
    meter.take()
    with critical_path() as lane:
        body = client.call("GET", f"/datasets/{dataset_id}/rows", params=query)
    calls = meter.take()
    if not body["meta"]["plan"].startswith("index:") or len(body["data"]["rows"]) != LIMIT:
        raise RuntimeError(f"{label}: plan {body['meta']['plan']}, {len(body['data']['rows'])} rows")
    index_calls = [call for call in calls if call.operation == "Query" and call.index]
    gets = [call for call in calls if call.operation == "BatchGetItem"]
    by_depth: dict[int, list[str]] = {}
    for call in calls:
        by_depth.setdefault(call.depth, []).append(call.operation + (f"({call.index})" if call.index else ""))
    chain = [_wave(by_depth[depth]) for depth in sorted(by_depth)]
    return Page(
        label=label,
        items_read=int(body["meta"]["items_read"]),
        index_entries=sum(call.items for call in index_calls),
        rows_fetched=sum(call.items for call in gets),
        index_units=sum(call.read_units for call in index_calls),
        get_units=sum(call.read_units for call in gets),
        round_trips=lane.depth,
        chain=chain,
    )


def _wave(operations: list[str]) -> str:
    counted: dict[str, int] = {}
    for operation in operations:
        counted[operation] = counted.get(operation, 0) + 1
    return " + ".join(f"{n} × {op}" if n > 1 else op for op, n in counted.items())


# --- figures -------------------------------------------------------------------------------------
def figures() -> list[Figure]:
    before, after = measure(ALL), measure(None)
    for name, traffic in PROFILES.items():
        print(f"  monthly cost, {name}: {traffic.describe()}", flush=True)
        print("    " + cost_table(before, after, traffic).replace("\n", "\n    "), flush=True)
    found: list[Figure] = []
    for name, label in (
        ("insert", f"insert ({INSERT_ROWS}-row body)"),
        ("update indexed", "update of an indexed column"),
        ("update unindexed", "update of an unindexed column"),
    ):
        old, new = before.writes[name], after.writes[name]
        value = (
            f"{_units(old.per_row(old.row_units + old.index_units))} → "
            f"{_units(new.per_row(new.row_units + new.index_units))}"
        )
        note = (
            f"row item + its entries in 3 indexes, {before.projection} → {after.projection}; "
            f"index part {_units(old.per_row(old.index_units))} → {_units(new.per_row(new.index_units))}; "
            f"whole request per row {_units(old.per_row(old.all_units))} → "
            f"{_units(new.per_row(new.all_units))}"
        )
        if name == "update unindexed":
            found.append(
                report.at_most(
                    f"index write units per row, {label}", new.per_row(new.index_units), 0, note=note
                )
            )
        found.append(report.info(f"write units per row, {label}", value, note=note))
    for old_page, new_page in zip(before.pages, after.pages, strict=True):
        found.append(
            report.at_most(
                f"sequential round trips of an index page, {new_page.label}, 8 shards",
                new_page.round_trips,
                ROUND_TRIPS_TARGET,
                note=" → ".join(["key lookup (cached)", *new_page.chain]),
            )
        )
        found.append(
            report.info(
                f"read units of an index page of {LIMIT}, {new_page.label}",
                f"{_units(old_page.index_units)} → {_units(new_page.index_units + new_page.get_units)}",
                note=(
                    f"{before.projection}: index Query pages of whole rows; {after.projection}: "
                    f"{new_page.index_entries} index entries ({_units(new_page.index_units)} units) + "
                    f"{new_page.rows_fetched} rows by batched get ({_units(new_page.get_units)} units, "
                    f"eventually consistent like the index); items_read {new_page.items_read}"
                ),
            )
        )
    return found


def _units(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


# --- the monthly cost model (README) -----------------------------------------------------------------
@dataclass(frozen=True)
class Traffic:
    rows: int = 10_000_000
    inserts_per_second: int = 40
    indexed_updates_per_second: int = 20
    unindexed_updates_per_second: int = 40
    index_pages_per_second: int = 500
    indexes: int = 3

    def describe(self) -> str:
        return (
            f"{self.rows:,} rows, {self.indexes} indexes; per second {self.inserts_per_second} inserts, "
            f"{self.indexed_updates_per_second} updates of an indexed column, "
            f"{self.unindexed_updates_per_second} of an unindexed one, "
            f"{self.index_pages_per_second} index pages of {LIMIT} rows"
        )


PROFILES = {
    "read-heavy": Traffic(),
    "write-heavy": Traffic(index_pages_per_second=50),
}


def monthly_cost(measured: Measured, traffic: Traffic = Traffic()) -> dict[str, Decimal]:
    """Dollars a month for ``traffic`` at the measured units (on-demand, us-east-1)."""
    per_second = (
        traffic.inserts_per_second * measured.writes["insert"].per_row(measured.writes["insert"].all_units)
        + traffic.indexed_updates_per_second
        * measured.writes["update indexed"].per_row(measured.writes["update indexed"].all_units)
        + traffic.unindexed_updates_per_second
        * measured.writes["update unindexed"].per_row(measured.writes["update unindexed"].all_units)
    )
    writes = Decimal(str(per_second)) * SECONDS_PER_MONTH * PRICE_WRU
    page_units = statistics.fmean(
        page.index_units + (page.get_units if measured.projection != ALL else 0) for page in measured.pages
    )
    reads = Decimal(str(page_units)) * traffic.index_pages_per_second * SECONDS_PER_MONTH * PRICE_RRU
    entry = measured.row_bytes if measured.projection == ALL else measured.entry_bytes
    stored = traffic.rows * (measured.row_bytes + 100 + traffic.indexes * (entry + INDEX_ENTRY_OVERHEAD))
    storage = Decimal(str(stored / 1024**3)) * PRICE_GB_MONTH
    return {"writes": writes, "reads": reads, "storage": storage, "total": writes + reads + storage}


def cost_table(before: Measured, after: Measured, traffic: Traffic = Traffic()) -> str:
    old, new = monthly_cost(before, traffic), monthly_cost(after, traffic)
    lines = [
        f"| monthly (on-demand, us-east-1) | {before.projection} | {after.projection} |",
        "| --- | ---: | ---: |",
    ]
    for part in ("writes", "reads", "storage", "total"):
        lines.append(f"| {part} | ${old[part]:,.0f} | ${new[part]:,.0f} |")
    return "\n".join(lines)
