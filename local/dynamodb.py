"""moto's DynamoDB made atomic and scalable for the local stack (``install()``, before moto starts).

moto stands in for DynamoDB, and these habits of it break a stack holding real data:

- **Atomicity.** moto's server answers requests on concurrent threads, and a
  ``TransactWriteItems`` that fails a condition restores every table it touched from a deep
  copy taken when it began, erasing what other threads wrote meanwhile (and copying a whole
  table per transaction is what made the stack slow and huge under load). Here one
  process-wide lock serialises every DynamoDB request moto serves (DynamoDB's own
  guarantee: each request, transactions included, is atomic with respect to the others),
  and a transaction rolls back with an undo log of the items it touched.
- **Query cost.** moto answers a ``Query`` by walking and sorting the whole table (for a
  GSI: every item of the table) on every call, so a 2-row dataset answered in seconds once
  another dataset held 60,000 rows. Here each table keeps, per partition of the table and of
  each index, its items sorted exactly as moto sorts them; a Query bisects to its page and
  runs moto's own page loop over that window only, so it costs about its page (and a
  keys-only index page copies only the keys it returns). The structures are built when a
  table is created (or its indexes change) and kept up to date by every write path
  (put, update, delete, batch writes and transactions go through them; PartiQL too);
  anything unusual (legacy ``KeyConditions`` filters, multi-attribute keys, mixed key
  types) falls back to moto's own Query.
- **Empty partitions.** moto's ``get_item`` on a missing partition key leaves an empty
  partition behind (its ``items`` is a ``defaultdict``); misses no longer allocate.
- **Item size.** moto re-adds the sizes of all attributes set so far for each attribute of a
  new item (quadratic, half the cost of a write); the total is checked once instead, which
  refuses exactly the same items (sizes only add up). A Query weighs each item it walks
  against the 1 MB page limit (about 0.4 ms a row); the size is kept until the item changes.
- **Response cost.** moto's model-driven serializer walks every attribute value of an answer
  through the service model (about 0.6 ms per item returned); answers that carry items are
  written as JSON directly, with moto's own status and headers.

``tests/unit/test_local_dynamodb.py`` runs the same random writes, reads and queries against stock
and patched moto and asserts identical answers (Items, Count, ScannedCount,
LastEvaluatedKey), and shows that concurrent transactions lose no write.
"""

from __future__ import annotations

import base64
import bisect
import copy
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    ItemSizeTooLarge,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table
from moto.dynamodb.models.utilities import bytesize
from moto.dynamodb.responses import DynamoHandler, DynamoResult

log = logging.getLogger(__name__)

# Every DynamoDB request moto serves holds this lock from parsing done to response built.
REQUEST_LOCK = threading.RLock()

_STATE = "_local_sorted"  # attribute of a moto Table: its _TableState, None (not built) or False (off)
_DISABLED = False
# A page near moto's 1 MB limit may end on a later item's size; past this, walk the rest as moto does.
_TAIL_SIZE_MARGIN = 512 * 1024
ITEM_SIZE_LIMIT = 405_000  # moto's LimitedSizeDict
_first = itemgetter(0)
_nesting = threading.local()
_originals: dict[tuple[type, str], Any] = {}
_INHERITED = object()  # a patched attribute the class inherited: uninstall deletes it again


