"""Type detection for text cells (CSV): which column type a column of text values gets.

Pyarrow-free: the rows API reads CSV bodies (``POST .../rows`` with ``text/csv``) with it, and
the import function reads CSV files with it, so both type a new column the same way (SPEC §7):
the narrowest of boolean, number, date, datetime that more than half of the non-empty cells
fit (the others are bad rows), otherwise string (``007`` stays a string: a number as people
write it has no leading zeros).
"""

from __future__ import annotations

import re
from typing import Any

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
    """Majority typing of one CSV column (SPEC §7): how many of its non-empty cells read as each
    narrow type. The column takes the narrow type more than half of its cells fit; the other
    cells are then bad rows, counted and reported — never a silent widening to string. No
    majority: string. Counts add up over chunks and survive a checkpoint (``state``)."""

    __slots__ = ("fits", "seen")

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.seen = int(state.get("seen", 0))
        self.fits = {kind: int(state.get("fits", {}).get(kind.value, 0)) for kind in _TEXT_ORDER}

    def add(self, cell: str) -> None:
        if not cell:
            return
        self.seen += 1
        for kind in _TEXT_ORDER:
            if text_fits(cell, kind):
                self.fits[kind] += 1

    def result(self) -> ColumnType | None:
        if not self.seen:
            return None
        for kind in _TEXT_ORDER:
            if self.fits[kind] * 2 > self.seen:
                return kind
        return ColumnType.STRING

    def state(self) -> dict[str, Any]:
        return {"seen": self.seen, "fits": {kind.value: count for kind, count in self.fits.items()}}
