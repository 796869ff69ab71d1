"""Index key encoding: byte order of ``encode`` is §5's order, for every indexable type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datasets_core import values
from datasets_core.columns import ColumnType
from datasets_core.store import encoding

# Every DynamoDB number: up to 38 significant digits, magnitudes 1e-130 … below 1e126.
numbers = st.builds(
    lambda sign, digits, exponent: Decimal(f"{sign}{digits}E{exponent}"),
    st.sampled_from(["", "-"]),
    st.integers(min_value=0, max_value=10**38 - 1),
    st.integers(min_value=-130, max_value=125 - 38),
)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(values.format_datetime)


def _key_order(items: list[Any], kind: ColumnType) -> list[Any]:
    return sorted(items, key=lambda value: encoding.encode(value, kind))


@given(st.lists(numbers, max_size=30))
def test_numbers_sort_numerically_and_equal_numbers_encode_alike(numbers_: list[Decimal]) -> None:
    assert _key_order(numbers_, ColumnType.NUMBER) == sorted(numbers_)
    for number in numbers_:
        # 1.5 and 1.50 are one number: one key (the index finds it whatever its text)
        sign, digits, exponent = number.as_tuple()
        assert isinstance(exponent, int)
        padded = Decimal((sign, (*digits, 0), exponent - 1))
        assert encoding.encode(number, ColumnType.NUMBER) == encoding.encode(padded, ColumnType.NUMBER)


def test_number_edges_order() -> None:
    edges = [
        Decimal(text)
        for text in ("-9.9E+125", "-1", "-0.5", "-1E-130", "0", "1E-130", "0.5", "1", "10", "9.9E+125")
    ]
    assert _key_order(list(reversed(edges)), ColumnType.NUMBER) == edges
    assert encoding.encode(Decimal("-0"), ColumnType.NUMBER) == encoding.encode(0, ColumnType.NUMBER)
    assert encoding.encode(1200, ColumnType.NUMBER) == encoding.encode(Decimal("1.2E+3"), ColumnType.NUMBER)


@given(st.lists(texts, max_size=30))
def test_strings_sort_case_insensitively_with_exact_text_breaking_ties(strings: list[str]) -> None:
    assert _key_order(strings, ColumnType.STRING) == sorted(strings, key=lambda text: (text.casefold(), text))


@given(texts, texts)
def test_casefold_prefix_is_a_prefix_of_every_matching_string(prefix: str, rest: str) -> None:
    key = encoding.encode(prefix + rest, ColumnType.STRING)
    assert key.startswith(encoding.casefold_prefix(prefix))


@given(st.lists(moments, max_size=30))
def test_datetimes_sort_by_instant(stored: list[str]) -> None:
    assert _key_order(stored, ColumnType.DATETIME) == sorted(stored, key=values.parse_datetime)


def test_datetimes_of_any_precision_compare_by_instant() -> None:
    base = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    stored = [
        values.format_datetime(base + timedelta(microseconds=us)) for us in (0, 1, 10, 500_000, 1_000_000)
    ]
    assert _key_order(list(reversed(stored)), ColumnType.DATETIME) == stored


@given(st.lists(st.dates().map(lambda day: day.isoformat()), max_size=20))
def test_dates_sort_by_day(days: list[str]) -> None:
    assert _key_order(days, ColumnType.DATE) == sorted(days)


def test_booleans_false_first_and_nulls_last_for_every_type() -> None:
    assert _key_order([True, None, False], ColumnType.BOOLEAN) == [False, True, None]
    for kind, value in [
        (ColumnType.NUMBER, Decimal("9.9E+125")),
        (ColumnType.STRING, "\U0010ffff" * 3),
        (ColumnType.DATE, "9999-12-31"),
        (ColumnType.DATETIME, "9999-12-31T23:59:59.999999Z"),
    ]:
        assert encoding.encode(value, kind) < encoding.encode(None, kind)


@given(st.lists(st.one_of(st.none(), numbers), max_size=20))
def test_sort_keys_of_a_column_equal_one_key_per_cell(cells: list[Decimal | None]) -> None:
    row_indexes = list(range(len(cells)))
    suffixes = [encoding.row_index_suffix(index) for index in row_indexes]
    assert encoding.sort_keys(cells, ColumnType.NUMBER, suffixes) == [
        encoding.sort_key(cell, ColumnType.NUMBER, index)
        for cell, index in zip(cells, row_indexes, strict=True)
    ]
    assert [
        encoding.row_index_part(key) for key in encoding.sort_keys(cells, ColumnType.NUMBER, suffixes)
    ] == row_indexes
