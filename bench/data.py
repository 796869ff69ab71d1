"""The bench dataset: its columns, deterministic rows, and loading them through the API.

Three indexed columns (a string, a number, a datetime) serve the index-backed figures;
``status`` and ``note`` stay unindexed so a filter on them shows the scan fallback.
Rows come from a seeded generator, so every run measures the same data.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .stack import LocalStack

SEED = 20240101
BODY_ROWS = 1000  # rows per POST: the API's per-request maximum
LOAD_WORKERS = 3  # the stack serves one request per function at a time; a few overlap the transfer

# 48 cities with mixed case and shared prefixes: "san" picks 6 of them (starts_with is
# case-insensitive), "Paris" about 1 row in 48.
CITIES = [
    "Paris", "Lyon", "Marseille", "Berlin", "Hamburg", "Munich", "Madrid", "Barcelona", "Sevilla",
    "Rome", "Milan", "Naples", "Lisbon", "Porto", "London", "Leeds", "Dublin", "Cork", "Oslo",
    "Bergen", "Stockholm", "Malmo", "Helsinki", "Tallinn", "Riga", "Vilnius", "Warsaw", "Krakow",
    "Prague", "Brno", "Vienna", "Graz", "Zurich", "Geneva", "Brussels", "Ghent", "Amsterdam",
    "Utrecht", "Copenhagen", "Aarhus", "San Diego", "san jose", "Santiago", "Santa Fe",
    "SAN ANTONIO", "Santander", "Athens", "Sofia",
]  # fmt: skip
STATUSES = ["new", "paid", "shipped", "returned"]
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)

COLUMNS: list[dict[str, Any]] = [
    {"name": "city", "type": "string", "indexed": True},
    {"name": "amount", "type": "number", "indexed": True},
    {"name": "ordered_at", "type": "datetime", "indexed": True},
    {"name": "status", "type": "string"},
    {"name": "note", "type": "string"},
]


def rows(start: int, count: int) -> list[dict[str, Any]]:
    """Rows ``start`` .. ``start + count - 1`` of the bench's endless, reproducible sequence."""
    return [_row(number) for number in range(start, start + count)]


def _row(number: int) -> dict[str, Any]:
    rng = random.Random(SEED * 1_000_003 + number)  # per row: any slice is reproducible alone
    seconds, millis = rng.randrange(366 * 24 * 3600), rng.randrange(1000)
    moment = EPOCH + timedelta(seconds=seconds, milliseconds=millis)
    return {
        "city": rng.choice(CITIES),
        "amount": round(rng.uniform(0, 10_000), 2),
        "ordered_at": moment.isoformat().replace("+00:00", "Z"),
        "status": rng.choice(STATUSES),
        "note": f"order {number} of customer {rng.randrange(5000)}",
    }


@dataclass(frozen=True)
class Load:
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def create_dataset(stack: LocalStack, name: str, expected_rows: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "description": "make bench", "columns": COLUMNS}
    if expected_rows is not None:
        body["expected_rows"] = expected_rows  # sizes its row shards (README, "Sharding")
    dataset: dict[str, Any] = stack.call("POST", "/datasets", json=body)["data"]
    return dataset


def load(stack: LocalStack, dataset_id: str, start: int, count: int) -> Load:
    """Insert rows ``start`` .. ``start + count - 1`` in 1,000-row bodies, a few at a time."""

    def post(first: int) -> int:
        size = min(BODY_ROWS, start + count - first)
        answer = stack.call("POST", f"/datasets/{dataset_id}/rows", json={"rows": rows(first, size)})
        return int(answer["data"]["inserted"])

    began = time.perf_counter()
    with ThreadPoolExecutor(LOAD_WORKERS) as pool:
        inserted = sum(pool.map(post, _starts(start, count)))
    seconds = time.perf_counter() - began
    if inserted != count:
        raise RuntimeError(f"inserted {inserted} rows, expected {count}")
    return Load(inserted, seconds)


def _starts(start: int, count: int) -> Iterator[int]:
    return iter(range(start, start + count, BODY_ROWS))
