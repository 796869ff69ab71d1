"""Answering a rows query from the replica with pyarrow: filters, search, order, cursor, paging,
distinct values and aggregates (SPEC §5, §5b, §6b), with exactly the semantics of
``query.evaluate`` (which the property tests hold both to).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from decimal import Context, Decimal, localcontext
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from msgspec import Struct

from .. import values
from ..columns import ColumnType
from ..errors import InvalidQuery
from ..query import answer, cursor, evaluate
from ..query.ast import Aggregate, Ref, RowsQuery
from ..query.columnar import ColumnData, condition_mask, python_equality_keys, python_order_keys, search_mask
from ..query.fields import JSON_VALUE
from ..query.operators import equality_key, order_key
from .table import ReplicaTable

_AVG = Context(prec=38)


class Answer(Struct):
    data: dict[str, Any]
    total: int | None
    next_cursor: str | None
    # For ``query.answer.bound``: the list a page may cut, whether items follow the page, and
    # (rows only) the cursor after the first k rows.
    key: str = "rows"
    more: bool = False
    cursor_after: Callable[[int], str] | None = None


def matching(table: ReplicaTable, query: RowsQuery) -> pa.Array:
    """Positions (int64) of the rows every condition and the search match."""
    rows = table.num_rows
    mask: pa.Array | None = None
    for condition in query.filters:
        found = condition_mask(condition, table.column, rows)
        mask = found if mask is None else pc.and_kleene(mask, found)
    if query.search is not None:
        columns = [table.column(Ref(column.name)) for column in table.dataset.columns]
        found = search_mask(query.search, columns, rows)
        mask = found if mask is None else pc.and_kleene(mask, found)
    if mask is None:  # every row (built in Arrow: a Python range of a million ints costs 50 ms)
        mask = pa.nulls(rows, pa.bool_())
        return pc.indices_nonzero(pc.fill_null(mask, True)).cast(pa.int64())
    return pc.indices_nonzero(pc.fill_null(mask, False)).cast(pa.int64())


def picked(array: pa.Array, matched: pa.Array) -> pa.Array:
    """``array``'s values at the ``matched`` positions. Positions from ``matching`` are sorted
    and distinct, so as many as the rows means every row: the array itself, not a copy."""
    return array if len(matched) == len(array) else array.take(matched)


def run(table: ReplicaTable, query: RowsQuery) -> Answer:
    if query.cursor is not None and query.page.offset:
        raise InvalidQuery("Use either 'cursor' or 'offset', not both.", {"parameter": "cursor"})
    matched = matching(table, query)
    if query.aggregates:
        return _aggregate(table, query, matched)
    if query.distinct is not None:
        return _distinct(table, query, matched)
    return _rows(table, query, matched)


# --- rows ---------------------------------------------------------------------------------------
def ordered(table: ReplicaTable, query: RowsQuery, matched: pa.Array, limit: int | None = None) -> pa.Array:
    """``matched`` positions in the query's order (ties by row_index); the first ``limit`` only
    when given (a top-k selection, not a full sort)."""
    if not query.order:
        if table.in_row_order:
            return matched
        # Changed rows follow the snapshot's: the default order (row_index) is a sort then.
        indexes = picked(table.column(Ref("row_index")).array, matched)
        return matched.take(pc.sort_indices(indexes))
    columns: dict[str, pa.Array] = {}
    keys: list[tuple[str, str, str]] = []
    for number, term in enumerate(query.order):
        data = table.column(term.ref)
        direction = "descending" if term.descending else "ascending"
        nulls = "at_start" if term.effective_nulls_first else "at_end"
        arrays = data.sort_arrays() if data.native else [_python_ranks(data, matched)]
        for part, array in enumerate(arrays):
            name = f"k{number}_{part}"
            columns[name] = picked(array, matched) if data.native else array
            keys.append((name, direction, nulls))
    columns["row_index"] = picked(table.column(Ref("row_index")).array, matched)
    keys.append(("row_index", "ascending", "at_end"))
    keyed = pa.table(columns)
    if limit is not None and limit < keyed.num_rows:
        chosen = pc.select_k_unstable(keyed, limit, sort_keys=keys)
        chosen = chosen.take(pc.sort_indices(keyed.take(chosen), sort_keys=keys))
    else:
        chosen = pc.sort_indices(keyed, sort_keys=keys)
    return matched.take(chosen)


def _python_ranks(data: ColumnData, matched: pa.Array) -> pa.Array:
    """Dense ranks (int64, null for null) of a field whose order only Python knows."""
    keys = python_order_keys(data)
    positions = matched.to_pylist()
    present = sorted({keys[position] for position in positions if keys[position] is not None})
    rank = {key: number for number, key in enumerate(present)}
    return pa.array([None if keys[p] is None else rank[keys[p]] for p in positions], pa.int64())


def _rows(table: ReplicaTable, query: RowsQuery, matched: pa.Array) -> Answer:
    dataset = table.dataset
    start, stop = query.page.offset, query.page.offset + query.page.limit
    total = len(matched) if query.count else None
    if query.cursor is not None:
        position = cursor.decode(dataset, query, query.cursor)
        in_order = ordered(table, query, matched)
        key_of = evaluate.position_key(query.order, dataset.columns)
        after = key_of(position.values, position.row_index)
        first = _first_after(table, query, in_order, after)
        window_positions = in_order.slice(first, query.page.limit + 1)
    else:
        in_order = ordered(table, query, matched, limit=stop + 1)
        window_positions = in_order.slice(start, query.page.limit + 1)
    more = len(window_positions) > query.page.limit
    window_positions = window_positions.slice(0, query.page.limit)
    rows = table.rows(window_positions)
    values_of = evaluate.order_values(query.order, dataset.columns)

    def cursor_after(count: int) -> str:
        last = rows[count - 1]
        return cursor.encode(dataset, query, values_of(last), last["row_index"])

    next_cursor = cursor_after(len(rows)) if more and rows else None
    project = answer.projector(dataset, query)
    data = {
        "rows": [project(row) for row in rows],
        "total": total,
        "columns": answer.returned_columns(dataset, query),
    }
    return Answer(data, total, next_cursor, "rows", more, cursor_after)


def _first_after(table: ReplicaTable, query: RowsQuery, in_order: pa.Array, after: tuple[Any, ...]) -> int:
    """How many rows of ``in_order`` sort at or before a cursor's position (binary search)."""
    dataset = table.dataset
    sort_key = evaluate.sort_key(query.order, dataset.columns)

    class _Keys(Sequence[Any]):
        def __len__(self) -> int:
            return len(in_order)

        def __getitem__(self, index: Any) -> Any:
            row = table.rows([in_order[index].as_py()])[0]
            return sort_key(row)

    return bisect.bisect_right(_Keys(), after)


