"""JSON in and out, with exact numbers.

Numbers never pass through binary floats: ``loads`` reads decimals as ``Decimal`` and
``dumps`` writes a ``Decimal`` as its exact text (the standard library's encoder cannot: it
would need a float). simplejson's ``use_decimal`` is the maintained encoder that does.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import simplejson


class TooDeep(ValueError):
    """JSON nested deeper than the parser's recursion limit."""


class NumberTooLong(ValueError):
    """An integer of more digits than Python converts (4,300): no column could store it."""


class NotUnicode(ValueError):
    """A ``\\u`` escape of a lone surrogate (``"\\ud800"``): valid JSON, but no character, so no
    UTF-8 text (DynamoDB's, an answer's) can carry it."""


# A \u escape in the surrogate range (D800-DFFF): only then can a parsed string hold one.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


def to_native(value: Any) -> Any:
    """Decimal → int when integral (DynamoDB hands every number back as Decimal), recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, dict):
        return {k: to_native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_native(v) for v in value]
    return value


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 text kept as is, ``Decimal`` written exactly."""
    return simplejson.dumps(
        value, use_decimal=True, default=_default, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def loads(text: str | bytes) -> Any:
    """Parse JSON exactly (decimals as ``Decimal``). ``ValueError`` for invalid JSON, and its
    kinds ``TooDeep`` (nesting the parser cannot follow), ``NumberTooLong`` and ``NotUnicode``."""
    try:
        value = json.loads(text, parse_float=Decimal)
    except RecursionError as exc:
        raise TooDeep("JSON nested too deeply") from exc
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # Python refuses integers of more than 4,300 digits
        raise NumberTooLong(str(exc)) from exc
    pattern = _SURROGATE_ESCAPE_BYTES if isinstance(text, bytes) else _SURROGATE_ESCAPE
    if pattern.search(text):  # type: ignore[arg-type]  # (the pattern matches the text's type)
        _refuse_lone_surrogates(value)
    return value


def _refuse_lone_surrogates(value: Any) -> None:
    """``NotUnicode`` if a string (value or key) holds a surrogate no pair completes. Iterative:
    JSON may nest as deep as the parser allows, deeper than a recursive walk may."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise NotUnicode("a \\u escape of a lone surrogate is not a character") from exc
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
