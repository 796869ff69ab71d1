"""The analytics function's work: every answer that comes from the columnar replica.

Each entry point reads the dataset (strongly consistent), builds its table — the current
snapshot plus the rows changed since its cut, or a kept version alone for ``as_of`` — and
answers with ``replica.engine``. ``meta.items_read`` counts the DynamoDB items the delta read
(change-log items and changed rows), never the dataset.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidQuery
from ..jobs import compaction_requests
from ..query import answer, grammar, where
from ..query.ast import Ref, RowsQuery
from ..records import Dataset
from . import engine, layout
from . import export as exporter
from . import profile as profiler
from .table import ReplicaTable, delta, snapshot


def table_for(dataset: Dataset, as_of: int | None = None) -> ReplicaTable:
    """The rows a query reads: the current replica with its delta, or a kept version exactly."""
    if as_of is not None:
        kept = layout.version(dataset.workspace, dataset.id, as_of)
        return ReplicaTable(dataset, snapshot(dataset, kept), None)
    pointer = (
        dataset.replica if dataset.replica and dataset.replica.generation == dataset.generation else None
    )
    table = ReplicaTable(dataset, snapshot(dataset, pointer), delta(dataset, pointer))
    _maybe_compact(dataset, table)
    return table


def _maybe_compact(dataset: Dataset, table: ReplicaTable) -> None:
    change = table.change
    pointer = compaction_requests.current_pointer(dataset)
    if change is not None and len(change.changed) >= compaction_requests.threshold(pointer):
        compaction_requests.request(dataset)


def replica_meta(dataset: Dataset, table: ReplicaTable) -> dict[str, Any]:
    pointer = table.base.pointer
    return {
        "version": pointer.version if pointer is not None else 0,
        "snapshot_rows": table.base.table.num_rows,
        "delta_rows": len(table.change.changed) if table.change else 0,
    }


def parse(dataset: Dataset, params: dict[str, list[str]]) -> RowsQuery:
    return grammar.parse_rows_query(params, dataset.columns)


def query(dataset: Dataset, params: dict[str, list[str]]) -> dict[str, Any]:
    parsed = parse(dataset, params)
    table = table_for(dataset, parsed.as_of)
    result = engine.run(table, parsed)
    meta: dict[str, Any] = {
        "plan": "replica",
        "items_read": table.items_read,
        "limit": parsed.page.limit,
        "offset": parsed.page.offset,
        "next_cursor": result.next_cursor,
        "replica": replica_meta(dataset, table),
    }
    if result.total is not None:
        meta["total_from"] = "replica"
    # This answer travels twice as a JSON string (the Invoke response here, the API function's
    # proxy response there): both stay under Lambda's 6 MB when this one is bounded.
    answer.bound(result.data, meta, result.key, result.more, result.cursor_after)
    return {"data": result.data, "meta": meta}


def count(dataset: Dataset, params: dict[str, list[str]]) -> int:
    parsed = parse(dataset, params)
    table = table_for(dataset, parsed.as_of)
    return len(engine.matching(table, parsed))


def match(dataset: Dataset, raw_where: Any, limit: int | None = None) -> dict[str, Any]:
    """How many rows a bulk write's ``where`` matches (every row when it is empty), and their
    row indexes unless there are more than ``limit`` (the answer must stay far below Lambda's
    6 MB: a million indexes would not)."""
    conditions = where.parse_where(raw_where, dataset.columns, required=False)
    table = table_for(dataset)
    positions = engine.matching(table, RowsQuery(filters=conditions))
    if limit is not None and len(positions) > limit:
        return {"matched": len(positions), "indexes": []}
    indexes = table.column(Ref("row_index")).array.take(positions).to_pylist()
    return {"matched": len(positions), "indexes": indexes}


def _refuse(params: dict[str, list[str]], names: tuple[str, ...], endpoint: str, takes: str) -> None:
    for name in names:
        if name in params:
            raise InvalidQuery(
                f"'{name}' does not apply to {endpoint}: it takes {takes}.", {"parameter": name}
            )


def profile(dataset: Dataset, params: dict[str, list[str]]) -> dict[str, Any]:
    """Per-column statistics of the rows the filters (and ``search``) match, at ``as_of``."""
    _refuse(
        params,
        ("select", "order", "limit", "offset", "cursor", "distinct", "count"),
        "a profile",
        "filters, search and as_of",
    )
    parsed = parse(dataset, params)
    table = table_for(dataset, parsed.as_of)
    data = profiler.profile(table, engine.matching(table, parsed))
    data["version"] = replica_meta(dataset, table)["version"]
    return {"data": data, "meta": _meta(dataset, table)}


def export(dataset: Dataset, params: dict[str, list[str]]) -> dict[str, Any]:
    """Every row of the query, in its order, written to one file (SPEC §8)."""
    arguments = dict(params)
    formats = arguments.pop("format", ["csv"])
    file_format = formats[-1] if len(formats) == 1 else ""
    if file_format not in exporter.FORMATS:
        raise InvalidQuery(
            "format must be one of csv, jsonl, parquet.",
            {"parameter": "format", "value": ",".join(formats), "allowed": sorted(exporter.FORMATS)},
        )
    _refuse(
        arguments,
        ("limit", "offset", "cursor", "count", "distinct"),
        "an export",
        "filters, search, select, order and as_of, and writes every matching row",
    )
    parsed = parse(dataset, arguments)
    if parsed.aggregates:
        raise InvalidQuery(
            "An export writes rows; ask GET /v1/datasets/{id}/rows for aggregates.", {"parameter": "select"}
        )
    table = table_for(dataset, parsed.as_of)
    in_order = engine.ordered(table, parsed, engine.matching(table, parsed))
    return {"data": exporter.export(table, parsed, in_order, file_format), "meta": _meta(dataset, table)}


def _meta(dataset: Dataset, table: ReplicaTable) -> dict[str, Any]:
    return {"plan": "replica", "items_read": table.items_read, "replica": replica_meta(dataset, table)}