# --- distinct values ------------------------------------------------------------------------------
def _distinct(table: ReplicaTable, query: RowsQuery, matched: pa.Array) -> Answer:
    name = query.distinct or ""
    data = table.column(Ref(name))
    kind = data.kind
    groups: dict[Any, list[Any]] = {}
    if data.native and kind is not ColumnType.JSON:
        counted = pc.value_counts(picked(data.array, matched))
        values_ = counted.field("values")
        counts = counted.field("counts").to_pylist()
        column = table.dataset.column(name)
        from .arrow import to_python

        for value, count in zip(to_python(values_, column), counts, strict=True):
            key = None if value is None else equality_key(value, kind)
            entry = groups.setdefault(key, [value, 0])
            entry[1] += count
    else:
        objects = data.objects
        for position in matched.to_pylist():
            value = objects[position]
            key = None if value is None else equality_key(value, kind)
            entry = groups.setdefault(key, [value, 0])
            entry[1] += 1

    def rank(entry: list[Any]) -> tuple[Any, ...]:
        value, count = entry
        return (-count, 1, None) if value is None else (-count, 0, order_key(value, kind))

    listed = [{"value": value, "count": count} for value, count in sorted(groups.values(), key=rank)]
    window = listed[query.page.offset : query.page.offset + query.page.limit]
    return Answer({"column": name, "values": window, "total_unique": len(listed)}, None, None, "values")


# --- aggregates -----------------------------------------------------------------------------------
def _aggregate(table: ReplicaTable, query: RowsQuery, matched: pa.Array) -> Answer:
    """Groups of the plain ``select`` items with their aggregates (SPEC §5b)."""
    fields_ = [table.column(item.ref) for item in query.select or ()]
    measured = [table.column(a.ref) for a in query.aggregates if a.ref is not None]
    if all(_groupable(data) for data in fields_ + measured):
        results = _aggregate_columnar(table, query, matched, fields_)
    else:
        results = _aggregate_rows(table, query, matched, fields_)
    results = _order_groups(results, query, table)
    total = len(results) if query.count else None
    window = results[query.page.offset : query.page.offset + query.page.limit]
    columns = answer.returned_columns(table.dataset, query)
    return Answer({"rows": window, "total": total, "columns": columns}, total, None)


