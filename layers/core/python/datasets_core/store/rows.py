"""Row items in the ``rows`` table: layout, codecs, reads and resilient batch writes.

Layout (see README, "Storage layout"):

- ``pk = <dataset_id>#<generation>.<shard>`` with ``shard = row_index % shards``, ``sk =
  row_index``. Spreading a dataset over ``shards`` partition keys lifts the 1,000 writes/s
  ceiling of one partition; the generation lets an import build a replacement set of rows
  beside the live one and swap them with one write to the dataset item.
- ``id`` (the row's UUID), ``ca`` / ``ua`` (created/updated timestamps) and one attribute per
  user column, named by the column's ``attr`` (``c0``, ``c1`` ...). User column names never
  appear in an expression, not even as placeholders' values.
- Nulls are absent attributes.
- ``x<slot>p`` / ``x<slot>s``: index slot keys (see ``query.encoding``), added by
  ``index_keys`` when the dataset indexes a column.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from .. import jsonutil, values
from ..config import settings
from ..errors import ApiError
from ..observability import logger
from ..records import Column, Dataset
from . import encoding
from .tables import error_code, rows

BATCH_SIZE = 25  # BatchWriteItem's maximum
_MAX_BATCH_ATTEMPTS = 10
_RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


class WriteIncomplete(ApiError):
    """DynamoDB kept refusing part of a batch; ``written`` holds the requests that did land.

    Rendered as SPEC §2's ``internal_error`` (500, ``details.request_id``) with
    ``details.written``: how many of the request's writes landed and stayed."""

    status = 500
    code = "internal_error"

    def __init__(self, written: list[dict[str, Any]], message: str | None = None) -> None:
        super().__init__(
            message or "The storage service is busy; nothing was changed. Retry the request.",
            {"written": len(written)},
        )
        self.written = written


# --- keys and codecs -------------------------------------------------------------------------
# DynamoDB refuses items over 400 KB; a row's values may take this much, leaving room for
# its keys, metadata and index entries (5 × ≤ 1 KB).
MAX_ROW_BYTES = 390_000


def row_bytes(cells: Iterable[Any]) -> int:
    """What a row's values take in its item, near enough for ``MAX_ROW_BYTES``: text as
    UTF-8, JSON as its compact text, any other value 24 bytes (a number's most)."""
    total = 0
    for value in cells:
        if isinstance(value, str):
            total += len(value.encode("utf-8"))
        elif isinstance(value, dict | list):
            total += len(jsonutil.dumps(value).encode("utf-8"))
        elif value is not None:
            total += 24
    return total


def oversize_problem(cells: Iterable[Any]) -> str | None:
    """Why a row with these values cannot be stored, or None when it can."""
    size = row_bytes(cells)
    if size > MAX_ROW_BYTES:
        return f"the row is {size:,} bytes; a row holds at most {MAX_ROW_BYTES:,} bytes of values"
    return None


def partition(dataset: Dataset, row_index: int, gen: int | None = None) -> str:
    gen = dataset.generation if gen is None else gen
    return f"{dataset.id}#{gen}.{row_index % dataset.shards}"


def partitions(dataset: Dataset, gen: int | None = None) -> list[str]:
    gen = dataset.generation if gen is None else gen
    return [f"{dataset.id}#{gen}.{shard}" for shard in range(dataset.shards)]


def row_key(dataset: Dataset, row_index: int) -> dict[str, Any]:
    return {"pk": partition(dataset, row_index), "sk": row_index}


def to_item(
    dataset: Dataset,
    row_index: int,
    row_id: str,
    fields: dict[str, Any],
    created_at: str,
    updated_at: str,
    gen: int | None = None,
) -> dict[str, Any]:
    """The stored item of a row whose ``fields`` are already normalised for their columns."""
    item: dict[str, Any] = {
        "pk": partition(dataset, row_index, gen),
        "sk": row_index,
        "id": row_id,
        "ca": created_at,
        "ua": updated_at,
    }
    for name, value in fields.items():
        if value is None:
            continue
        column = dataset.column(name)
        assert column is not None, f"unknown column {name!r}"
        item[column.attr] = values.to_store(value, column.type)
    item.update(index_keys(dataset, row_index, fields, gen))
    return item


