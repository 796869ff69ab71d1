"""The typed form of a rows query string. The grammar produces it; everything after trusts it.

A field reference (``Ref``) names a user column or one of the metadata fields ``id``,
``row_index``, ``created_at``, ``updated_at``, optionally followed by a JSON path into a
``json`` column (``meta->plan``, ``meta->tags->0``, ``meta->>plan`` for text). Values in
filters are already parsed and normalised for what they are compared with.
"""

from __future__ import annotations

from typing import Any, Union

from msgspec import Struct, field

from .paging import Page

METADATA_FIELDS = ("id", "row_index", "created_at", "updated_at")


class Ref(Struct, frozen=True):
    """A column (or metadata field), or a JSON path inside a json column."""

    name: str
    path: tuple[str, ...] = ()  # keys; an all-digit key also indexes arrays
    as_text: bool = False  # ``->>``: the value at the path as text

    @property
    def label(self) -> str:
        """The key of this reference in an answer: the last path element, else the name."""
        return self.path[-1] if self.path else self.name

    def __str__(self) -> str:
        if not self.path:
            return self.name
        steps = [f"->{key}" for key in self.path[:-1]]
        steps.append(("->>" if self.as_text else "->") + self.path[-1])
        return self.name + "".join(steps)


class Filter(Struct, frozen=True):
    ref: Ref
    op: str  # canonical operator name from the registry (like/ilike arrive as ``contains``)
    value: Any  # typed operand; a tuple for ``in``; None/True/False for ``is``
    negated: bool = False  # the ``not.`` prefix

    @property
    def column(self) -> str:
        return self.ref.name


class Group(Struct, frozen=True):
    """``and(...)`` / ``or(...)`` of conditions, optionally negated (``not.or(...)``)."""

    kind: str  # "and" | "or"
    items: tuple[Condition, ...]
    negated: bool = False


Condition = Union[Filter, Group]  # noqa: UP007 - a runtime alias of a forward reference


class OrderTerm(Struct, frozen=True):
    ref: Ref
    descending: bool = False
    nulls_first: bool | None = None  # None: the default (last ascending, first descending)

    @property
    def column(self) -> str:
        return self.ref.name

    @property
    def effective_nulls_first(self) -> bool:
        return self.descending if self.nulls_first is None else self.nulls_first


AGGREGATES = ("count", "sum", "avg", "min", "max")


class Aggregate(Struct, frozen=True):
    """``count()``, ``col.count(distinct)``, ``col.sum()`` ... optionally ``alias:``-named."""

    function: str  # one of AGGREGATES
    ref: Ref | None = None  # None for count() (rows)
    distinct: bool = False
    alias: str | None = None

    @property
    def key(self) -> str:
        return self.alias or self.function


class Selected(Struct, frozen=True):
    """A plain item of ``select``: a field (or path), optionally renamed with ``alias:``."""

    ref: Ref
    alias: str | None = None

    @property
    def key(self) -> str:
        return self.alias or self.ref.label


class RowsQuery(Struct, frozen=True):
    select: tuple[Selected, ...] | None = None  # None: every column
    aggregates: tuple[Aggregate, ...] = ()  # non-empty: the plain ``select`` items are the groups
    filters: tuple[Condition, ...] = ()  # AND of all
    search: str | None = None
    order: tuple[OrderTerm, ...] = ()  # empty: row_index ascending
    page: Page = field(default_factory=Page)
    distinct: str | None = None
    count: bool = True  # False for ``count=none``
    cursor: str | None = None
    as_of: int | None = None  # a kept version of the dataset (SPEC §8)

    @property
    def aggregating(self) -> bool:
        return bool(self.aggregates)


def walk(conditions: tuple[Condition, ...]) -> list[Filter]:
    """Every filter of a condition tree, in order."""
    found: list[Filter] = []
    for condition in conditions:
        if isinstance(condition, Group):
            found.extend(walk(condition.items))
        else:
            found.append(condition)
    return found
