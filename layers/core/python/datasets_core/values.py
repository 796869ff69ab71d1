"""Column values: type inference, validation and normalisation, storage and text forms.

One place decides what each column type accepts, so the rows API, the query grammar and
the file importers agree:

- ``string``   any JSON string
- ``number``   a finite JSON number (stored as DynamoDB N: 38 significant digits)
- ``boolean``  ``true`` / ``false``
- ``date``     ``YYYY-MM-DD``
- ``datetime`` ISO 8601; stored and returned in UTC (``2024-05-01T12:00:00Z``)
- ``json``     an object or array (stored as compact JSON text)

``None`` is null for every type and is stored as an absent attribute.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from .columns import ColumnType

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:?\d{2})?$")
_MAX_DIGITS = 38


class ValueProblem(ValueError):
    """A value that does not fit its column; the message is shown to the caller."""


def infer_type(value: Any) -> ColumnType | None:
    """The column type a first value implies (None for null: the type is still open)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ColumnType.BOOLEAN
    if isinstance(value, (int, float, Decimal)):
        return ColumnType.NUMBER
    if isinstance(value, str):
        if _DATE_RE.match(value) and _is_date(value):
            return ColumnType.DATE
        if "T" in value and _DATETIME_RE.match(value) and _is_datetime(value):
            return ColumnType.DATETIME
        return ColumnType.STRING
    if isinstance(value, (dict, list)):
        return ColumnType.JSON
    raise ValueProblem(f"unsupported value of type {type(value).__name__}")


def normalize(value: Any, column_type: ColumnType | str) -> Any:
    """The canonical API value of ``value`` in a column of ``column_type``, or ``ValueProblem``."""
    if value is None:
        return None
    kind = ColumnType(column_type)
    if kind is ColumnType.STRING:
        if not isinstance(value, str):
            raise ValueProblem(f"expected a string, got {_describe(value)}")
        return value
    if kind is ColumnType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise ValueProblem(f"expected a number, got {_describe(value)}")
        return _number(value)
    if kind is ColumnType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueProblem(f"expected true or false, got {_describe(value)}")
        return value
    if kind is ColumnType.DATE:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value.isoformat()
        if not isinstance(value, str) or not _DATE_RE.match(value) or not _is_date(value):
            raise ValueProblem(f"expected a date (YYYY-MM-DD), got {_describe(value)}")
        return value
    if kind is ColumnType.DATETIME:
        if isinstance(value, datetime):
            return format_datetime(value)
        if not isinstance(value, str) or not _DATETIME_RE.match(value) or not _is_datetime(value):
            raise ValueProblem(f"expected an ISO 8601 datetime, got {_describe(value)}")
        return format_datetime(_parse_datetime(value))
    if not isinstance(value, (dict, list)):
        raise ValueProblem(f"expected a JSON object or array, got {_describe(value)}")
    return value


def parse_text(text: str, column_type: ColumnType | str) -> Any:
    """A value written as text (a query string, a CSV cell) for a column of ``column_type``."""
    kind = ColumnType(column_type)
    if kind is ColumnType.NUMBER:
        try:
            number = Decimal(text.strip())
        except InvalidOperation as exc:
            raise ValueProblem(f"'{text}' is not a number") from exc
        if not number.is_finite():
            raise ValueProblem(f"'{text}' is not a finite number")
        return _number(number)
    if kind is ColumnType.BOOLEAN:
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise ValueProblem(f"'{text}' is not true or false")
    if kind is ColumnType.JSON:
        try:
            return normalize(json.loads(text), kind)
        except json.JSONDecodeError as exc:
            raise ValueProblem(f"'{text}' is not a JSON object or array") from exc
    return normalize(text, kind)


def to_store(value: Any, column_type: ColumnType | str) -> Any:
    """The DynamoDB attribute value of a normalised value (None: leave the attribute out)."""
    if value is None:
        return None
    kind = ColumnType(column_type)
    if kind is ColumnType.NUMBER:
        return Decimal(str(value)) if not isinstance(value, Decimal) else value
    if kind is ColumnType.JSON:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
    return value


def from_store(stored: Any, column_type: ColumnType | str) -> Any:
    """The API value of a stored attribute."""
    if stored is None:
        return None
    kind = ColumnType(column_type)
    if kind is ColumnType.NUMBER:
        return _plain_number(Decimal(stored) if not isinstance(stored, Decimal) else stored)
    if kind is ColumnType.JSON:
        return json.loads(stored) if isinstance(stored, str) else stored
    return stored


def text_of(value: Any, column_type: ColumnType | str) -> str:
    """The text ``contains`` / ``starts_with`` / ``search`` look at."""
    if value is None:
        return ""
    kind = ColumnType(column_type)
    if kind is ColumnType.BOOLEAN:
        return "true" if value else "false"
    if kind is ColumnType.NUMBER:
        return format_number(value)
    if kind is ColumnType.JSON:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def format_number(value: Any) -> str:
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def format_datetime(moment: datetime) -> str:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    # isoformat pads the year to 4 digits; strftime("%Y") on Linux writes year 999 as "999".
    text = moment.replace(tzinfo=None, microsecond=0).isoformat()
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_datetime(text: str) -> datetime:
    return _parse_datetime(text)


def _parse_datetime(text: str) -> datetime:
    cleaned = text.strip().replace(" ", "T", 1)
    if cleaned[-1:] in ("Z", "z"):
        cleaned = cleaned[:-1] + "+00:00"
    # Python < 3.11 style: keep at most 6 fractional digits.
    cleaned = re.sub(r"(\.\d{6})\d+", r"\1", cleaned)
    moment = datetime.fromisoformat(cleaned)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_datetime(text: str) -> bool:
    try:
        _parse_datetime(text)
    except (ValueError, OverflowError):
        return False
    return True


def _number(value: int | float | Decimal) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueProblem("expected a finite number (NaN and Infinity are not allowed)")
    number = (
        value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    )
    if not number.is_finite():
        raise ValueProblem("expected a finite number (NaN and Infinity are not allowed)")
    digits = number.normalize().as_tuple()
    if len(digits.digits) > _MAX_DIGITS:
        raise ValueProblem(f"numbers are limited to {_MAX_DIGITS} significant digits")
    if number != 0 and not (Decimal("1e-130") <= abs(number) < Decimal("1e126")):
        raise ValueProblem("number out of range (1e-130 to 1e126)")
    return _plain_number(number)


def _plain_number(number: Decimal) -> int | float:
    if number == number.to_integral_value():
        return int(number)
    return float(number)


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal)):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string '{shown}'"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__
