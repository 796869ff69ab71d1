"""The shape of a rows answer (SPEC §5): which columns it lists, how ``select`` projects rows,
and how many rows a page may carry.

Shared by every plan, so an index page and a replica page look exactly alike.

Byte-bounded pages (SPEC §2): a page stops before its JSON passes ``PAGE_BYTES`` (5 MB), and
before Lambda's 6 MB response limit, which counts the body as the runtime carries it: a JSON
string inside the proxy response (the Python 3.13 runtime writes it with ``ensure_ascii=False``,
so each ``"`` and ``\\`` of the body takes one byte more). A page of rows with many short
strings can pass 6 MB that way while its own JSON is under 5 MB. A cut page says so
(``meta.cut_at_bytes``) and continues like any page: a cursor after its last row (rows), or
the offset of its next item (groups and distinct values, which page by offset).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..jsonutil import dumps
from ..records import Dataset
from .ast import METADATA_FIELDS, RowsQuery
from .fields import fields, resolve

PAGE_BYTES = 5 * 1024 * 1024
# What a response may weigh as Lambda carries it: its 6 MB (6,291,456 bytes) less room for the
# status, headers and the proxy response's own keys.
CARRIED_BYTES = 6 * 1024 * 1024 - 64 * 1024


def returned_columns(dataset: Dataset, query: RowsQuery) -> list[str]:
    """The user columns (result keys) a response carries: the selected ones, or all of them."""
    if query.aggregates:
        return [item.key for item in query.select or ()] + [aggregate.key for aggregate in query.aggregates]
    if query.select is None:
        return dataset.column_names
    return [
        item.key
        for item in query.select
        if item.ref.path or item.ref.name not in METADATA_FIELDS or item.alias
    ]


def projector(dataset: Dataset, query: RowsQuery) -> Any:
    """A function turning a full API-form row into the row the query selects."""
    if query.select is None:
        return lambda row: row
    known = fields(dataset.columns)
    readers = [(item.key, resolve(item.ref, known).value) for item in query.select]

    def project(row: dict[str, Any]) -> dict[str, Any]:
        picked = {"id": row["id"]}
        for key, read in readers:
            picked[key] = read(row)
        return picked

    return project


def weight(value: Any) -> tuple[int, int]:
    """(bytes of ``value``'s JSON, bytes it takes inside a JSON string: Lambda's carried size)."""
    text = dumps(value)
    size = len(text.encode())
    return size, size + text.count('"') + text.count("\\")


def fit(
    items: Sequence[Any], answer: Any, more: bool, continuation: Callable[[int], Any] | None = None
) -> int:
    """How many of ``items`` (from the start) a page may carry: all of them, or fewer when the
    answer would pass ``PAGE_BYTES`` or ``CARRIED_BYTES`` (at least one: a row is far smaller).

    ``answer`` is the whole answer with an empty item list (its meta holding the continuation's
    placeholder); ``more`` tells whether items follow the page anyway (a continuation is then
    given whatever the cut); ``continuation(k)`` is what continues after the first ``k`` items
    (a cursor text, an offset), weighed in when it is given.
    """
    size, carried = weight(answer)
    # Most pages are far from the limits: weigh them whole, once (the list's brackets are in
    # ``answer`` already, as its empty list).
    whole_size, whole_carried = weight(list(items))
    extra_size, extra_carried = (
        weight(continuation(len(items))) if more and continuation and items else (0, 0)
    )
    if (
        size + whole_size + extra_size <= PAGE_BYTES
        and carried + whole_carried + extra_carried <= CARRIED_BYTES
    ):
        return len(items)
    sizes: list[tuple[int, int]] = []  # running totals with each item taken
    for number, item in enumerate(items):
        item_size, item_carried = weight(item)
        size += item_size + (1 if number else 0)  # the comma between items
        carried += item_carried + (1 if number else 0)
        if size > PAGE_BYTES or carried > CARRIED_BYTES:
            break
        sizes.append((size, carried))
    count = len(sizes)
    if count == len(items) and not more:
        return count
    while count > 1 and continuation is not None:
        extra, extra_carried = weight(continuation(count))
        size, carried = sizes[count - 1]
        if size + extra <= PAGE_BYTES and carried + extra_carried <= CARRIED_BYTES:
            break
        count -= 1
    return max(count, 1) if items else 0


def bound(
    data: dict[str, Any],
    meta: dict[str, Any],
    key: str,
    more: bool,
    cursor_after: Callable[[int], str] | None = None,
) -> None:
    """Cut ``data[key]`` (in place) to what a page may carry, and say so in ``meta``.

    Rows continue by cursor (``cursor_after(k)``: the cursor after the first ``k`` rows; ``more``:
    rows follow the page anyway); groups and distinct values, which page by offset, by
    ``meta.next_offset``.
    """
    items = data[key]
    shell = {
        "data": {**data, key: []},
        "meta": {**meta, "next_cursor": None, "next_offset": None, "cut_at_bytes": True},
    }
    if cursor_after is not None:
        kept = fit(items, shell, more, cursor_after)
        if kept < len(items):
            data[key] = items[:kept]
            meta["next_cursor"] = cursor_after(kept)
            meta["cut_at_bytes"] = True
        return
    offset = int(meta.get("offset") or 0)
    kept = fit(items, shell, False, lambda count: offset + count)
    if kept < len(items):
        data[key] = items[:kept]
        meta["next_offset"] = offset + kept
        meta["cut_at_bytes"] = True


def abridged(answer: Any) -> Any:
    """``answer`` with its rows (``data.rows``, or a row as ``data``) reduced to their id and
    metadata, marked ``"abridged": true``: what is said of written rows whose whole echo is too
    big to carry (Lambda's 6 MB) or to keep (an idempotency record's 400 KB)."""
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict):
        return answer
    if isinstance(data.get("rows"), list):
        rows = [_metadata(row) for row in data["rows"]]
        return {**answer, "data": {**data, "rows": rows, "abridged": True}}
    if "id" in data and "row_index" in data:
        return {**answer, "data": {**_metadata(data), "abridged": True}}
    return answer


def _metadata(row: Any) -> Any:
    if not isinstance(row, dict):
        return row
    return {name: value for name, value in row.items() if name in METADATA_FIELDS}
