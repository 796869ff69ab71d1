"""The typed form of a rows query string. The grammar produces it; everything after trusts it.

Column references are user column names or one of the metadata fields ``id``,
``row_index``, ``created_at``, ``updated_at``. Values in filters are already parsed and
normalised for the column's type (see ``values.parse_text``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .paging import Page

METADATA_FIELDS = ("id", "row_index", "created_at", "updated_at")


@dataclass(frozen=True)
class Filter:
    column: str
    op: str  # canonical operator name from the registry: eq, neq, gt, gte, lt, lte, contains,
    #          starts_with, in, is  (like/ilike arrive here as ``contains``)
    value: Any  # typed value; a tuple of typed values for ``in``; None/True/False for ``is``
    negated: bool = False  # the ``not.`` prefix


@dataclass(frozen=True)
class OrderTerm:
    column: str
    descending: bool = False
    nulls_first: bool | None = None  # None: the default (last ascending, first descending)

    @property
    def effective_nulls_first(self) -> bool:
        return self.descending if self.nulls_first is None else self.nulls_first


@dataclass(frozen=True)
class RowsQuery:
    select: tuple[str, ...] | None = None  # None: every column
    filters: tuple[Filter, ...] = ()
    search: str | None = None
    order: tuple[OrderTerm, ...] = ()  # empty: row_index ascending
    page: Page = field(default_factory=Page)
    distinct: str | None = None
    count: bool = True  # False for ``count=none``
    cursor: str | None = None
