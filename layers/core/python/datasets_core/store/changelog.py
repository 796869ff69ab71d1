"""The change log: which rows of a dataset changed, in log order (the replica's delta, SPEC §6b).

Every API write of rows first logs the row indexes it is about to write, then writes them:

- ``pk = <dataset>#<generation>#log.<k>`` (``k < LOG_SHARDS``, chosen at random so writers
  spread), ``sk`` = a log position: the microsecond clock × 1,000 + a random tie-breaker.
- ``spans``: ``[[start, stop), ...]`` row-index ranges (an insert is one range, an update or
  delete of scattered rows lists each), ``origin``: ``api`` or ``import:<id>``.

The replica of a dataset is a snapshot that holds every change logged at or before its
``cut`` position; a reader adds the rows named by log items after the cut, read strongly
consistently from the rows table (a deleted row is simply absent). Logging before writing
makes the log a superset of the changes: a writer that dies in between names a row that did
not change, which costs a read, never an answer.

A snapshot's cut lags the clock by ``CUT_MARGIN_SECONDS``: a log item at or before the cut
was written (and its rows landed) long before the snapshot read them, as long as one write
takes less than the margin and clocks agree within it (Lambda bounds an API write to 29 s;
AWS clocks agree within milliseconds).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError
from msgspec import Struct

from ..config import settings
from ..records import Dataset
from .rows import ReadMeter, batch_write, delete_requests
from .tables import error_code, rows

LOG_SHARDS = 4
# How far two writers' clocks may disagree, in log positions (1 s): a log item written after
# another (in real time) may carry a position up to this much smaller.
CLOCK_ALLOWANCE = 1_000_000 * 1_000
MAX_SPANS_PER_ITEM = 2_000  # keeps an item far below DynamoDB's 400 KB
_TIE = 1_000

Span = tuple[int, int]  # [start, stop) row indexes


def now_position() -> int:
    """The log position of this instant (microseconds × 1,000)."""
    return time.time_ns() // 1_000 * _TIE


def cut_position(margin_seconds: float | None = None) -> int:
    """The position a new snapshot may cut at: the clock minus the margin, end of that µs."""
    margin = settings().cut_margin_seconds if margin_seconds is None else margin_seconds
    return (time.time_ns() // 1_000 - int(margin * 1_000_000)) * _TIE + _TIE - 1


def log_partition(dataset_id: str, generation: int, shard: int) -> str:
    return f"{dataset_id}#{generation}#log.{shard}"


def spans_of(row_indexes: Iterable[int]) -> list[Span]:
    """Sorted, merged ``[start, stop)`` ranges covering ``row_indexes``."""
    spans: list[list[int]] = []
    for index in sorted(set(row_indexes)):
        if spans and spans[-1][1] == index:
            spans[-1][1] = index + 1
        else:
            spans.append([index, index + 1])
    return [(start, stop) for start, stop in spans]


def record(dataset: Dataset, spans: list[Span], origin: str = "api", generation: int | None = None) -> int:
    """Log that the rows of ``spans`` are about to change; the position logged at."""
    gen = dataset.generation if generation is None else generation
    position = 0
    for start in range(0, max(len(spans), 1), MAX_SPANS_PER_ITEM):
        chunk = spans[start : start + MAX_SPANS_PER_ITEM]
        if not chunk:
            break
        position = _put(dataset.id, gen, chunk, origin)
    return position


def _put(dataset_id: str, generation: int, spans: list[Span], origin: str) -> int:
    item: dict[str, Any] = {"spans": [[a, b] for a, b in spans], "origin": origin}
    for _ in range(5):
        position = now_position() + random.randrange(_TIE)
        item.update(pk=log_partition(dataset_id, generation, random.randrange(LOG_SHARDS)), sk=position)
        try:
            rows().meta.client.put_item(
                TableName=settings().rows_table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
            return position
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
    raise RuntimeError("could not find a free change-log position")  # pragma: no cover


class Entry(Struct, frozen=True):
    position: int
    spans: tuple[Span, ...]
    origin: str


def since(
    dataset_id: str, generation: int, after: int, meter: ReadMeter, upto: int | None = None
) -> list[Entry]:
    """Log items after position ``after`` (and at or before ``upto``), every shard, in log order."""

    def shard(number: int) -> list[Entry]:
        condition = Key("pk").eq(log_partition(dataset_id, generation, number))
        condition &= Key("sk").between(after + 1, upto) if upto is not None else Key("sk").gt(after)
        return list(_entries(condition, meter))

    rows()  # the shared table handle exists before threads use it
    with ThreadPoolExecutor(max_workers=LOG_SHARDS) as pool:
        found = [entry for part in pool.map(shard, range(LOG_SHARDS)) for entry in part]
    return sorted(found, key=lambda entry: entry.position)


def _entries(condition: Any, meter: ReadMeter) -> Iterator[Entry]:
    kwargs: dict[str, Any] = {"KeyConditionExpression": condition, "ConsistentRead": True}
    while True:
        page = rows().query(**kwargs)
        meter.add(page)
        for item in page.get("Items", []):
            yield Entry(
                int(item["sk"]),
                tuple((int(a), int(b)) for a, b in item.get("spans", [])),
                str(item.get("origin", "api")),
            )
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def forget(dataset_id: str, generation: int, upto: int) -> int:
    """Delete log items at or before ``upto`` (folded into a snapshot); how many."""
    removed = 0
    meter = ReadMeter()
    for number in range(LOG_SHARDS):
        condition = Key("pk").eq(log_partition(dataset_id, generation, number)) & Key("sk").lte(upto)
        keys = [
            {"pk": log_partition(dataset_id, generation, number), "sk": entry.position}
            for entry in _entries(condition, meter)
        ]
        batch_write(delete_requests(keys))
        removed += len(keys)
    return removed


def partitions(dataset_id: str, generation: int) -> list[str]:
    return [log_partition(dataset_id, generation, number) for number in range(LOG_SHARDS)]
