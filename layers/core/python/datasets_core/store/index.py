"""Index slots: the GSI attributes of a row, and ordered reads of one slot.

A dataset indexes up to five columns; each indexed column holds one of the rows table's
GSIs ``idx1``..``idx5`` (its ``slot``). A row carries, per indexed column:

- ``x<slot>p = <dataset_id>#<generation>#<slot>.<shard>`` — the index partition, sharded
  like the rows so index writes spread too;
- ``x<slot>s = encoding.sort_key(value, type, row_index)`` — every row, nulls included
  (they sort last), so an index serves ``order`` and ``is.null`` as well as filters.

The index projects keys only (``infra/tables.py``): a walk yields *entries* — the row's table
key (``pk``, ``sk``) and its index sort key (``_key``) — and the reader fetches the rows it
needs with batched gets (``query.paths``). A walk reads one shard of one slot through a list
of key ranges in a direction and yields entries in *key order*: ranges in walk order (each
entry carries its range's position, ``_range``), and within a range by value (descending
walks: value descending) with ties by ``row_index`` ascending (§5's tie-break) — a
descending walk reads each group of ties in ascending ``row_index`` without reading the
whole column. Key order is the exact query order except inside a group of equal *cut* keys
(values longer than the key keeps); the reader re-sorts such groups with the rows' exact
values.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.conditions import Key
from msgspec import Struct

from ..records import Dataset
from . import encoding
from .rows import ReadMeter, index_partition
from .tables import rows

LOW = b"\x00"
HIGH_VALUES = b"\x10"  # above every non-null encoding, below NULL
TOP = b"\xff" * 12  # above every key
_AFTER_GROUP = b"\xff" * 10


class Range(Struct, frozen=True):
    """Inclusive bounds on the index sort key."""

    low: bytes = LOW
    high: bytes = TOP


def group_range(value_key: bytes) -> Range:
    """Every key whose value part is ``value_key`` (encodings are prefix-free)."""
    return Range(value_key, value_key + _AFTER_GROUP)


def walk(
    dataset: Dataset,
    slot: int,
    shard: int,
    ranges: list[Range],
    descending: bool,
    meter: ReadMeter,
    page_size: int,
    after: bytes | None = None,
) -> Iterator[dict[str, Any]]:
    """Entries of ``ranges`` (already in walk order) in key order, resuming after key ``after``."""
    pk = index_partition(dataset, slot, shard)
    first = 0
    if after is not None:
        holding = [number for number, bounds in enumerate(ranges) if bounds.low <= after <= bounds.high]
        first = holding[0] if holding else 0
    for number, bounds in enumerate(ranges[first:], first):
        if after is not None and number == first:
            group = encoding.value_part(after)
            # A group of cut keys is in exact-value order, not row_index order: rows after the
            # cursor's may sort before its key, so such a group is read again from its start
            # (the planner drops the rows up to the cursor with the exact comparison).
            resume = group if len(group) >= encoding.MAX_VALUE_BYTES else after + b"\x00"
            if descending:
                # The rest of the cursor's tie group first (ascending row_index), then below it.
                rest = Range(resume, group + _AFTER_GROUP)
                yield from _entries(_pages(pk, slot, rest, False, meter, page_size), number)
                if group < bounds.low:
                    continue
                bounds = Range(bounds.low, min(bounds.high, group))
            else:
                bounds = Range(max(bounds.low, resume), bounds.high)
        if descending:
            yield from _entries(_descending(pk, slot, bounds, meter, page_size), number)
        else:
            yield from _entries(_pages(pk, slot, bounds, False, meter, page_size), number)


def count(dataset: Dataset, slot: int, shard: int, bounds: Range, meter: ReadMeter) -> int:
    """How many index entries of one shard fall in ``bounds`` (``Select=COUNT``)."""
    kwargs: dict[str, Any] = {
        "IndexName": f"idx{slot}",
        "KeyConditionExpression": _condition(index_partition(dataset, slot, shard), slot, bounds),
        "Select": "COUNT",
    }
    total = 0
    while True:
        page = rows().query(**kwargs)
        meter.add(page)
        total += int(page.get("Count", 0))
        if "LastEvaluatedKey" not in page:
            return total
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _condition(pk: str, slot: int, bounds: Range) -> Any:
    return Key(f"x{slot}p").eq(pk) & Key(f"x{slot}s").between(bounds.low, bounds.high)


def _pages(
    pk: str, slot: int, bounds: Range, descending: bool, meter: ReadMeter, page_size: int
) -> Iterator[list[dict[str, Any]]]:
    kwargs: dict[str, Any] = {
        "IndexName": f"idx{slot}",
        "KeyConditionExpression": _condition(pk, slot, bounds),
        "ScanIndexForward": not descending,
        "Limit": page_size,
    }
    while True:
        page = rows().query(**kwargs)
        meter.add(page)
        items = [_entry(item, slot) for item in page.get("Items", [])]
        if items:
            yield items
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        kwargs["Limit"] = min(kwargs["Limit"] * 2, 1000)  # a walk that goes deep fetches wider pages


def _entry(item: dict[str, Any], slot: int) -> dict[str, Any]:
    """An index entry: the row's table key and its index sort key (all a keys-only index holds)."""
    return {"pk": item["pk"], "sk": int(item["sk"]), "_key": bytes(item[f"x{slot}s"])}


def _page(
    pk: str, slot: int, bounds: Range, descending: bool, meter: ReadMeter, page_size: int
) -> tuple[list[dict[str, Any]], bool]:
    """One Query page: its items and whether the range holds more after them."""
    page = rows().query(
        IndexName=f"idx{slot}",
        KeyConditionExpression=_condition(pk, slot, bounds),
        ScanIndexForward=not descending,
        Limit=page_size,
    )
    meter.add(page)
    return [_entry(item, slot) for item in page.get("Items", [])], "LastEvaluatedKey" in page


def _entries(pages: Iterator[list[dict[str, Any]]], number: int) -> Iterator[dict[str, Any]]:
    for page in pages:
        for entry in page:
            entry["_range"] = number
            yield entry


def _descending(
    pk: str, slot: int, bounds: Range, meter: ReadMeter, page_size: int
) -> Iterator[list[dict[str, Any]]]:
    """Pages of entries descending by value, ties ascending by row_index, reading ties no
    more than once.

    Complete runs of ties inside a page are put in ascending key order in memory; the run cut
    by the page end is read again on its own, ascending, and the walk goes on below it.
    """
    high = bounds.high
    while high >= bounds.low:
        # One page: whether more follow is DynamoDB's to say (LastEvaluatedKey), not the page's
        # length: a page also ends at 1 MB of items, short of its Limit.
        page, more = _page(pk, slot, Range(bounds.low, high), True, meter, page_size)
        if not page:
            return
        runs: list[list[dict[str, Any]]] = []
        for entry in page:
            if runs and encoding.value_part(entry["_key"]) == encoding.value_part(runs[-1][0]["_key"]):
                runs[-1].append(entry)
            else:
                runs.append([entry])
        if not more:
            yield [entry for run in runs for entry in reversed(run)]
            return
        last_value = encoding.value_part(runs[-1][0]["_key"])
        yield [entry for run in runs[:-1] for entry in reversed(run)]
        yield from _pages(pk, slot, group_range(last_value), False, meter, page_size)
        high = last_value  # every key of that run is above its bare value part
