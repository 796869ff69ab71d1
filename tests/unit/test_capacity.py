"""The capacity calculator (bench/capacity.py) against the rules and examples of AWS's docs:
"DynamoDB item sizes and formats", "DynamoDB read and write operations" and the write
costs of "Global secondary indexes"."""

from __future__ import annotations

import pytest

from bench.capacity import (
    Index,
    Table,
    batch_get_read_units,
    item_size,
    number_size,
    query_read_units,
    write_units,
)
from infra import tables
from infra.tables import ALL, KEYS_ONLY


def sized(total: int, name: str = "k", extra: dict | None = None) -> dict:
    """An item of exactly ``total`` bytes: key ``k`` plus one string attribute filling the rest."""
    base = {"k": {"S": "1"}, **(extra or {})}
    rest = total - item_size(base) - len("pad")
    assert rest >= 0
    return {**base, "pad": {"S": "x" * rest}}


# --- sizes -----------------------------------------------------------------------------------------
def test_strings_and_binaries_are_their_bytes_plus_the_name() -> None:
    assert item_size({"Name": {"S": "Alice"}}) == 4 + 5
    # UTF-8 bytes of both the name and the value, not characters.
    assert item_size({"é": {"S": "日本"}}) == 2 + 6
    assert item_size({"b": {"B": b"\x00\x01\x02"}}) == 1 + 3


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 1),
        ("7", 2),
        ("123", 3),  # three significant digits: two bytes, plus one
        ("1234", 3),
        ("1.2300", 3),  # trailing zeros trimmed
        ("000123", 3),  # leading zeros trimmed
        ("-0.001", 2),
        ("1E+10", 2),
        ("12345678901234567890123456789012345678", 20),  # 38 digits, DynamoDB's most
    ],
)
def test_numbers_take_a_byte_per_two_significant_digits_plus_one(text: str, size: int) -> None:
    assert number_size(text) == size


def test_booleans_nulls_lists_and_maps() -> None:
    assert item_size({"t": {"BOOL": True}, "n": {"NULL": True}}) == (1 + 1) + (1 + 1)
    # A list or map: 3 bytes, plus one per element, plus the elements (a map's keys too).
    assert item_size({"L": {"L": [{"S": "a"}, {"N": "1"}]}}) == 1 + 3 + (1 + 1) + (1 + 2)
    assert item_size({"M": {"M": {"ab": {"S": "c"}}}}) == 1 + 3 + (1 + 2 + 1)
    assert item_size({"M": {"M": {}}}) == 1 + 3
    assert item_size({"s": {"SS": ["ab", "c"]}}) == 1 + 3


def test_a_whole_item_adds_its_attributes() -> None:
    item = {
        "itemType": {"S": "SLOT"},
        "id": {"S": "abc1231"},
        "hostName": {"S": "Harry Mason"},
        "timeSlot": {"S": "February 23, 1999"},
        "slotStatus": {"S": "OPEN"},
        "createdAt": {"S": "February 1, 1999"},
        "updatedAt": {"S": "February 1, 1999"},
        "expiresAt": {"N": "2099"},
    }
    assert item_size(item) == 141


# --- reads -----------------------------------------------------------------------------------------
def test_reads_round_each_item_or_query_up_to_4_kb() -> None:
    # "reading a 3,500-byte item consumes the same throughput as reading a 4 KB item"
    assert batch_get_read_units([sized(3500)], consistent=True) == 1
    assert batch_get_read_units([sized(3500)], consistent=False) == 0.5
    # "If you read a 10 KB item, DynamoDB rounds the item size to 12 KB."
    assert batch_get_read_units([sized(10 * 1024)], consistent=True) == 3
    # "if BatchGetItem reads a 1.5 KB item and a 6.5 KB item, DynamoDB calculates the size
    # as 12 KB (4 KB + 8 KB), not 8 KB (1.5 KB + 6.5 KB)"
    assert batch_get_read_units([sized(1536), sized(6656)], consistent=True) == 3
    # A Query adds the sizes first: the same two items are 8 KB, two units.
    assert query_read_units([sized(1536), sized(6656)], consistent=True) == 2
    # A Query costs at least one unit; index reads are eventually consistent (half).
    assert query_read_units([], consistent=False) == 0.5
    # Twenty 100-byte index entries fit in one unit; twenty rows fetched by key are twenty.
    assert query_read_units([sized(100)] * 20, consistent=False) == 0.5
    assert batch_get_read_units([sized(100)] * 20, consistent=True) == 20


