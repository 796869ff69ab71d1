"""``python -m bench`` (``make bench``): measure every figure of SPEC §10 and compare it with its target.

Exit status 0 when every target is met, 1 when one is missed (a figure that cannot be
measured counts as missed).
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from functools import partial
from typing import Any

from . import (
    amplification,
    coldstart,
    conversion,
    data,
    dropimport,
    package,
    reads,
    replica,
    report,
    scale,
    tables,
    writes,
)
from .report import Figure
from .stack import SETTINGS_ENV, LocalStack

SMALL_N = 2_000
LARGE_N = 20_000
# The index figures' dataset is declared with this expected size, which spreads its rows over
# 8 shards (README "Sharding"): every read then merges 8 shard streams, the costly case.
INDEX_EXPECTED_ROWS = 800_000
# The replica figures' dataset (SPEC §10: 1,000,000 rows); BENCH_BIG_ROWS shrinks it for a
# quick look at the figures (the targets then do not apply to SPEC's size).
BIG_N = int(os.environ.get("BENCH_BIG_ROWS", "1000000"))
BIG_IMPORT_TIMEOUT = 3600.0
REPLICA_WAIT_SECONDS = 240.0
COMMAND = "make bench  # = .venv/bin/python -m bench"


class Run:
    def __init__(self) -> None:
        self.figures: list[Figure] = []
        self._mark = time.perf_counter()

    def add(self, figures: list[Figure]) -> None:
        now = time.perf_counter()
        for figure in figures:
            print(report.line(figure), flush=True)
            self.figures.append(figure)
        # How long each step took, so a slow bench shows where its time goes.
        print(f"    ({now - self._mark:.1f} s)", flush=True)
        self._mark = time.perf_counter()


def _hermetic() -> None:
    """Use the same defaults as the stack, whatever the caller's shell exports."""
    for name in list(os.environ):
        if name.startswith("AWS_") or name in SETTINGS_ENV:
            del os.environ[name]


def _on_stack(run: Run) -> None:
    print("Starting the local stack (python -m local)…", flush=True)
    with LocalStack() as stack:
        from local.stack import configure_environment

        configure_environment(stack.aws_port)  # this process's boto3 clients reach the stack's moto
        from datasets_core.config import settings
        from datasets_core.logic.datasets import shards_for
        from datasets_core.store import workspaces

        shards = shards_for(INDEX_EXPECTED_ROWS)
        print(f"  API {stack.base_url}, AWS {stack.aws_endpoint}, {shards} row shards", flush=True)
        # The bench holds millions of rows in one workspace (two 1,000,000-row imports besides
        # the API-loaded datasets): past the default plan's 1,000,000, as an operator would set.
        workspaces.set_plan("default", max_rows=50_000_000)
        dataset_id = data.create_dataset(stack, f"bench-{secrets.token_hex(4)}", INDEX_EXPECTED_ROWS)["id"]

        loaded = 0
        for n in (SMALL_N, LARGE_N):
            print(f"Loading rows {loaded:,}–{n - 1:,} through POST /v1/datasets/{{id}}/rows…", flush=True)
            load = data.load(stack, dataset_id, loaded, n - loaded)
            loaded = n
            run.add(
                [
                    report.info(
                        f"build: {load.rows:,} rows → N={n:,} ({data.BODY_ROWS:,}-row bodies, "
                        f"{data.LOAD_WORKERS} workers)",
                        f"{load.seconds:.1f} s",
                        note=f"{load.rows_per_second:,.0f} rows/s through the API on the local stack",
                    )
                ]
            )
            run.add(
                report.guarded(
                    f"items read by index-backed queries, N={n:,}",
                    "≤ L + look-ahead (+ M)",
                    partial(reads.index_figures, stack, dataset_id, n, shards),
                )
            )
            run.add([_replica_caught_up(stack, dataset_id, n)])
            run.add(
                report.guarded(
                    f"unindexed filter, N={n:,}",
                    "—",
                    partial(reads.scan_figures, stack, dataset_id, n),
                )
            )
        run.add(
            report.guarded(
                "items read by a deep cursor page",
                "≤ page size + look-ahead",
                lambda: reads.cursor_figures(stack, dataset_id, shards),
            )
        )
        run.add(
            report.guarded(
                "items read for the unfiltered total / row_count",
                "≤ 0",
                lambda: reads.total_figures(stack, dataset_id, LARGE_N),
            )
        )
        run.add(
            report.guarded(
                "DynamoDB write requests per imported row",
                f"≤ {writes.TARGET}",
                lambda: writes.figures(shards),
            )
        )
        run.add(dropimport.figures(stack))
        _replica_figures(run, stack)
        print(f"Writing {scale.BIG_N:,} rows straight into the stack's DynamoDB…", flush=True)
        run.add(
            report.guarded(
                "index page and single-row read with 1,000,000 rows in the stack",
                f"≤ {scale.TARGET_MS:.0f} ms",
                lambda: scale.figures(stack.aws_endpoint, settings().rows_table),
            )
        )
        print("Stopping the local stack…", flush=True)


