"""Column values: type inference, validation and normalisation, storage and text forms.

One place decides what each column type accepts, so the rows API, the query grammar and
the file importers agree:

- ``string``   any JSON string
- ``number``   a finite number DynamoDB stores exactly: at most 38 significant digits, magnitude
               from 1e-130 to below 1e126 (or zero). Values are ``int`` when integral, else an
               exact ``Decimal``: nothing is ever rounded, a number that cannot be stored is refused
- ``boolean``  ``true`` / ``false``
- ``date``     ``YYYY-MM-DD``
- ``datetime`` ISO 8601; stored and returned in UTC (``2024-05-01T12:00:00Z``)
- ``json``     an object or array (stored as compact JSON text)

``None`` is null for every type and is stored as an absent attribute.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from . import jsonutil
from .columns import ColumnType

# \Z, not $: "$" also matches before a trailing newline ("2024-01-01\n" is not a date).
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}:?\d{2})?\Z")
MAX_DIGITS = 38
MIN_EXPONENT, MAX_EXPONENT = -130, 125  # DynamoDB: 1E-130 <= |n| < 1E+126


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
            return normalize(jsonutil.loads(text), kind)
        except ValueError as exc:
            raise ValueProblem(f"'{text}' is not a JSON object or array") from exc
    return normalize(text, kind)


def to_store(value: Any, column_type: ColumnType | str) -> Any:
    """The DynamoDB attribute value of a normalised value (None: leave the attribute out)."""
    if value is None:
        return None
    kind = ColumnType(column_type)
    if kind is ColumnType.NUMBER:
        return stored_number(value)
    if kind is ColumnType.JSON:
        return jsonutil.dumps(value)
    return value


def from_store(stored: Any, column_type: ColumnType | str) -> Any:
    """The API value of a stored attribute."""
    if stored is None:
        return None
    kind = ColumnType(column_type)
    if kind is ColumnType.NUMBER:
        return _plain_number(_stripped(stored if isinstance(stored, Decimal) else Decimal(str(stored))))
    if kind is ColumnType.JSON:
        return jsonutil.loads(stored) if isinstance(stored, str) else stored
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
        return jsonutil.dumps(value)
    return str(value)


def format_number(value: Any) -> str:
    """A number's text: integers in digits, others in plain decimal notation (never an exponent)."""
    if isinstance(value, int):
        return str(value)
    number = _stripped(value if isinstance(value, Decimal) else Decimal(repr(value)))
    if number.as_tuple().exponent >= 0:  # type: ignore[operator]
        return str(int(number))
    return format(number, "f")


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


def _number(value: int | float | Decimal) -> int | Decimal:
    """The exact API value of a number, or ``ValueProblem`` when DynamoDB cannot store it exactly."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueProblem("expected a finite number (NaN and Infinity are not allowed)")
        value = Decimal(repr(value))  # the shortest text that reads back as this float
    number = value if isinstance(value, Decimal) else Decimal(value)
    if not number.is_finite():
        raise ValueProblem("expected a finite number (NaN and Infinity are not allowed)")
    number = _stripped(number)
    if number:
        digits = len(number.as_tuple().digits)
        if digits > MAX_DIGITS:
            raise ValueProblem(
                f"{_shown(number)} has {digits} significant digits; numbers are stored exactly with at most "
                f"{MAX_DIGITS}"
            )
        if not MIN_EXPONENT <= number.adjusted() <= MAX_EXPONENT:
            raise ValueProblem(
                f"{_shown(number)} is out of range: numbers are stored exactly from 1e-130 to below 1e126"
            )
    return _plain_number(number)


def stored_number(value: int | Decimal) -> Decimal:
    """The DynamoDB ``N`` of a normalised number: exact, trailing zeros dropped (boto3 refuses to
    round, and ``int`` 10**50 would otherwise reach it as 51 digits)."""
    return _stripped(value if isinstance(value, Decimal) else Decimal(value))


def _stripped(number: Decimal) -> Decimal:
    """``number`` without trailing zeros in its coefficient, exactly (``Decimal.normalize`` rounds
    to the context's 28 digits); zero is plain ``0``."""
    sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):  # NaN / Infinity: callers refuse them
        return number
    if not any(digits):
        return Decimal(0)
    end = len(digits)
    while digits[end - 1] == 0:
        end -= 1
    return Decimal((sign, digits[:end], exponent + len(digits) - end))


def _plain_number(number: Decimal) -> int | Decimal:
    """``int`` when integral (JSON prints it in digits), else the exact ``Decimal``."""
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:
        return int(number)
    return number


def _shown(number: Decimal) -> str:
    text = str(number)
    return text if len(text) <= 60 else text[:57] + "..."


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