# --- sorted partitions ---------------------------------------------------------------------------
class _Partition:
    """Items of one partition with their sort keys, both in moto's order (keys are unique), and
    each item's size once a Query needed it (moto's ``Item.size`` costs about 0.4 ms for a row:
    a 2,000-entry COUNT spent most of a second on it)."""

    __slots__ = ("keys", "items", "sizes")

    def __init__(self) -> None:
        self.keys: list[tuple[Any, ...]] = []
        self.items: list[Item] = []
        self.sizes: list[int | None] = []

    def add(self, key: tuple[Any, ...], item: Item) -> None:
        at = bisect.bisect_left(self.keys, key)
        self.keys.insert(at, key)
        self.items.insert(at, item)
        self.sizes.insert(at, None)

    def remove(self, key: tuple[Any, ...], item: Item) -> None:
        at = self._at(key, item)
        del self.keys[at]
        del self.items[at]
        del self.sizes[at]

    def changed(self, key: tuple[Any, ...], item: Item) -> None:
        """``item`` was changed in place (same keys): its size is measured again when needed."""
        self.sizes[self._at(key, item)] = None

    def size_at(self, at: int) -> int:
        size = self.sizes[at]
        if size is None:
            size = self.sizes[at] = self.items[at].size()
        return size

    def _at(self, key: tuple[Any, ...], item: Item) -> int:
        at = bisect.bisect_left(self.keys, key)
        if at == len(self.keys) or self.items[at] is not item:
            raise LookupError("the sorted partition does not hold this item")
        return at


Entry = tuple[tuple[str, Any], tuple[Any, ...]]  # (partition: (type, value), sort key)


class _Sorted:
    """One table's (``hash_attr`` None) or one index's partitions.

    The sort key of an item is the tuple of the values moto sorts by after the partition
    key: for the table, its range key; for an index, the index's range key, then the table's
    hash and range keys (moto's ``_generate_attr_to_sort_by``). Values are moto's
    ``cast_value`` (Decimal, str, bytes), compared as moto compares them.
    """

    __slots__ = ("hash_attr", "sort_attrs", "partitions")

    def __init__(self, hash_attr: str | None, sort_attrs: tuple[str, ...]) -> None:
        self.hash_attr = hash_attr
        self.sort_attrs = sort_attrs
        self.partitions: dict[tuple[str, Any], _Partition] = {}

    def entry(self, item: Item) -> Entry | None:
        if self.hash_attr is None:
            table_hash, table_range = item.hash_key, item.range_key
            return (table_hash.type, table_hash.cast_value), (table_range.cast_value,)  # type: ignore[union-attr]
        attrs = item.attrs
        hash_value = attrs.get(self.hash_attr)
        if hash_value is None:
            return None
        try:
            key = tuple(attrs[name].cast_value for name in self.sort_attrs)
        except KeyError:  # no index range key: not in this (sparse) index
            return None
        return (hash_value.type, hash_value.cast_value), key

    def add(self, entry: Entry | None, item: Item) -> None:
        if entry is not None:
            self.partitions.setdefault(entry[0], _Partition()).add(entry[1], item)

    def changed(self, entry: Entry | None, item: Item) -> None:
        if entry is not None:
            self._partition(entry).changed(entry[1], item)

    def remove(self, entry: Entry | None, item: Item) -> None:
        if entry is None:
            return
        partition = self._partition(entry)
        partition.remove(entry[1], item)
        if not partition.keys:
            del self.partitions[entry[0]]

    def _partition(self, entry: Entry) -> _Partition:
        partition = self.partitions.get(entry[0])
        if partition is None:
            raise LookupError("no such sorted partition")
        return partition


class _TableState:
    def __init__(self, table: Table) -> None:
        self.base = _Sorted(None, (table.range_key_attr,)) if table.range_key_attr else None
        self.indexes: dict[str, _Sorted] = {}
        table_keys = tuple(name for name in (table.hash_key_attr, table.range_key_attr) if name)
        for index in table.all_indexes():
            hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
            ranges = [k["AttributeName"] for k in index.schema if k["KeyType"] == "RANGE"]
            if len(hashes) == 1 and len(ranges) == 1:  # other shapes: moto's own Query
                self.indexes[index.name] = _Sorted(hashes[0], (ranges[0], *table_keys))
        self.all = ([self.base] if self.base else []) + list(self.indexes.values())

    @classmethod
    def build(cls, table: Table) -> _TableState:
        state = cls(table)
        for structure in state.all:
            pairs: dict[tuple[str, Any], list[tuple[tuple[Any, ...], Item]]] = {}
            for item in _table_items(table):
                entry = structure.entry(item)
                if entry is not None:
                    pairs.setdefault(entry[0], []).append((entry[1], item))
            for partition_key, members in pairs.items():
                members.sort(key=_first)
                partition = _Partition()
                partition.keys = [key for key, _ in members]
                partition.items = [item for _, item in members]
                partition.sizes = [None] * len(members)
                structure.partitions[partition_key] = partition
        return state

    def entries(self, item: Item | None) -> list[Entry | None]:
        return [structure.entry(item) if item is not None else None for structure in self.all]

    def move(self, before: Item | None, before_entries: list[Entry | None], after: Item | None) -> None:
        """Re-file the item at one primary key: ``before`` (with its entries then) is now ``after``."""
        for structure, old in zip(self.all, before_entries, strict=True):
            new = structure.entry(after) if after is not None else None
            if before is after and old == new:
                if after is not None:
                    structure.changed(new, after)
                continue
            if before is not None:
                structure.remove(old, before)
            if after is not None:
                structure.add(new, after)