def _groupable(data: ColumnData) -> bool:
    return data.native and data.kind is not ColumnType.JSON


def _aggregate_columnar(
    table: ReplicaTable, query: RowsQuery, matched: pa.Array, fields_: list[ColumnData]
) -> list[dict[str, Any]]:
    """Every group and aggregate computed by Arrow's hash aggregation, exactly: sums in
    decimal256, averages divided in Decimal, text min/max in the column's own order."""
    items = list(query.select or ())
    names = [f"g{number}" for number in range(len(items))]
    columns = {name: picked(data.comparable, matched) for name, data in zip(names, fields_, strict=True)}
    specs: list[Any] = []
    outputs: list[tuple[str, str, Any]] = []  # (aggregate key, how, source column name)
    texts: list[tuple[str, str]] = []  # text min/max: (function, column name)
    text_sources: dict[str, pa.Array] = {}
    for number, aggregate in enumerate(query.aggregates):
        if aggregate.ref is None:
            specs.append(([], "count_all"))
            outputs.append((aggregate.key, "count_all", None))
            continue
        data = table.column(aggregate.ref)
        source = f"a{number}"
        array = picked(data.comparable, matched)
        if aggregate.function == "count":
            columns[source] = array
            how = "count_distinct" if aggregate.distinct else "count"
            specs.append((source, how))
            outputs.append((aggregate.key, f"{source}_{how}", None))
        elif aggregate.function in ("sum", "avg"):
            columns[source] = array.cast(
                pa.decimal256(76, array.type.scale if pa.types.is_decimal(array.type) else 0)
            )
            specs += [(source, "sum"), (source, "count")]
            outputs.append((aggregate.key, aggregate.function, source))
        elif data.kind is ColumnType.STRING:
            # Text min/max in text order (casefolded, then exact): aggregate an integer rank of
            # that order, then map the extreme rank back to its text.
            texts.append((aggregate.function, source))
            text = picked(data.array, matched)
            columns[source] = _text_rank(text, picked(data.fold, matched))
            specs.append((source, aggregate.function))
            text_sources[source] = text
            outputs.append((aggregate.key, f"{source}_{aggregate.function}_text", None))
        else:
            columns[source] = array
            specs.append((source, aggregate.function))
            outputs.append((aggregate.key, f"{source}_{aggregate.function}", None))
    keyed = pa.table(columns) if columns else pa.table({"_": pa.array([0] * len(matched), pa.int8())})
    grouped = keyed.group_by(names, use_threads=False).aggregate(specs)
    for function, source in texts:
        ranks = grouped.column(f"{source}_{function}").combine_chunks()
        text = text_sources[source]
        at = pc.index_in(ranks, value_set=keyed.column(source).combine_chunks())
        grouped = grouped.append_column(f"{source}_{function}_text", text.take(at))
    results: list[dict[str, Any]] = []
    group_values = [
        _group_values(grouped.column(name).combine_chunks(), data, table)
        for name, data in zip(names, fields_, strict=True)
    ]
    produced = {name: grouped.column(name).to_pylist() for name in grouped.column_names}
    for position in range(grouped.num_rows):
        row: dict[str, Any] = {
            item.key: cells[position] for item, cells in zip(items, group_values, strict=True)
        }
        for key, how, source in outputs:
            if how in ("sum", "avg"):
                total, count = produced[f"{source}_sum"][position], produced[f"{source}_count"][position]
                row[key] = mean_or_sum(how, total, count)
            else:
                row[key] = api_value(produced[how][position])
        results.append(row)
    if not names and not results:
        results.append(
            {
                key: (0 if how in ("count_all",) or how.endswith(("_count", "_count_distinct")) else None)
                for key, how, _ in outputs
            }
        )
    return results


def _text_rank(text: pa.Array, folded: pa.Array) -> pa.Array:
    """An int64 whose order is text order (casefolded, then exact); null for null."""
    by_fold = pc.rank(folded, sort_keys="ascending", tiebreaker="dense").cast(pa.int64())
    exact = pc.rank(text, sort_keys="ascending", tiebreaker="dense").cast(pa.int64())
    spread = pc.max(exact).as_py() or 0
    combined = pc.add(pc.multiply(by_fold, spread + 1), exact)
    return pc.if_else(pc.is_null(text), pa.scalar(None, pa.int64()), combined)