def from_item(dataset: Dataset, item: dict[str, Any]) -> dict[str, Any]:
    """The API form of a stored row: metadata first, then every column in schema order."""
    row: dict[str, Any] = {
        "id": item["id"],
        "row_index": int(item["sk"]),
        "created_at": item["ca"],
        "updated_at": item["ua"],
    }
    for column in dataset.columns:
        # Every column appears, null when the row has no value: rows read like a table's.
        row[column.name] = values.from_store(item.get(column.attr), column.type)
    return row


def index_keys(
    dataset: Dataset, row_index: int, fields: dict[str, Any], gen: int | None = None
) -> dict[str, Any]:
    """Index slot attributes of a row: per indexed column, its partition and sort key.

    Every row gets an entry, nulls included (they sort last), so an index also serves
    ``order`` and ``is.null``. See ``store/index.py`` for how the entries are read.
    """
    cells = {name: [value] for name, value in fields.items()}
    return {attr: column[0] for attr, column in index_columns(dataset, [row_index], cells, gen)}


def index_columns(
    dataset: Dataset,
    row_indexes: Sequence[int],
    cells: Mapping[str, Sequence[Any]],
    gen: int | None = None,
    columns: Sequence[Column] | None = None,
) -> list[tuple[str, list[Any]]]:
    """``index_keys`` of many rows at once, attribute by attribute: ``(attribute, one value
    per row)``. ``cells`` holds each indexed column's stored values in ``row_indexes`` order
    (a missing column is all nulls). Imports build items column by column this way: per
    cell it is one encoding, where a row at a time would also redo every lookup. ``columns``
    limits the entries to those columns (default: every column holding a slot)."""
    indexed = list(dataset.slotted if columns is None else columns)
    if not indexed:
        return []
    gen = dataset.generation if gen is None else gen
    shards = dataset.shards
    shard_of = [row_index % shards for row_index in row_indexes]
    suffixes = [encoding.row_index_suffix(row_index) for row_index in row_indexes]
    nulls = [None] * len(row_indexes)
    attrs: list[tuple[str, list[Any]]] = []
    for column in indexed:
        slot = int(column.slot or 0)
        partitions = [index_partition(dataset, slot, shard, gen) for shard in range(shards)]
        attrs.append((f"x{slot}p", [partitions[shard] for shard in shard_of]))
        keys = encoding.sort_keys(cells.get(column.name, nulls), column.type, suffixes)
        attrs.append((f"x{slot}s", keys))
    return attrs


def index_partition(dataset: Dataset, slot: int, shard: int, gen: int | None = None) -> str:
    gen = dataset.generation if gen is None else gen
    return f"{dataset.id}#{gen}#{slot}.{shard}"


# --- reads -----------------------------------------------------------------------------------
def get(dataset: Dataset, row_index: int) -> dict[str, Any] | None:
    item = rows().get_item(Key=row_key(dataset, row_index), ConsistentRead=True).get("Item")
    return to_native_item(item) if item else None


def to_native_item(item: dict[str, Any]) -> dict[str, Any]:
    """Row index as int (numbers in user columns stay Decimal until ``values.from_store``)."""
    return item if not item else {**item, "sk": int(item["sk"])}


class ReadMeter:
    """Counts what a request reads (the sum of ScannedCount), reported as ``meta.items_read``.

    Shard reads run in parallel threads, hence the lock."""

    def __init__(self) -> None:
        self.items_read = 0
        self._lock = threading.Lock()

    def add(self, page: dict[str, Any]) -> None:
        with self._lock:
            self.items_read += int(page.get("ScannedCount", page.get("Count", 0)))