def _replica_figures(run: Run, stack: LocalStack) -> None:
    """A BIG_N-row dataset imported through the drop folder, then queried on its replica."""
    import pyarrow.parquet as pq

    from infra.sizes import ANALYTICS_MEMORY_MB

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "bench.parquet")
        print(f"Writing {BIG_N:,} bench rows to Parquet…", flush=True)
        pq.write_table(tables.arrow_table(BIG_N), path, row_group_size=100_000)
        name = f"bench-big-{secrets.token_hex(4)}"
        dataset = data.create_dataset(stack, name, expected_rows=BIG_N)
        print(f"Dropping it into the drop folder of dataset {name}…", flush=True)
        with open(path, "rb") as file:
            seconds, record = dropimport.drop(stack, name, file.read(), timeout=BIG_IMPORT_TIMEOUT)
        if record.get("status") != "succeeded" or record.get("rows_imported") != BIG_N:
            reason = f"{record.get('status')}: {record.get('reason') or record.get('errors')}"
            run.add([report.missed(f"import of {BIG_N:,} rows", "succeeded", reason)])
            return
        run.add([_chunked_import_figure(seconds, record)])
        run.add(
            report.guarded(
                f"the same file written by one writer (chunk-rows={BIG_N})",
                "—",
                partial(_one_writer_figure, stack, path, seconds),
            )
        )
        from datasets_core.logic.datasets import shards_for

        run.add(
            report.guarded(
                f"items read by index-backed queries, N={BIG_N:,}",
                "≤ L + look-ahead (+ M)",
                partial(reads.index_figures, stack, dataset["id"], BIG_N, shards_for(BIG_N)),
            )
        )
        run.add(
            report.guarded(
                f"replica figures, N={BIG_N:,}",
                f"≤ {replica.TARGET_RATIO} × DuckDB",
                partial(replica.figures, stack, dataset["id"], path, BIG_N),
            )
        )
        run.add([replica.memory_figure(stack, ANALYTICS_MEMORY_MB)])