def _group_values(array: pa.Array, data: ColumnData, table: ReplicaTable) -> list[Any]:
    from .arrow import to_python

    if data.kind is ColumnType.DATETIME and data.field.metadata:
        return [None if v is None else values.format_datetime(v) for v in array.to_pylist()]
    column = table.dataset.column(data.field.name) if not data.field.path else None
    return to_python(array, column) if column is not None else array.to_pylist()


def api_value(value: Any) -> Any:
    """An aggregate's Arrow result in API form (numbers exact, datetimes as text)."""
    from datetime import date, datetime

    if isinstance(value, Decimal):
        return _exact_number(value)
    if isinstance(value, datetime):
        return values.format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def mean_or_sum(how: str, total: Decimal | None, count: int) -> Any:
    if total is None or not count:
        return None
    if how == "sum":
        return _exact_number(Decimal(total))
    with localcontext(_AVG):
        return _exact_number(Decimal(total) / count)


def _aggregate_rows(
    table: ReplicaTable, query: RowsQuery, matched: pa.Array, fields_: list[ColumnData]
) -> list[dict[str, Any]]:
    """The same, row by row (JSON paths, json columns, numbers wider than decimal128)."""
    items = list(query.select or ())
    keys_by_field = [python_equality_keys(data) for data in fields_]
    groups: dict[tuple[Any, ...], list[int]] = {}
    for position in matched.to_pylist():
        groups.setdefault(tuple(keys[position] for keys in keys_by_field), []).append(position)
    if not items and not groups:
        groups[()] = []  # aggregates over no rows still answer one row (count 0, sum null)
    results: list[dict[str, Any]] = []
    for members in groups.values():
        row: dict[str, Any] = {}
        for item, data in zip(items, fields_, strict=True):
            row[item.key] = data.objects[members[0]]
        for aggregate in query.aggregates:
            row[aggregate.key] = _compute(table, aggregate, members)
        results.append(row)
    return results


def _compute(table: ReplicaTable, aggregate: Aggregate, members: list[int]) -> Any:
    if aggregate.ref is None:
        return len(members)
    data = table.column(aggregate.ref)
    present = [cell for cell in (data.objects[position] for position in members) if cell is not None]
    if aggregate.function == "count":
        return (
            len({equality_key(cell, data.kind) for cell in present}) if aggregate.distinct else len(present)
        )
    if not present:
        return None
    if aggregate.function in ("sum", "avg"):
        return mean_or_sum(aggregate.function, exact_sum(present), len(present))
    ranked = sorted(present, key=lambda cell: order_key(cell, data.kind))
    return ranked[0] if aggregate.function == "min" else ranked[-1]


def exact_sum(numbers: list[Any]) -> Decimal:
    with localcontext(Context(prec=400, Emin=-999_999, Emax=999_999)):
        return sum((Decimal(cell) for cell in numbers), Decimal(0))


def _exact_number(number: Decimal) -> Any:
    """A computed number in API form (int when integral); beyond DynamoDB's 38 digits it stays
    exact: a sum is not stored, so it needs no storable form."""
    try:
        return values.normalize(number, ColumnType.NUMBER)
    except values.ValueProblem:
        return int(number) if number == number.to_integral_value() else number


def _order_groups(
    results: list[dict[str, Any]], query: RowsQuery, table: ReplicaTable
) -> list[dict[str, Any]]:
    """Groups in ``order`` (group columns or aggregate names), then by every group key."""
    kinds: dict[str, Any] = {}
    for item in query.select or ():
        kinds[item.key] = table.column(item.ref).kind
    for aggregate in query.aggregates:
        if aggregate.function in ("count",) or aggregate.function in ("sum", "avg"):
            kinds[aggregate.key] = ColumnType.NUMBER
        else:
            assert aggregate.ref is not None
            kinds[aggregate.key] = table.column(aggregate.ref).kind
    terms: list[tuple[str, bool, bool]] = []
    for term in query.order:
        key = next((item.key for item in query.select or () if item.ref == term.ref), None) or term.ref.name
        terms.append((key, term.descending, term.effective_nulls_first))
    for item in query.select or ():
        if all(item.key != key for key, _, _ in terms):
            terms.append((item.key, False, False))

    def sort_key(row: dict[str, Any]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for key, descending, nulls_first in terms:
            value = row.get(key)
            kind = kinds[key]
            if value is None:
                parts.append((0 if nulls_first else 2, None))
            else:
                ranked = order_key(value, JSON_VALUE if kind is ColumnType.JSON else kind)
                parts.append((1, evaluate._Descending(ranked) if descending else ranked))
        return tuple(parts)

    return sorted(results, key=sort_key)
