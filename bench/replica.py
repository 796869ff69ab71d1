"""Whole-dataset work at 1,000,000 rows on the replica (SPEC §6b, §10), beside DuckDB.

The bench's rows are written once as a Parquet file. That file is dropped into the stack's
drop folder (the import writes the dataset's snapshot from it) and DuckDB reads the very same
file. Each query is then asked of the API over HTTP (end to end: key check, dataset read,
the analytics function's answer, JSON) and of DuckDB (a fresh connection reading the file),
best of a few runs each, in the same process and the same minute, so the ratio holds on a
loaded machine where absolute times would not.

Also reported: DynamoDB items each answer read (``meta.items_read``, which must not exceed
the rows changed since the snapshot, ``meta.replica.delta_rows``) and the analytics
function's peak memory (its worker's REPORT lines) against its configured memory size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from . import report
from .report import Figure
from .stack import LocalStack

RUNS = 3
TARGET_RATIO = 3.0
_TEXT = "strftime(ordered_at, '%Y-%m-%dT%H:%M:%S')"
# Every user column's text, as ``search`` reads it (SPEC §5).
_SEARCHED = ("city", "status", "note", "CAST(amount AS VARCHAR)", _TEXT)


def _search_sql(term: str) -> str:
    found = " OR ".join(f"contains(lower({column}), '{term}')" for column in _SEARCHED)
    return f"SELECT *, count(*) OVER () AS total FROM t WHERE {found} LIMIT 100"


@dataclass(frozen=True)
class Case:
    label: str
    params: list[tuple[str, str]]
    sql: str  # over ``t`` = the Parquet file


CASES: list[Case] = [
    Case("search=ber", [("search", "ber")], _search_sql("ber")),
    Case(
        "note=contains.customer 42",
        [("note", "contains.customer 42")],
        "SELECT *, count(*) OVER () FROM t WHERE contains(lower(note), 'customer 42') LIMIT 100",
    ),
    Case(
        "status=neq.paid",
        [("status", "neq.paid")],
        "SELECT *, count(*) OVER () FROM t WHERE status <> 'paid' LIMIT 100",
    ),
    Case(
        "status=eq.returned (unindexed) with total",
        [("status", "eq.returned")],
        "SELECT *, count(*) OVER () FROM t WHERE status = 'returned' LIMIT 100",
    ),
    Case(
        "distinct=city",
        [("distinct", "city")],
        "SELECT city, count(*) AS n FROM t GROUP BY city ORDER BY n DESC, lower(city), city LIMIT 100",
    ),
    Case(
        "order=status,amount.desc",
        [("order", "status,amount.desc")],
        "SELECT * FROM t ORDER BY lower(status), status, amount DESC NULLS FIRST LIMIT 100",
    ),
    Case(
        "offset=500000",
        [("offset", "500000")],
        "SELECT *, (SELECT count(*) FROM t) FROM t LIMIT 100 OFFSET 500000",
    ),
    Case(
        "select=city,status,n:count(),total:amount.sum()",
        [("select", "city,status,n:count(),total:amount.sum()")],
        "SELECT city, status, count(*), sum(amount), count(*) OVER () FROM t GROUP BY city, status "
        "ORDER BY lower(city), city, lower(status), status LIMIT 100",
    ),
]

PROFILE_SQL = [
    # What GET .../profile answers, column by column: count, nulls, distinct, min, max, the
    # ten most frequent values, and sum/mean for numbers.
    *(
        f"SELECT count({c}), count(*) - count({c}), count(DISTINCT {c}), min({c}), max({c}) FROM t"
        for c in ("city", "amount", "ordered_at", "status", "note")
    ),
    *(
        f"SELECT {c}, count(*) AS n FROM t WHERE {c} IS NOT NULL GROUP BY {c} ORDER BY n DESC, {c} LIMIT 10"
        for c in ("city", "amount", "ordered_at", "status", "note")
    ),
    "SELECT sum(amount), avg(amount) FROM t",
]
EXPORT_COLUMNS = "city,amount,ordered_at,status,note"


def _best(runs: int, work: Callable[[], Any]) -> tuple[float, Any]:
    best, answer = float("inf"), None
    for _ in range(runs):
        began = time.perf_counter()
        answer = work()
        best = min(best, time.perf_counter() - began)
    return best, answer


def _duck(path: str, statements: list[str]) -> Callable[[], Any]:
    def run() -> Any:
        connection = duckdb.connect()
        connection.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{path}')")
        answers = [connection.execute(sql).fetchall() for sql in statements]
        connection.close()
        return answers

    return run


def figures(stack: LocalStack, dataset_id: str, path: str, rows: int) -> list[Figure]:
    """Every replica figure for the dataset ``dataset_id`` imported from the Parquet ``path``."""
    base = f"/datasets/{dataset_id}"
    stack.call("GET", base + "/rows", params=[("search", "warm-up")])  # the snapshot, loaded once
    measured: list[Figure] = []
    reads: list[tuple[str, int, int]] = []
    for case in CASES:
        seconds, answer = _best(RUNS, lambda case=case: stack.call("GET", base + "/rows", params=case.params))
        duck_seconds, _ = _best(RUNS, _duck(path, [case.sql]))
        meta = answer["meta"]
        reads.append((case.label, meta["items_read"], meta.get("replica", {}).get("delta_rows", 0)))
        measured.append(_ratio(f"replica: {case.label}", seconds, duck_seconds, rows, meta["plan"]))
    seconds, answer = _best(RUNS, lambda: stack.call("GET", base + "/profile"))
    duck_seconds, _ = _best(RUNS, _duck(path, PROFILE_SQL))
    measured.append(_ratio("replica: profile", seconds, duck_seconds, rows, answer["meta"]["plan"]))
    meta = answer["meta"]
    reads.append(("profile", meta["items_read"], meta["replica"]["delta_rows"]))

    export_params = [("format", "csv"), ("select", EXPORT_COLUMNS)]
    seconds, answer = _best(RUNS, lambda: stack.call("GET", base + "/export", params=export_params))
    if answer["data"]["rows"] != rows:
        raise RuntimeError(f"the export wrote {answer['data']['rows']} rows, expected {rows}")
    copy = f"COPY (SELECT {EXPORT_COLUMNS} FROM t) TO '{path}.csv' (HEADER, DELIMITER ',')"
    duck_seconds, _ = _best(RUNS, _duck(path, [copy]))
    measured.append(_ratio("replica: export format=csv", seconds, duck_seconds, rows, "replica"))
    meta = answer["meta"]
    reads.append(("export", meta["items_read"], meta["replica"]["delta_rows"]))

    worst = max(reads, key=lambda read: read[1] - read[2])
    measured.append(
        report.at_most(
            "replica: DynamoDB items read − rows changed since the snapshot (worst query)",
            worst[1] - worst[2],
            0,
            note=f"{worst[0]}: {worst[1]} items read, delta {worst[2]} rows",
        )
    )
    return measured


def _ratio(name: str, seconds: float, duck_seconds: float, rows: int, plan: str) -> Figure:
    return report.at_most(
        f"{name}, N={rows:,} (time ÷ DuckDB's)",
        round(seconds / duck_seconds, 2),
        TARGET_RATIO,
        unit="×",
        note=f"API {seconds * 1000:,.0f} ms end to end vs DuckDB {duck_seconds * 1000:,.0f} ms; plan {plan}",
    )


def memory_figure(stack: LocalStack, configured_mb: int) -> Figure:
    """The analytics function's peak memory over the run (its workers' REPORT lines)."""
    peak = stack.peak_memory_mb.get("analytics")
    if peak is None:
        return report.missed("analytics peak memory", f"≤ {configured_mb} MB", "no REPORT line seen")
    return report.at_most(
        "analytics function: peak memory over the replica figures",
        peak,
        configured_mb,
        unit="MB",
        note="max resident set of its worker (Lambda's 'Max Memory Used') vs its configured size",
    )
