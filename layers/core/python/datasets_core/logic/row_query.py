"""Reading rows: ``GET .../rows`` (SPEC §5, §5b).

The query string becomes a ``RowsQuery`` once (``query.grammar``); the planner picks an access
path (``query.planner``). An index range or the row-order merge is read here; everything else
is answered from the columnar replica by the analytics function (``replica.remote``), which
runs the same grammar and semantics, so every plan returns exactly the same answer. Bulk
writes by condition find their rows the same way (``logic/bulk_where.py``).
"""

from __future__ import annotations

from typing import Any

from .. import auth
from ..query import answer, cursor, evaluate, grammar, planner
from ..replica import remote
from ..store import datasets as dataset_store


def query(
    principal: auth.Principal, dataset_id: str, params: dict[str, list[str]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    dataset = dataset_store.get(principal.workspace, dataset_id)
    parsed = grammar.parse_rows_query(params, dataset.columns)
    result = planner.run(dataset, parsed)
    if result is None:
        return remote.query(dataset, params)
    meta: dict[str, Any] = {
        "plan": result.plan,
        "items_read": result.items_read,
        "limit": parsed.page.limit,
        "offset": parsed.page.offset,
        "next_cursor": result.next_cursor,
    }
    total = result.total
    if result.total_pending:
        # Counting on the index would read more than a page may: the replica counts it.
        total = remote.count(dataset, params)
        meta["plan"] = f"replica+{result.plan}"
        meta["total_from"] = "replica"
    elif parsed.count and result.total_source:
        meta["total_from"] = result.total_source
    project = answer.projector(dataset, parsed)
    data = {
        "rows": [project(row) for row in result.rows],
        "total": total,
        "columns": answer.returned_columns(dataset, parsed),
    }
    values_of = evaluate.order_values(parsed.order, dataset.columns)

    def cursor_after(count: int) -> str:
        last = result.rows[count - 1]
        return cursor.encode(dataset, parsed, values_of(last), last["row_index"])

    answer.bound(data, meta, "rows", result.next_cursor is not None, cursor_after)
    return data, meta