def query_partition(
    pk: str,
    meter: ReadMeter,
    *,
    filter_expression: str | None = None,
    names: dict[str, str] | None = None,
    value_map: dict[str, Any] | None = None,
    descending: bool = False,
    page_size: int | None = None,
    after_sk: int | None = None,
    max_items: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Items of one partition in ``sk`` order (lazily, page by page), after ``after_sk`` if
    given, at most ``max_items``."""
    key: Any = Key("pk").eq(pk)
    if after_sk is not None:
        key = key & (Key("sk").lt(after_sk) if descending else Key("sk").gt(after_sk))
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": key,
        "ScanIndexForward": not descending,
        "ConsistentRead": True,
    }
    if filter_expression:
        kwargs["FilterExpression"] = filter_expression
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if value_map:
            kwargs["ExpressionAttributeValues"] = value_map
    if page_size:
        kwargs["Limit"] = page_size
    yielded = 0
    while True:
        if max_items is not None:
            kwargs["Limit"] = min(kwargs.get("Limit", max_items), max_items - yielded)
        page = rows().query(**kwargs)
        meter.add(page)
        for item in page.get("Items", []):
            yield to_native_item(item)
            yielded += 1
        if "LastEvaluatedKey" not in page or (max_items is not None and yielded >= max_items):
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def query_range(pk: str, low: int, high: int, meter: ReadMeter) -> list[dict[str, Any]]:
    """Items of one partition with ``low <= sk <= high``, strongly consistent."""
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": Key("pk").eq(pk) & Key("sk").between(low, high),
        "ConsistentRead": True,
    }
    found: list[dict[str, Any]] = []
    while True:
        page = rows().query(**kwargs)
        meter.add(page)
        found.extend(to_native_item(item) for item in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def batch_get(
    keys: list[dict[str, Any]], meter: ReadMeter, *, consistent: bool = True
) -> list[dict[str, Any]]:
    """The items of up to 100 keys that exist (unprocessed keys retried); strongly consistent
    unless ``consistent`` is False (half the read units)."""
    table_name = settings().rows_table
    pending = list(keys)
    found: list[dict[str, Any]] = []
    attempt = 0
    while pending:
        response = rows().meta.client.batch_get_item(
            RequestItems={table_name: {"Keys": pending, "ConsistentRead": consistent}}
        )
        items = response.get("Responses", {}).get(table_name, [])
        meter.add({"ScannedCount": len(items)})
        found.extend(to_native_item(item) for item in items)
        pending = response.get("UnprocessedKeys", {}).get(table_name, {}).get("Keys", [])
        if pending:
            attempt += 1
            if attempt >= _MAX_BATCH_ATTEMPTS:
                raise WriteIncomplete([], "The storage service is busy; retry the request.")
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
    return found


# --- writes ----------------------------------------------------------------------------------
def batch_write(
    requests: list[dict[str, Any]], *, sleep: Callable[[float], None] = time.sleep
) -> list[dict[str, Any]]:
    """Send ``PutRequest`` / ``DeleteRequest`` entries in full batches of 25.

    Unprocessed items and throttling errors are retried with exponential backoff and full
    jitter. Returns the requests that landed; raises ``WriteIncomplete`` (carrying them) when
    DynamoDB keeps refusing, so the caller can undo or account for exactly what was written.
    boto3's ``batch_writer`` is not used because it hides which items landed.
    """
    client = rows().meta.client
    table_name = settings().rows_table
    written: list[dict[str, Any]] = []
    for start in range(0, len(requests), BATCH_SIZE):
        pending = requests[start : start + BATCH_SIZE]
        attempt = 0
        while pending:
            try:
                response = client.batch_write_item(RequestItems={table_name: pending})
                unprocessed = response.get("UnprocessedItems", {}).get(table_name, [])
            except ClientError as exc:
                if error_code(exc) not in _RETRYABLE:
                    raise WriteIncomplete(written) from exc
                unprocessed = pending
            landed = [request for request in pending if request not in unprocessed]
            written.extend(landed)
            pending = list(unprocessed)
            if pending:
                attempt += 1
                if attempt >= _MAX_BATCH_ATTEMPTS:
                    raise WriteIncomplete(written)
                sleep(random.uniform(0, min(2.0, 0.05 * 2**attempt)))
    return written


def put_requests(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"PutRequest": {"Item": item}} for item in items]


def delete_requests(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"DeleteRequest": {"Key": {"pk": key["pk"], "sk": key["sk"]}}} for key in keys]


def put_new(items: list[dict[str, Any]]) -> None:
    """Write brand-new rows all-or-nothing: on failure, remove what landed and raise
    ``WriteIncomplete`` carrying the put requests of the rows that could not be removed
    (normally none), so the caller counts exactly the rows that are there."""
    try:
        batch_write(put_requests(items))
    except WriteIncomplete as exc:
        left = _undo_puts(exc.written)
        if not left:
            raise WriteIncomplete([]) from exc
        raise WriteIncomplete(
            left,
            f"The storage service is busy; {len(left)} of the {len(items)} rows were written and "
            "could not be removed again (details.written). Retry later for the others.",
        ) from exc


def _undo_puts(written: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Delete the rows of ``written`` put requests; the put requests of those still there."""
    keys = [request["PutRequest"]["Item"] for request in written]
    try:
        batch_write(delete_requests(keys))
    except WriteIncomplete as exc:
        # Still refused after every retry: say exactly which rows are left so an operator
        # can remove them, and so the caller counts them.
        left = [
            request
            for request, key in zip(written, keys, strict=True)
            if {"DeleteRequest": {"Key": {"pk": key["pk"], "sk": key["sk"]}}} not in exc.written
        ]
        left_items = [request["PutRequest"]["Item"] for request in left]
        logger.error(
            "rows of a failed insert could not be removed",
            extra={"rows": [{"pk": item["pk"], "sk": item["sk"]} for item in left_items]},
        )
        return left
    return []


def replace_if_unchanged(item: dict[str, Any], *, expected: dict[str, Any]) -> dict[str, Any] | None:
    """Write ``item`` over a row only if it is still exactly as read (``expected``); else None.

    The condition on ``ua`` (updated_at) makes concurrent read-modify-write cycles safe: the
    loser re-reads and tries again instead of silently undoing the winner's change.
    """
    try:
        rows().meta.client.put_item(  # the client: bulk writes call this from several threads
            TableName=settings().rows_table,
            Item=item,
            ConditionExpression="id = :id AND ua = :ua",
            ExpressionAttributeValues={":id": expected["id"], ":ua": expected["ua"]},
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise
    return item


def _unchanged(unchanged: dict[str, Any], names: dict[str, str], values_: dict[str, Any]) -> list[str]:
    """Conditions that each attribute of ``unchanged`` still holds its stored value (None:
    absent), with their names and values added to the expression's."""
    conditions = []
    for number, (attr, stored) in enumerate(unchanged.items()):
        names[f"#w{number}"] = attr
        if stored is None:
            conditions.append(f"attribute_not_exists(#w{number})")
        else:
            values_[f":w{number}"] = stored
            conditions.append(f"#w{number} = :w{number}")
    return conditions


def update_fields(
    dataset: Dataset,
    item: dict[str, Any],
    changes: dict[str, Any],
    updated_at: str,
    *,
    unchanged: dict[str, Any] | None = None,
    put_back: bool = False,
) -> dict[str, Any] | None:
    """Set some columns of a row in place (``changes``: column name → normalised value, None
    removes it), with their index entries and ``ua``; other attributes — and the index entries
    of columns not changed — are not rewritten. Conditional on the row existing with its id
    and on every ``unchanged`` attribute still holding its stored value (None: absent). The
    row as it was before, or None when a condition failed.

    An index attribute whose value stays what ``item`` (the row as read) holds is not sent:
    the write must not touch an index entry it does not change (README "Index projections").
    Instead the write requires that attribute to still be as read, so a concurrent change of
    the same column cannot leave the entry describing a value the row no longer has.
    ``put_back``: ``item`` is the row before a write being undone, not the row now (which holds
    that write's values, as ``unchanged`` requires): every changed column's entry is set."""
    names: dict[str, str] = {"#id": "id", "#ua": "ua"}
    values_: dict[str, Any] = {":id": item["id"], ":ua": updated_at}
    sets, removes = ["#ua = :ua"], []
    fields = {}
    for number, (name, value) in enumerate(changes.items()):
        column = dataset.column(name)
        assert column is not None, f"unknown column {name!r}"
        names[f"#c{number}"] = column.attr
        if value is None:
            removes.append(f"#c{number}")
        else:
            values_[f":c{number}"] = values.to_store(value, column.type)
            sets.append(f"#c{number} = :c{number}")
        if column.slot is not None:
            fields[name] = [value]
    changed_slots = [column for column in dataset.slotted if column.name in fields]
    conditions = ["#id = :id"]
    for number, (attr, keys) in enumerate(
        index_columns(dataset, [int(item["sk"])], fields, None, changed_slots)
    ):
        names[f"#x{number}"] = attr
        values_[f":x{number}"] = keys[0]
        if item.get(attr) == keys[0] and not put_back:
            conditions.append(f"#x{number} = :x{number}")
        else:
            sets.append(f"#x{number} = :x{number}")
    conditions += _unchanged(unchanged or {}, names, values_)
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    try:
        response = rows().meta.client.update_item(  # the client: bulk writes call this from threads
            TableName=settings().rows_table,
            Key={"pk": item["pk"], "sk": item["sk"]},
            UpdateExpression=expression,
            ConditionExpression=" AND ".join(conditions),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values_,
            ReturnValues="ALL_OLD",
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise
    return to_native_item(response.get("Attributes") or {}) or None


def restore(item: dict[str, Any], *, written_at: str) -> bool:
    """Put a row back as it was, if nobody wrote it after ``written_at`` (an undo)."""
    try:
        rows().meta.client.put_item(
            TableName=settings().rows_table,
            Item=item,
            ConditionExpression="ua = :ua",
            ExpressionAttributeValues={":ua": written_at},
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return False
        raise
    return True


def remove_new(items: list[dict[str, Any]]) -> None:
    """Delete rows this request wrote and must not keep (an undo; they were never counted)."""
    batch_write(delete_requests(items))


def delete_row(
    key: dict[str, Any], *, expected_id: str, unchanged: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """Delete a row if it exists with ``expected_id`` (and its ``unchanged`` attributes still
    hold their stored values, None: absent); the deleted item, or None."""
    names: dict[str, str] = {}
    values_: dict[str, Any] = {":id": expected_id}
    conditions = ["id = :id"]
    conditions += _unchanged(unchanged or {}, names, values_)
    kwargs: dict[str, Any] = {
        "TableName": settings().rows_table,
        "Key": {"pk": key["pk"], "sk": key["sk"]},
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeValues": values_,
        "ReturnValues": "ALL_OLD",
    }
    if names:
        kwargs["ExpressionAttributeNames"] = names
    try:
        response = rows().meta.client.delete_item(**kwargs)  # thread-safe client (see above)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise
    return to_native_item(response.get("Attributes") or {}) or None


def set_index_entries(
    dataset: Dataset, item: dict[str, Any], building: list[Column], retired_slots: list[int]
) -> None:
    """Backfill index entries of ``building`` columns and drop those of retired slots.

    Conditional on the building columns' values being those read: an entry is a function of
    its value, and a write that changed the value wrote the entry itself (every write fills
    every slot, building ones too). A change to another column meanwhile does not matter.
    """
    row = from_item(dataset, item)
    fields = {column.name: [row.get(column.name)] for column in building}
    entries = index_columns(dataset, [int(item["sk"])], fields, None, building)
    names: dict[str, str] = {}
    values_: dict[str, Any] = {}
    sets, removes, conditions = [], [], ["attribute_exists(pk)"]
    for number, (attr, keys) in enumerate(entries):
        if item.get(attr) == keys[0]:
            continue  # already there (a write since, or an earlier run): nothing to rewrite
        names[f"#s{number}"] = attr
        values_[f":s{number}"] = keys[0]
        sets.append(f"#s{number} = :s{number}")
    for number, column in enumerate(building):
        names[f"#v{number}"] = column.attr
        stored = item.get(column.attr)
        if stored is None:
            conditions.append(f"attribute_not_exists(#v{number})")
        else:
            values_[f":v{number}"] = stored
            conditions.append(f"#v{number} = :v{number}")
    for number, slot in enumerate(retired_slots):
        for suffix in ("p", "s"):
            if f"x{slot}{suffix}" in item:  # an absent entry needs no write
                names[f"#r{number}{suffix}"] = f"x{slot}{suffix}"
                removes.append(f"#r{number}{suffix}")
    update = " ".join(
        part
        for part in (
            "SET " + ", ".join(sets) if sets else "",
            "REMOVE " + ", ".join(removes) if removes else "",
        )
        if part
    )
    if not update:
        return
    kwargs: dict[str, Any] = {
        "TableName": settings().rows_table,
        "Key": {"pk": item["pk"], "sk": item["sk"]},
        "UpdateExpression": update,
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
    }
    if values_:
        kwargs["ExpressionAttributeValues"] = values_
    try:
        rows().meta.client.update_item(**kwargs)
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
