"""Order-preserving, type-tagged binary encoding of column values for index sort keys.

Byte order of ``encode(v)`` is exactly the order of §5 (``query.evaluate``) for one column
type, and the index sort key is ``encode(value)[:MAX_VALUE_BYTES] + row_index (8 bytes)``,
so an index Query returns rows in the query's order with ties by ``row_index`` ascending.

- null: ``FF`` — after every value, so ascending order puts nulls last (§5's default).
- number: sign class (``01`` negative, ``02`` zero, ``03`` positive), then the decimal
  exponent and the digits; negatives complement both so larger magnitudes sort first.
  Exact for every DynamoDB number (38 digits, 1e-130 … 1e126).
- string: ``01`` + casefolded text + ``00 01`` + exact text + ``00 01`` (``00`` inside text is
  escaped as ``00 FF``): case-insensitive order, exact text breaking ties, prefixes first.
- boolean: ``01 00`` / ``01 01``; date: ``01`` + ``YYYY-MM-DD``; datetime: ``01`` + UTC
  ``YYYY-MM-DDTHH:MM:SS.ffffff`` (fixed width, so text order is time order).
- json: not indexable.

DynamoDB limits a GSI sort key to 1,024 bytes; values are cut at ``MAX_VALUE_BYTES``. Cut
values that share that prefix compare equal in the index, so readers re-sort groups of
equal keys in memory with the exact order (``index.py``), and filters always re-check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from .. import values
from ..columns import ColumnType

NULL = b"\xff"
MAX_VALUE_BYTES = 1000
ROW_INDEX_BYTES = 8
INDEXABLE = frozenset(
    {ColumnType.STRING, ColumnType.NUMBER, ColumnType.BOOLEAN, ColumnType.DATE, ColumnType.DATETIME}
)
_TEXT_END = b"\x00\x01"


def encode(value: Any, kind: ColumnType | str) -> bytes:
    """The full (uncut) order-preserving encoding of a normalised API value."""
    if value is None:
        return NULL
    # ColumnType is a StrEnum: a member and its text find the same entry (no enum call per cell).
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise ValueError(f"{kind} columns cannot be indexed")
    return encoder(value)


def casefold_prefix(text: str) -> bytes:
    """Key prefix shared by every string whose casefolded form starts with ``text.casefold()``."""
    return b"\x01" + text.casefold().encode("utf-8").replace(b"\x00", b"\x00\xff")


def exact_string_prefix(text: str) -> bytes:
    """Key prefix of exactly the string ``text`` (``eq`` on a string column)."""
    return encode(text, ColumnType.STRING)


def sort_key(value: Any, kind: ColumnType | str, row_index: int) -> bytes:
    return sort_keys([value], kind, [row_index_suffix(row_index)])[0]


def sort_keys(cells: Sequence[Any], kind: ColumnType | str, suffixes: Sequence[bytes]) -> list[bytes]:
    """Index sort keys of one column's cells: the (cut) value encoding, then the row's
    ``row_index_suffix`` (computed once per row by callers that key several columns)."""
    encoder = _ENCODERS.get(kind)
    if encoder is None:
        raise ValueError(f"{kind} columns cannot be indexed")
    if kind != ColumnType.STRING:  # only text can pass MAX_VALUE_BYTES: no cut to make
        return [
            (NULL if value is None else encoder(value)) + suffix
            for value, suffix in zip(cells, suffixes, strict=True)
        ]
    # Each distinct text is encoded once (casefolded and copied twice): indexed text columns
    # repeat values (a status, a city), and an import keys a chunk of a column at a time.
    encoded: dict[str | None, bytes] = {None: NULL}
    keys = []
    for value, suffix in zip(cells, suffixes, strict=True):
        value_key = encoded.get(value)
        if value_key is None:
            value_key = encoded[value] = encoder(value)[:MAX_VALUE_BYTES]
        keys.append(value_key + suffix)
    return keys


def row_index_suffix(row_index: int) -> bytes:
    return row_index.to_bytes(ROW_INDEX_BYTES, "big")


def cut(encoded: bytes) -> bytes:
    return encoded[:MAX_VALUE_BYTES]


def value_part(key: bytes) -> bytes:
    """The (cut) value encoding of a stored index sort key, without its row_index."""
    return bytes(key[:-ROW_INDEX_BYTES])


def row_index_part(key: bytes) -> int:
    return int.from_bytes(bytes(key[-ROW_INDEX_BYTES:]), "big")


def _text(text: str) -> bytes:
    return text.encode("utf-8").replace(b"\x00", b"\x00\xff") + _TEXT_END


def _number(number: Decimal) -> bytes:
    if number == 0:
        return b"\x02"
    # The significant digits are read off the number's text ("-12.50", "1.2E+7"): C-fast,
    # where ``as_tuple()`` builds a tuple per digit (and ``normalize()`` would round to 28
    # digits, DynamoDB numbers have 38). ``adjusted()`` is the exponent of the first digit.
    text = str(number)
    digits = text.partition("E")[0].replace(".", "").lstrip("-0").rstrip("0").encode("ascii")
    biased = number.adjusted() + 1 + 512  # DynamoDB's range keeps this within 0..1023
    if text[0] != "-":
        return b"\x03" + biased.to_bytes(2, "big") + digits.translate(_POSITIVE_DIGITS) + b"\x00"
    # Negative: complement so that a larger magnitude sorts first and a longer digit string
    # (same prefix, so a larger magnitude) sorts before its prefix.
    return b"\x01" + (1023 - biased).to_bytes(2, "big") + digits.translate(_NEGATIVE_DIGITS) + b"\xff"


_POSITIVE_DIGITS = bytes.maketrans(b"0123456789", bytes(d + 1 for d in range(10)))
_NEGATIVE_DIGITS = bytes.maketrans(b"0123456789", bytes(10 - d for d in range(10)))


def _encode_number(value: Any) -> bytes:
    return _number(value if isinstance(value, Decimal) else Decimal(str(value)))


def _encode_string(value: str) -> bytes:
    return b"\x01" + _text(value.casefold()) + _text(value)


def _encode_boolean(value: bool) -> bytes:
    return b"\x01\x01" if value else b"\x01\x00"


def _encode_date(value: str) -> bytes:
    return b"\x01" + value.encode("ascii")


# The stored form of a datetime (``values.format_datetime``): its key is plain text surgery.
_STORED_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.(\d{1,6}))?Z")


def _encode_datetime(value: str) -> bytes:
    if _STORED_DATETIME.fullmatch(value):
        return b"\x01" + (value[:19] + "." + value[20:-1].ljust(6, "0")).encode("ascii")
    moment = values.parse_datetime(value)
    return b"\x01" + moment.replace(tzinfo=None).isoformat(timespec="microseconds").encode("ascii")


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    ColumnType.NUMBER: _encode_number,
    ColumnType.STRING: _encode_string,
    ColumnType.BOOLEAN: _encode_boolean,
    ColumnType.DATE: _encode_date,
    ColumnType.DATETIME: _encode_datetime,
}
