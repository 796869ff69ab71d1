"""Type detection for text cells (CSV): which column type a column of text values gets.

Pyarrow-free: the rows API reads CSV bodies (``POST .../rows`` with ``text/csv``) with it, and
the import function reads CSV files with it, so both type a new column the same way (SPEC §7):
the narrowest of boolean, number, date, datetime that fits every non-empty cell, otherwise
string (``007`` stays a string: a number as people write it has no leading zeros).
"""

from __future__ import annotations

import re

from .. import values
from ..columns import ColumnType

# A number as people write it in a CSV: no leading zeros (``007`` is an identifier), no spaces.
_NUMBER_TEXT = re.compile(r"[+-]?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|[+-]?\.[0-9]+")
_TEXT_ORDER = (ColumnType.BOOLEAN, ColumnType.NUMBER, ColumnType.DATE, ColumnType.DATETIME)


def text_fits(cell: str, column_type: ColumnType) -> bool:
    """Whether a non-empty CSV cell reads as a value of ``column_type`` (for type detection)."""
    if column_type is ColumnType.BOOLEAN:
        return cell.lower() in ("true", "false")
    if column_type is ColumnType.NUMBER and not _NUMBER_TEXT.fullmatch(cell):
        return False
    if column_type is ColumnType.DATE and (len(cell) != 10 or cell[4] != "-"):
        return False
    if column_type is ColumnType.DATETIME and (len(cell) < 16 or cell[10] not in "Tt "):
        return False
    try:
        values.parse_text(cell, column_type)
    except (values.ValueProblem, ValueError, OverflowError):
        return False
    return True


class TextTypes:
    """Detects the narrowest type that fits every non-empty cell of one CSV column."""

    __slots__ = ("candidates", "seen")

    def __init__(self) -> None:
        self.candidates: list[ColumnType] = list(_TEXT_ORDER)
        self.seen = False

    def add(self, cell: str) -> None:
        if not cell:
            return
        self.seen = True
        if self.candidates:
            self.candidates = [kind for kind in self.candidates if text_fits(cell, kind)]

    def result(self) -> ColumnType | None:
        if not self.seen:
            return None
        return self.candidates[0] if self.candidates else ColumnType.STRING