def _replica_caught_up(stack: LocalStack, dataset_id: str, rows: int) -> Figure:
    """Wait until compactions have folded the rows loaded through the API into a snapshot, all
    but less than the local stack's threshold (inserts ask for them once the cut margin has
    passed): replica queries then read a snapshot and a small delta, not every row from the
    change log, which moto serves at about 1 ms a row."""
    from local.stack import LOCAL_COMPACT_AFTER_ROWS

    name = f"replica snapshot of the API-loaded rows, N={rows:,}"
    if rows < LOCAL_COMPACT_AFTER_ROWS:
        return report.info(
            name, "none needed", note=f"fewer rows than COMPACT_AFTER_ROWS ({LOCAL_COMPACT_AFTER_ROWS:,})"
        )
    began = time.perf_counter()
    while time.perf_counter() - began < REPLICA_WAIT_SECONDS:
        versions = stack.call("GET", f"/datasets/{dataset_id}/versions")["data"]
        current = [version for version in versions if version["current"]]
        if current and rows - current[0]["row_count"] < LOCAL_COMPACT_AFTER_ROWS:
            return report.info(
                name,
                f"{time.perf_counter() - began:.0f} s",
                note=(
                    f"version {current[0]['version']} ({current[0]['cause']}) holds "
                    f"{current[0]['row_count']:,} rows; the rest are the delta"
                ),
            )
        time.sleep(2)
    return report.info(name, "not yet", note=f"after {REPLICA_WAIT_SECONDS:.0f} s")


def _chunked_import_figure(seconds: float, record: dict[str, Any]) -> Figure:
    """Chunks written at once in the drop-folder import (SPEC §7: > 1), beside its wall time."""
    concurrent = int(record.get("max_concurrent_chunks") or 0)
    chunks = int(record.get("chunks_total") or 1)
    return report.at_least(
        f"chunks written concurrently, import of {BIG_N:,} rows through the drop folder (local stack)",
        concurrent,
        2,
        note=(
            f"{chunks} chunks of {BIG_N // chunks:,} rows, "
            f"IMPORT_CONCURRENCY workers; end to end {seconds:.0f} s, {BIG_N / seconds:,.0f} rows/s on moto"
        ),
    )


def _one_writer_figure(stack: LocalStack, path: str, chunked_seconds: float) -> list[Figure]:
    """The same file in one chunk (one writer), for the comparison SPEC §7 asks for."""
    name = f"bench-one-writer-{secrets.token_hex(4)}"
    with open(path, "rb") as file:
        seconds, record = dropimport.drop(
            stack, name, file.read(), timeout=BIG_IMPORT_TIMEOUT, metadata={"chunk-rows": str(BIG_N)}
        )
    if record.get("status") != "succeeded" or record.get("rows_imported") != BIG_N:
        raise RuntimeError(f"import ended {record.get('status')!r}: {record.get('reason')}")
    return [
        report.info(
            f"import of {BIG_N:,} rows by one writer (chunk-rows={BIG_N:,}), end to end",
            f"{seconds:.0f} s",
            note=(
                f"{record.get('chunks_total')} chunk; the chunked import took {chunked_seconds:.0f} s "
                f"({seconds / chunked_seconds:.1f}× faster) in the same run"
            ),
        )
    ]


def main() -> int:
    began = time.perf_counter()
    _hermetic()
    run = Run()
    print("Measuring write units and index pages in-process (moto), indexes projecting ALL vs keys only…")
    run.add(
        report.guarded(
            "write units per row and index pages",
            f"≤ {amplification.ROUND_TRIPS_TARGET}",
            amplification.figures,
        )
    )
    _on_stack(run)
    from datasets_core.logic.datasets import shards_for

    shards = shards_for(INDEX_EXPECTED_ROWS)
    print("Measuring the import conversion, the cold start and the package size…", flush=True)
    run.add(
        report.guarded(
            "import conversion", f"≤ {conversion.TARGET} × to_pylist()", partial(conversion.figures, shards)
        )
    )
    run.add(report.guarded("cold start", f"≤ {coldstart.TARGET} ×", coldstart.figures))
    run.add(report.guarded("an API function's zipped code + core layer", "≤ 5 MiB", package.figures))

    code = report.exit_code(run.figures)
    missed = sum(1 for figure in run.figures if figure.ok is False)
    print()
    print(f"SPEC §10 figures, measured by `{COMMAND}` ({time.perf_counter() - began:.0f} s):")
    print()
    print(report.table(run.figures))
    print()
    print("All targets met." if code == 0 else f"{missed} target(s) missed.")
    return code


if __name__ == "__main__":
    sys.exit(main())