def _table_items(table: Table) -> Iterator[Item]:
    stored: Any = table.items  # moto: {hash: {range: Item}}, or {hash: Item} without a range key
    for value in stored.values():
        if table.range_key_attr:
            yield from value.values()
        else:
            yield value


def _state(table: Table) -> _TableState | None:
    """The table's sorted structures, built on first use; None when switched off for this table."""
    state = table.__dict__.get(_STATE)
    if state is _DISABLED:
        return None
    if state is None:
        try:
            state = _TableState.build(table)
        except Exception:  # noqa: BLE001 - e.g. key values of mixed types: moto's own Query serves
            log.warning("local DynamoDB: sorted indexes off for %s", table.name, exc_info=True)
            table.__dict__[_STATE] = _DISABLED
            return None
        table.__dict__[_STATE] = state
    return state


def _built(table: Table) -> _TableState | None:
    state = table.__dict__.get(_STATE)
    return state if isinstance(state, _TableState) else None


def _lookup(table: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    stored: Any = table.items
    partition = stored.get(hash_key)
    if partition is None:
        return None
    if table.range_key_attr:
        return partition.get(range_key) if range_key is not None else None  # type: ignore[no-any-return]
    return partition  # type: ignore[no-any-return]


def _refile(table: Table, before: Item | None, before_entries: list[Entry | None] | None, key: Any) -> None:
    state = _built(table)
    if state is None or before_entries is None:
        return
    try:
        state.move(before, before_entries, _lookup(table, *key))
    except Exception:  # noqa: BLE001 - never fail a write: rebuild from the items at the next Query
        log.warning("local DynamoDB: rebuilding the sorted indexes of %s", table.name, exc_info=True)
        table.__dict__[_STATE] = None


@contextmanager
def _outermost() -> Iterator[bool]:
    """True for the outermost write hook of this thread (moto's update_item calls put_item)."""
    depth = getattr(_nesting, "depth", 0)
    _nesting.depth = depth + 1
    try:
        yield depth == 0
    finally:
        _nesting.depth = depth


@contextmanager
def _tracking(table: Table, key: tuple[DynamoType, DynamoType | None] | None) -> Iterator[None]:
    """Keep the sorted structures right across one write at ``key`` (hash, range)."""
    with _outermost() as outermost:
        state = _built(table) if outermost and key is not None else None
        if state is None:
            yield
            return
        before = _lookup(table, *key)  # type: ignore[misc]
        entries = state.entries(before)
        try:
            yield
        finally:
            _refile(table, before, entries, key)


def _key_of(table: Table, attrs: dict[str, Any]) -> tuple[DynamoType, DynamoType | None] | None:
    try:
        hash_key = DynamoType(attrs[table.hash_key_attr])
        range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    except (KeyError, TypeError, IndexError, AttributeError):
        return None  # moto refuses the request itself
    return hash_key, range_key


# --- write paths ---------------------------------------------------------------------------------
def _item_init(self: Item, hash_key: DynamoType, range_key: DynamoType | None, attrs: dict[str, Any]) -> None:
    """moto's ``Item.__init__`` with one size check for the whole item (``ItemSizeTooLarge`` as moto)."""
    self.hash_key = hash_key
    self.range_key = range_key
    checked = LimitedSizeDict.__new__(LimitedSizeDict)
    size = 0
    for key, value in attrs.items():
        attribute = DynamoType(value)
        dict.__setitem__(checked, key, attribute)
        size += bytesize(key) + attribute.size()
    if size > ITEM_SIZE_LIMIT:
        raise ItemSizeTooLarge
    self.attrs = checked


def _put_item(self: Table, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Item:
    with _tracking(self, _key_of(self, item_attrs)):
        return _originals[(Table, "put_item")](self, item_attrs, *args, **kwargs)  # type: ignore[no-any-return]


def _delete_item(self: Table, hash_key: DynamoType, range_key: DynamoType | None) -> Item | None:
    if hash_key not in self.items:  # moto's defaultdict would keep an empty partition
        return None
    with _tracking(self, (hash_key, range_key)):
        return _originals[(Table, "delete_item")](self, hash_key, range_key)  # type: ignore[no-any-return]


def _get_item(
    self: Table, hash_key: DynamoType, range_key: DynamoType | None = None, *args: Any, **kwargs: Any
) -> Item | None:
    if range_key and hash_key not in self.items:  # a miss must not create an empty partition
        return None
    return _originals[(Table, "get_item")](self, hash_key, range_key, *args, **kwargs)  # type: ignore[no-any-return]


def _update_item(
    self: DynamoDBBackend, table_name: str, key: dict[str, Any], *args: Any, **kwargs: Any
) -> Item:
    original = _originals[(DynamoDBBackend, "update_item")]
    table = self.tables.get(table_name)
    if table is None or not isinstance(key, dict) or table.hash_key_attr not in key:
        return original(self, table_name, key, *args, **kwargs)  # type: ignore[no-any-return]
    # moto's own reading of ``key`` (update_item): hash and range, or the hash alone.
    if table.range_key_attr in key:
        item_key = _key_of(table, key)
    else:
        try:
            item_key = (DynamoType(key[table.hash_key_attr]), None)
        except (TypeError, IndexError, AttributeError):
            item_key = None
    with _tracking(table, item_key):
        return original(self, table_name, key, *args, **kwargs)  # type: ignore[no-any-return]


def _create_table(self: DynamoDBBackend, name: str, *args: Any, **kwargs: Any) -> Table:
    table: Table = _originals[(DynamoDBBackend, "create_table")](self, name, *args, **kwargs)
    # Built while empty, then kept by every write: a first Query after a million writes would
    # otherwise build them under the request lock, stalling every other request for a minute.
    _state(table)
    return table


def _update_table(self: DynamoDBBackend, name: str, *args: Any, **kwargs: Any) -> Table:
    table: Table = _originals[(DynamoDBBackend, "update_table")](self, name, *args, **kwargs)
    table.__dict__[_STATE] = None  # indexes may have changed: rebuild now, while the lock is held
    _state(table)
    return table


def _restore(table: Table, hash_key: DynamoType, range_key: DynamoType | None, saved: Item | None) -> None:
    """Put back the item a transaction found at this key (``saved``, None: there was none)."""
    state = _built(table)
    current = _lookup(table, hash_key, range_key)
    entries = state.entries(current) if state is not None else None
    stored: Any = table.items
    if saved is None:
        if current is not None:
            if table.range_key_attr:
                del stored[hash_key][range_key]
            else:
                del stored[hash_key]
    elif table.range_key_attr:
        stored[hash_key][range_key] = saved
    else:
        stored[hash_key] = saved
    _refile(table, current, entries, (hash_key, range_key))


def _transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``transact_write_items`` with an undo log instead of whole-table copies.

    Same checks, same order, same errors; on failure only the items this transaction
    changed are put back, so writes of other requests stay (and nothing is copied but the
    items touched).
    """
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo: list[tuple[Table, DynamoType, DynamoType | None, Item | None]] = []

    def rollback() -> None:
        for table, hash_key, range_key, saved in reversed(undo):
            _restore(table, hash_key, range_key, saved)

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str | None, str | None, dict[str, Any] | None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            rollback()
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            return_on_failure = op.get("ReturnValuesOnConditionCheckFailure")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)

            table = self.get_table(table_name)
            hash_key, range_key = self.get_keys_value(table, key)
            if op_type != "ConditionCheck":
                undo.append((table, hash_key, range_key, copy.deepcopy(_lookup(table, hash_key, range_key))))

            current = self.get_item(table_name, key)
            if condition_expression is not None:
                from moto.dynamodb.comparisons import get_filter_expression

                condition_op = get_filter_expression(condition_expression, names, values)
                if not condition_op.expr(current):
                    if return_on_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            rollback()
            raise
        except ConditionalCheckFailed as exc:
            errors.append(("ConditionalCheckFailed", str(exc.message), original_item))
        except Exception as exc:  # noqa: BLE001 - moto reports any other failure per item, as here
            errors.append((type(exc).__name__, str(exc), original_item))

    if any(code is not None for code, _, _ in errors):
        rollback()
        raise TransactionCanceledException(errors)


# --- Query ---------------------------------------------------------------------------------------
def _bounds(keys: list[tuple[Any, ...]], comparison: str | None, values: list[Any]) -> tuple[int, int]:
    """[lo, hi): the run of ``keys`` whose first value meets the range condition (keys ascending)."""
    n = len(keys)
    if comparison is None:
        return 0, n

    def left(value: Any) -> int:
        return bisect.bisect_left(keys, value, key=_first)

    def right(value: Any) -> int:
        return bisect.bisect_right(keys, value, key=_first)

    if comparison == "=":
        return left(values[0]), right(values[0])
    if comparison == "<":
        return 0, left(values[0])
    if comparison == "<=":
        return 0, right(values[0])
    if comparison == ">":
        return right(values[0]), n
    if comparison == ">=":
        return left(values[0]), n
    if comparison == "BETWEEN":
        lo, hi = left(values[0]), right(values[1])
        return lo, max(lo, hi)
    if comparison == "BEGINS_WITH":
        prefix = values[0]
        if not isinstance(prefix, str | bytes):
            raise TypeError("begins_with needs a string or binary prefix")
        after = _prefix_successor(prefix)
        return left(prefix), (left(after) if after is not None else n)
    raise ValueError(f"unsupported key condition {comparison}")


def _prefix_successor(prefix: str | bytes) -> str | bytes | None:
    """The smallest value greater than every value starting with ``prefix`` (None: no such value)."""
    if isinstance(prefix, bytes):
        stripped = prefix.rstrip(b"\xff")
        return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else None
    text = prefix.rstrip(chr(0x10FFFF))
    return text[:-1] + chr(ord(text[-1]) + 1) if text else None


def _plan(
    table: Table,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    range_objs: list[DynamoType],
    limit: Any,
    exclusive_start_key: dict[str, Any] | None,
    forward: bool,
    index_name: str | None,
    consistent_read: bool,
    hash_key_conditions: list[tuple[str, DynamoType]] | None,
    range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None,
    filter_kwargs: dict[str, Any],
) -> tuple[_Partition | None, range, range] | None:
    """(partition, window, tail) of a Query, or None for moto's own Query.

    ``window``: the indexes moto would append to the page, in walk order, from the exclusive
    start key on; ``tail``: the items moto would walk after them (they only decide whether
    the page ends with a LastEvaluatedKey).
    """
    if filter_kwargs or not (limit is None or (isinstance(limit, int) and limit >= 1)):
        return None
    hash_conditions = hash_key_conditions or []
    ranges = range_key_conditions or []
    if len(hash_conditions) != 1 or len(ranges) > 1 or (range_comparison is None) != (not ranges):
        return None
    state = _state(table)
    if state is None:
        return None
    if index_name:
        index = {i.name: i for i in table.all_indexes()}.get(index_name)
        structure = state.indexes.get(index_name)
        if index is None or structure is None or (consistent_read and index in table.global_indexes):
            return None
        hash_attr, (hash_value_condition) = structure.hash_attr, hash_conditions[0]
        if hash_value_condition[0] != hash_attr:
            return None
        hash_value = hash_value_condition[1]
    else:
        structure = state.base  # type: ignore[assignment]
        if structure is None or hash_key is None:
            return None
        hash_attr, hash_value = table.hash_key_attr, hash_key
    if ranges and (ranges[0][0] != structure.sort_attrs[0] or ranges[0][1] != range_comparison):
        return None

    partition_key = (hash_value.type, hash_value.cast_value)
    partition = structure.partitions.get(partition_key)
    keys = partition.keys if partition is not None else []
    n = len(keys)
    try:
        lo, hi = _bounds(keys, range_comparison, [value.cast_value for value in range_objs])
        start, upper = 0, n  # forward: skip [0, start); backward: skip [upper, n)
        if exclusive_start_key is not None:
            start_hash = DynamoType(exclusive_start_key[hash_attr])
            start_sort = tuple(
                DynamoType(exclusive_start_key[name]).cast_value for name in structure.sort_attrs
            )
            if (start_hash.type, start_hash.cast_value) != partition_key:
                # moto compares the partition key first: it decides for the whole partition.
                skipped = (hash_value.cast_value < start_hash.cast_value) == forward
                start, upper = (n, 0) if skipped else (0, n)
            elif forward:
                start = bisect.bisect_right(keys, start_sort)
            else:
                upper = bisect.bisect_left(keys, start_sort)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None  # a start key or condition moto's own Query must judge
    if forward:
        return partition, range(max(lo, start), hi), range(max(hi, start), n)
    top = min(hi, upper)
    return partition, range(top - 1, lo - 1, -1), range(min(lo, upper) - 1, -1, -1)


def _query(
    self: Table,
    hash_key: DynamoType | None,
    range_comparison: str | None,
    range_objs: list[DynamoType],
    limit: int,
    exclusive_start_key: dict[str, Any],
    scan_index_forward: bool,
    projection_expressions: list[list[str]] | None,
    index_name: str | None = None,
    consistent_read: bool = False,
    filter_expression: Any = None,
    hash_key_conditions: list[tuple[str, DynamoType]] | None = None,
    range_key_conditions: list[tuple[str, str, list[DynamoType]]] | None = None,
    **filter_kwargs: Any,
) -> tuple[list[Item], int, dict[str, Any] | None]:
    plan = _plan(
        self,
        hash_key,
        range_comparison,
        range_objs,
        limit,
        exclusive_start_key,
        scan_index_forward is not False,
        index_name,
        consistent_read,
        hash_key_conditions,
        range_key_conditions,
        filter_kwargs,
    )
    if plan is None:
        return _originals[(Table, "query")](  # type: ignore[no-any-return]
            self,
            hash_key,
            range_comparison,
            range_objs,
            limit,
            exclusive_start_key,
            scan_index_forward,
            projection_expressions,
            index_name,
            consistent_read,
            filter_expression,
            hash_key_conditions=hash_key_conditions,
            range_key_conditions=range_key_conditions,
            **filter_kwargs,
        )
    partition, window, tail = plan
    items = partition.items if partition is not None else []

    # moto's page loop (Table.query), over the window instead of the whole table.
    results: list[Item] = []
    result_size = 0
    last_evaluated_key = None
    ended = False
    for at in window:
        if len(results) == limit or result_size + partition.size_at(at) > RESULT_SIZE_LIMIT:  # type: ignore[union-attr]
            last_evaluated_key = self._get_last_evaluated_key(results[-1], index_name)
            ended = True
            break
        results.append(items[at])
        result_size += partition.size_at(at)  # type: ignore[union-attr]
    scanned_count = len(results)
    if not ended and results and len(tail):
        if len(results) == limit:
            last_evaluated_key = self._get_last_evaluated_key(results[-1], index_name)
        elif result_size > RESULT_SIZE_LIMIT - _TAIL_SIZE_MARGIN:
            for at in tail:
                if result_size + partition.size_at(at) > RESULT_SIZE_LIMIT:  # type: ignore[union-attr]
                    last_evaluated_key = self._get_last_evaluated_key(results[-1], index_name)
                    break

    if index_name:
        index = self.get_index(index_name)
        results = [_projected(index, item) for item in results]
    else:
        results = copy.deepcopy(results)
    if filter_expression is not None:
        results = [item for item in results if filter_expression.expr(item)]
    if projection_expressions:
        results = [r.project(projection_expressions) for r in results]
    return results, scanned_count, last_evaluated_key


def _projected(index: Any, item: Item) -> Item:
    """A copy of ``item`` as ``index`` projects it: what moto's ``index.project(deepcopy(item))``
    gives, without copying the attributes the projection drops or turning each kept one into
    JSON and back (a keys-only page of 2,000 entries took a second that way)."""
    if (index.projection or {}).get("ProjectionType") != "KEYS_ONLY":
        return index.project(copy.deepcopy(item))  # type: ignore[no-any-return]
    names = [*index.table_key_attrs, *(key["AttributeName"] for key in index.schema)]
    kept = {name: item.attrs[name].to_json() for name in dict.fromkeys(names) if name in item.attrs}
    return Item(hash_key=item.hash_key, range_key=item.range_key, attrs=copy.deepcopy(kept))


# --- item responses --------------------------------------------------------------------------------
# Responses that carry items, written as JSON directly: moto's model-driven serializer walks every
# attribute value through the service model (about 0.6 ms per item returned), which made the
# items of a page cost more than the rest of the request.
_ITEM_RESPONSES = frozenset({"Query", "Scan", "GetItem", "BatchGetItem"})


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):  # B and BS values (moto keeps them raw for its serializer)
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"not JSON: {type(value).__name__}")


def _execute_result(self: DynamoResult, context: Any) -> Any:
    original = ActionResult.execute_result  # DynamoResult inherits it
    result = self.result
    if context.operation_model.name not in _ITEM_RESPONSES or not isinstance(result, dict):
        return original(self, context)
    try:
        body = json.dumps(result, default=_json_default)
    except (TypeError, ValueError):
        return original(self, context)
    # Status and headers as moto gives them (serializing an answer without its items is cheap).
    status, headers, _ = original(DynamoResult({}), context)
    return status, headers, body


# --- the request lock ----------------------------------------------------------------------------
def _call_action(self: DynamoHandler) -> Any:
    with REQUEST_LOCK:
        return _originals[(DynamoHandler, "call_action")](self)


_PATCHES: tuple[tuple[type, str, Any], ...] = (
    (DynamoHandler, "call_action", _call_action),
    (DynamoResult, "execute_result", _execute_result),
    (Item, "__init__", _item_init),
    (Table, "put_item", _put_item),
    (Table, "delete_item", _delete_item),
    (Table, "get_item", _get_item),
    (Table, "query", _query),
    (DynamoDBBackend, "update_item", _update_item),
    (DynamoDBBackend, "create_table", _create_table),
    (DynamoDBBackend, "update_table", _update_table),
    (DynamoDBBackend, "transact_write_items", _transact_write_items),
)


def install() -> None:
    """Patch moto's DynamoDB in this process (idempotent)."""
    for owner, name, replacement in _PATCHES:
        if (owner, name) not in _originals:
            _originals[(owner, name)] = owner.__dict__.get(name, _INHERITED)
            setattr(owner, name, replacement)


def uninstall() -> None:
    """Stock moto again (tests compare both)."""
    for owner, name, _ in _PATCHES:
        original = _originals.pop((owner, name), None)
        if original is _INHERITED:
            delattr(owner, name)
        elif original is not None:
            setattr(owner, name, original)


@contextmanager
def installed() -> Iterator[None]:
    install()
    try:
        yield
    finally:
        uninstall()
