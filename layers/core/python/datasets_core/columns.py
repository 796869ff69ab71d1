"""The column vocabulary shared by every endpoint: types, reserved names, name rules.

Kept apart from the request models (``models.py``) so that handlers which validate no
request body (reads, row writes) do not import pydantic at cold start.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum

RESERVED_COLUMNS = frozenset({"id", "row_index", "created_at", "updated_at"})
MAX_COLUMN_NAME = 128


class ColumnType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    JSON = "json"


def column_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a user column, or None when it can."""
    if not 1 <= len(name) <= MAX_COLUMN_NAME:
        return f"column names are 1–{MAX_COLUMN_NAME} characters"
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return "column names cannot contain control characters"
    if name in RESERVED_COLUMNS:
        return f"'{name}' is reserved ({', '.join(sorted(RESERVED_COLUMNS))})"
    return None
