"""Import conversion: Parquet rows → DynamoDB items, no I/O, on one core, as a ratio.

The table is written to an in-memory Parquet file and read back, so its Arrow types are
the ones an import gets; the conversion (``imports.convert.bench_conversion``, what the
import runs per chunk) is timed beside pyarrow's own ``Table.to_pylist()`` of the same table
in the same run, and SPEC §10's target is the ratio (≤ 2×): a loaded machine slows both.
Arrow's thread pools are held to one thread.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from . import report, tables

if TYPE_CHECKING:
    from datasets_core.records import Dataset
from .report import Figure

ROWS = 100_000
RUNS = 3
TARGET = 2.0  # × to_pylist()


def figures(shards: int) -> list[Figure]:
    from datasets_core.imports import convert

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    buffer = io.BytesIO()
    pq.write_table(tables.arrow_table(ROWS), buffer)
    table = pq.read_table(io.BytesIO(buffer.getvalue()))
    indexed = tables.stored_dataset("ds_bench_convert", shards)
    plain = tables.unindexed(indexed)
    rate, seconds = _rows_per_second(convert.bench_conversion, table, indexed)
    plain_rate, _ = _rows_per_second(convert.bench_conversion, table, plain)
    _, pylist_seconds = _rows_per_second(lambda rows, _dataset: rows.to_pylist(), table, indexed)
    return [
        report.at_most(
            "import conversion (Parquet → DynamoDB items, no I/O) ÷ pyarrow's to_pylist(), one core",
            seconds / pylist_seconds,
            TARGET,
            unit="×",
            note=(
                f"{ROWS:,} rows × 5 columns, 3 indexed; best of {RUNS}: {seconds:.2f} s vs "
                f"to_pylist() {pylist_seconds:.2f} s in the same run; {rate:,.0f} rows/s; imports.convert"
            ),
        ),
        report.info(
            "import conversion, same rows, no indexed column",
            f"{plain_rate:,.0f} rows/s",
            note="the difference is the index keys (x<slot>p / x<slot>s) built per row",
        ),
    ]


def _rows_per_second(
    convert_table: Callable[[pa.Table, Dataset], list[Any]],
    table: pa.Table,
    dataset: Dataset,
) -> tuple[float, float]:
    timings = []
    for _ in range(RUNS):  # best of a few: the machine may be shared, the best run is the code's speed
        began = time.perf_counter()
        items = convert_table(table, dataset)
        timings.append(time.perf_counter() - began)
        if len(items) != table.num_rows:
            raise RuntimeError(f"{len(items)} items from {table.num_rows} rows")
    best = min(timings)
    return table.num_rows / best, best
