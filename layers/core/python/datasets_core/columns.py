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


def normal_name(name: str) -> str:
    """A dataset or column name as stored: Unicode NFC, so that ``é`` typed as one code point or
    as ``e`` + a combining accent is one name, never two that look the same."""
    return unicodedata.normalize("NFC", name)


def invisible_problem(name: str, what: str) -> str | None:
    """Why ``name`` holds characters nobody can see (control characters; format characters such
    as zero-width spaces and joiners, U+2060 and the BOM), or None. Such names would look
    identical to others."""
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        return f"{what} names cannot contain control characters"
    invisible = next((ch for ch in name if unicodedata.category(ch) == "Cf"), None)
    if invisible is not None:
        return (
            f"{what} names cannot contain invisible characters such as zero-width spaces or joiners "
            f"(found U+{ord(invisible):04X})"
        )
    return None


def column_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a user column, or None when it can (``name`` already NFC)."""
    if not 1 <= len(name) <= MAX_COLUMN_NAME:
        return f"column names are 1–{MAX_COLUMN_NAME} characters"
    problem = invisible_problem(name, "column")
    if problem:
        return problem
    if name in RESERVED_COLUMNS:
        return f"'{name}' is reserved ({', '.join(sorted(RESERVED_COLUMNS))})"
    return None
