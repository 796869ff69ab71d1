"""JSON encoding for responses: DynamoDB's Decimals become real JSON numbers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def to_native(value: Any) -> Any:
    """Decimal → int/float, recursively, so numbers leave the API as numbers, not strings."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: to_native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_native(v) for v in value]
    return value


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return to_native(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def dumps(value: Any) -> str:
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))