# --- writes ----------------------------------------------------------------------------------------
TABLE_KEYS = ("pk", "sk")


def _table(projection: str) -> Table:
    return Table(
        TABLE_KEYS, (Index("i1", ("a_p", "a_s"), projection), Index("i2", ("b_p", "b_s"), projection))
    )


def _row(**attrs: str) -> dict:
    item = {"pk": {"S": "ds#0.0"}, "sk": {"N": "7"}, "ua": {"S": "2024-01-01T00:00:00Z"}}
    item.update({name: {"S": value} for name, value in attrs.items()})
    return item


def test_a_write_costs_the_larger_image_in_1_kb_units() -> None:
    table = Table(TABLE_KEYS)
    assert write_units(table, None, sized(1536)).table == 2  # a 1.5 KB item: two units
    assert write_units(table, sized(1536), sized(500)).table == 2  # the larger of the two images
    assert write_units(table, sized(500), None).table == 1  # a delete: the deleted item
    assert write_units(table, None, None).table == 1  # a delete of nothing still costs one
    assert write_units(table, None, sized(1536), transactional=True).table == 4


@pytest.mark.parametrize("projection", [ALL, KEYS_ONLY])
def test_index_writes_follow_the_documented_cases(projection: str) -> None:
    table = _table(projection)
    indexed = _row(a_p="ds#0#1.0", a_s="Paris", b_p="ds#0#2.0", b_s="7", c="x")
    # A new item with both index keys: one put into each index.
    assert write_units(table, None, indexed).indexes == {"i1": 1, "i2": 1}
    # An indexed key changes (A to B): delete the old entry and put the new one.
    moved = {**indexed, "a_s": {"S": "Rome"}}
    assert write_units(table, indexed, moved).indexes.get("i1") == 2
    # The item leaves an index (its key attribute removed): one delete.
    left = {name: value for name, value in indexed.items() if name not in ("b_p", "b_s")}
    assert write_units(table, indexed, left).indexes.get("i2") == 1
    # Not in the index before or after: nothing.
    assert "i2" not in write_units(table, left, {**left, "c": {"S": "y"}}).indexes
    # Deleting the item deletes both entries.
    assert write_units(table, indexed, None).indexes == {"i1": 1, "i2": 1}


def test_an_unindexed_change_rewrites_every_entry_with_all_and_none_with_keys_only() -> None:
    before = _row(a_p="ds#0#1.0", a_s="Paris", b_p="ds#0#2.0", b_s="7", c="x")
    after = {**before, "c": {"S": "y"}, "ua": {"S": "2024-01-02T00:00:00Z"}}
    assert write_units(_table(ALL), before, after).indexes == {"i1": 1, "i2": 1}
    assert write_units(_table(KEYS_ONLY), before, after).indexes == {}
    assert write_units(_table(KEYS_ONLY), before, after).total == 1
    # INCLUDE: only when an included attribute changes.
    include = Table(TABLE_KEYS, (Index("i1", ("a_p", "a_s"), "INCLUDE", ("c",)),))
    assert write_units(include, before, after).indexes == {"i1": 1}
    assert write_units(include, before, {**before, "ua": {"S": "later"}}).indexes == {}


def test_an_index_entry_is_sized_by_what_it_projects() -> None:
    big = {**_row(a_p="ds#0#1.0", a_s="Paris"), "text": {"S": "x" * 3000}}
    table_all, table_keys = _table(ALL), _table(KEYS_ONLY)
    assert write_units(table_all, None, big).indexes == {"i1": 3}  # the whole 3 KB item
    assert write_units(table_keys, None, big).indexes == {"i1": 1}  # its keys only
    assert table_keys.entry(table_keys.indexes[0], big) == {
        name: big[name] for name in ("pk", "sk", "a_p", "a_s")
    }


def test_the_rows_table_spec_is_read_with_its_projection() -> None:
    table = Table.of(tables.ROWS)
    assert table.keys == ("pk", "sk")
    assert [index.keys for index in table.indexes][0] == ("x1p", "x1s")
    assert {index.projection for index in table.indexes} == {KEYS_ONLY}
    assert {index.projection for index in Table.of(tables.ROWS, ALL).indexes} == {ALL}
