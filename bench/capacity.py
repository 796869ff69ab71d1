"""The read and write units DynamoDB charges, computed from item images (pure, unit-tested).

Sizes follow AWS's "DynamoDB item sizes and formats": an attribute is its name's UTF-8 bytes
plus its value — a string its UTF-8 bytes, a binary its raw bytes, a number about one byte
per two significant digits plus one (leading and trailing zeros trimmed), a boolean or null
one byte, a list or map three bytes plus one per element plus its elements (sets: their
elements). Items are in DynamoDB's wire form (``{"S": "text"}``, ``{"N": "12.5"}`` …), the
form a low-level client sends and receives, so numbers are sized from their exact digits.

Units follow "DynamoDB read and write operations" and "Global secondary indexes":

- a write costs ``ceil(size / 1 KB)`` units for the larger of the item's images before and
  after (a delete: the deleted item), at least one; a transactional write twice that;
- a global secondary index costs nothing when the item is in neither image's index (it
  lacks a key attribute) or when neither its index keys nor its projected attributes change;
  one put when the item enters the index or a projected attribute changes; a delete and a
  put when an index key changes; one delete when it leaves. Each is ``ceil(entry size /
  1 KB)``, an entry being the table's keys, the index's keys and the projected attributes;
- a Query costs the returned items' total size in 4 KB units (at least one), halved when
  eventually consistent (index reads always are); a batched get costs each item's size in
  4 KB units separately (a missing item one unit), halved when eventually consistent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.tables import ALL, KEYS_ONLY, TableSpec

WRITE_UNIT = 1024
READ_UNIT = 4096
INCLUDE = "INCLUDE"

Item = Mapping[str, Mapping[str, Any]]  # DynamoDB's wire form: name -> {"S": ...}


# --- sizes ---------------------------------------------------------------------------------------
def number_size(text: str) -> int:
    """Bytes of a number: one per two significant digits, plus one."""
    mantissa = text.strip().lstrip("+-").lower().partition("e")[0]
    digits = mantissa.replace(".", "").lstrip("0").rstrip("0")
    return math.ceil(len(digits) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """Bytes of one typed value (without its attribute name)."""
    [(kind, inner)] = value.items()
    if kind == "S":
        return len(str(inner).encode("utf-8"))
    if kind == "N":
        return number_size(str(inner))
    if kind == "B":
        return len(bytes(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(element).encode("utf-8")) for element in inner)
    if kind == "NS":
        return sum(number_size(str(element)) for element in inner)
    if kind == "BS":
        return sum(len(bytes(element)) for element in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode("utf-8")) + value_size(element) for name, element in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Item | None) -> int:
    """Bytes of an item: every attribute's name and value (0 for no item)."""
    if not item:
        return 0
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def write_units_of(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT))


# --- tables and their indexes ---------------------------------------------------------------------
@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]  # the index's partition (and sort) key attributes
    projection: str = ALL  # ALL | KEYS_ONLY | INCLUDE
    include: tuple[str, ...] = ()  # INCLUDE's non-key attributes


@dataclass(frozen=True)
class Table:
    keys: tuple[str, ...]  # the table's partition (and sort) key attributes
    indexes: tuple[Index, ...] = ()

    @classmethod
    def of(cls, spec: TableSpec, projection: str | None = None) -> Table:
        """The table ``spec`` defines; ``projection`` overrides every index's (to compare)."""
        keys = (spec.partition_key[0],) + ((spec.sort_key[0],) if spec.sort_key else ())
        indexes = tuple(
            Index(
                gsi.name,
                (gsi.partition_key[0],) + ((gsi.sort_key[0],) if gsi.sort_key else ()),
                projection or gsi.projection,
            )
            for gsi in spec.gsis
        )
        return cls(keys, indexes)

    def entry(self, index: Index, item: Item | None) -> dict[str, Any] | None:
        """The index's entry for ``item``, None when the item is not in the index."""
        if not item or any(key not in item for key in index.keys):
            return None
        if index.projection == ALL:
            return dict(item)
        kept = set(self.keys) | set(index.keys)
        if index.projection == INCLUDE:
            kept |= set(index.include)
        elif index.projection != KEYS_ONLY:
            raise ValueError(f"unknown projection {index.projection!r}")
        return {name: value for name, value in item.items() if name in kept}


@dataclass
class WriteUnits:
    """Units one write costs: on the table and on each index it changes."""

    table: int = 0
    indexes: dict[str, int] = field(default_factory=dict)

    @property
    def index_total(self) -> int:
        return sum(self.indexes.values())

    @property
    def total(self) -> int:
        return self.table + self.index_total

    def __add__(self, other: WriteUnits) -> WriteUnits:
        indexes = dict(self.indexes)
        for name, units in other.indexes.items():
            indexes[name] = indexes.get(name, 0) + units
        return WriteUnits(self.table + other.table, indexes)


def write_units(
    table: Table, before: Item | None, after: Item | None, *, transactional: bool = False
) -> WriteUnits:
    """What writing one item from ``before`` to ``after`` costs (None: absent before/after).

    A write that changes nothing (a failed condition, a delete of nothing) still costs the
    table write and no index write."""
    units = WriteUnits(write_units_of(max(item_size(before), item_size(after))) * (2 if transactional else 1))
    for index in table.indexes:
        old, new = table.entry(index, before), table.entry(index, after)
        cost = 0
        if old is None and new is not None:
            cost = write_units_of(item_size(new))  # enters the index: a put
        elif old is not None and new is None:
            cost = write_units_of(item_size(old))  # leaves it: a delete
        elif old is not None and new is not None:
            if any(old.get(key) != new.get(key) for key in index.keys):
                cost = write_units_of(item_size(old)) + write_units_of(item_size(new))  # delete + put
            elif old != new:
                cost = write_units_of(max(item_size(old), item_size(new)))  # projected values: a put
        if cost:
            units.indexes[index.name] = cost
    return units


# --- reads -----------------------------------------------------------------------------------
def query_read_units(items: Iterable[Item], *, consistent: bool) -> float:
    """A Query (or one page of it): the returned items' total size in 4 KB units."""
    units = max(1, math.ceil(sum(item_size(item) for item in items) / READ_UNIT))
    return units if consistent else units / 2


def batch_get_read_units(items: Iterable[Item], missing: int = 0, *, consistent: bool) -> float:
    """A BatchGetItem: each item's size in 4 KB units on its own (a missing item, one unit)."""
    units = sum(max(1, math.ceil(item_size(item) / READ_UNIT)) for item in items) + missing
    return units if consistent else units / 2
