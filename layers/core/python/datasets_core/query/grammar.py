"""The rows query string (SPEC §5) parsed once into a typed ``RowsQuery``.

``params`` is API Gateway's multi-value query string, already URL-decoded; a ``+`` is a
plus sign, never a space. Reserved parameters: ``select``, ``order``, ``limit``,
``offset``, ``search``, ``distinct``, ``count``, ``cursor`` (each at most once); every other
parameter is a filter ``{column}=[not.]{op}.{value}`` and may repeat (filters AND
together). A user column named like a reserved parameter cannot be filtered this way.

Names in ``select``, ``order`` and ``distinct`` are column names or metadata fields.
Commas separate items except inside double quotes; a double-quoted name (``"a,b"``,
escapes ``\\"`` and ``\\\\``) may name any column. Unquoted names are matched exactly, then
with surrounding spaces removed. In ``order``, the column is the longest known name that
the item starts with, so names containing dots work (``v1.2.desc``); the rest is ``asc`` or
``desc`` optionally followed by ``nullsfirst``/``nullslast``. ``select=*`` means every
column; ``id`` is always selected (first, unless the caller placed it). Every problem is
``InvalidQuery`` whose details name the parameter, column or value at fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import suggest
from ..errors import InvalidQuery
from .ast import Filter, OrderTerm, RowsQuery
from .operators import Field, field_of, fields, make_filter, unquote, user_names
from .paging import parse_page, single

RESERVED_PARAMS = frozenset({"select", "order", "limit", "offset", "search", "distinct", "count", "cursor"})
_DIRECTIONS = {"asc": False, "desc": True}
_NULLS = {"nullsfirst": True, "nullslast": False}
_COUNTS = {"exact": True, "none": False}


def parse_rows_query(params: dict[str, list[str]], columns: Iterable[Mapping[str, Any]]) -> RowsQuery:
    """The typed query of a rows request, or ``InvalidQuery``."""
    known = fields(columns)
    return RowsQuery(
        select=parse_select(single(params, "select"), known),
        filters=tuple(
            parse_filter(name, text, known)
            for name, texts in params.items()
            if name not in RESERVED_PARAMS
            for text in texts
        ),
        search=_parse_search(single(params, "search")),
        order=parse_order(single(params, "order"), known),
        page=parse_page(single(params, "limit"), single(params, "offset")),
        distinct=_parse_distinct(single(params, "distinct"), known),
        count=_parse_count(single(params, "count")),
        cursor=single(params, "cursor"),  # opaque here; the cursor codec validates it
    )


def parse_filter(column: str, text: str, known: Mapping[str, Field]) -> Filter:
    """One filter ``{column}=[not.]{op}.{value}``."""
    field = field_of(column, known)
    rest, negated = (text[4:], True) if text.startswith("not.") else (text, False)
    op, _, value = rest.partition(".")
    if op == "not":
        problem = "may appear only once" if negated else "must be followed by an operator"
        raise InvalidQuery(
            f"'not.' {problem} in the filter on '{column}'.",
            {"parameter": column, "column": column, "value": text},
        )
    if op == "":
        raise InvalidQuery(
            f"The filter on '{column}' needs an operator: write {column}={{op}}.{{value}}, e.g. eq.42.",
            {"parameter": column, "column": column, "value": text},
        )
    return make_filter(field, op, value, negated)


def parse_select(text: str | None, known: Mapping[str, Field]) -> tuple[str, ...] | None:
    """Selected names in the caller's order without duplicates, ``id`` included; None: every column."""
    if text is None or text.strip() == "*":
        return None
    names: list[str] = []
    for item in split_items(text, "select"):
        name = _name(item, known, "select")
        if name not in names:
            names.append(name)
    if "id" not in names:
        names.insert(0, "id")
    return tuple(names)


def parse_order(text: str | None, known: Mapping[str, Field]) -> tuple[OrderTerm, ...]:
    """Order terms; each column at most once."""
    if text is None:
        return ()
    terms: list[OrderTerm] = []
    for item in split_items(text, "order"):
        term = _order_term(item, known)
        if any(seen.column == term.column for seen in terms):
            raise InvalidQuery(
                f"Column '{term.column}' appears more than once in order.",
                {"parameter": "order", "column": term.column},
            )
        terms.append(term)
    return tuple(terms)


def split_items(text: str, parameter: str) -> list[str]:
    """Comma-separated items; commas inside a double-quoted name (an item's start) do not split."""
    items: list[str] = []
    start = 0
    while True:
        position = start
        lead = len(text) - len(text[start:].lstrip(" "))
        if text.startswith('"', lead):
            _, after = _unquote(text[lead:], parameter)
            position = len(text) - len(after)
        comma = text.find(",", position)
        if comma < 0:
            items.append(text[start:])
            return items
        items.append(text[start:comma])
        start = comma + 1


def _unquote(text: str, parameter: str) -> tuple[str, str]:
    try:
        return unquote(text)
    except ValueError as exc:
        raise InvalidQuery(
            f"A double-quoted name in '{parameter}' is not closed.", {"parameter": parameter, "value": text}
        ) from exc


def _name(item: str, known: Mapping[str, Field], parameter: str) -> str:
    """The field an item of select/distinct names."""
    if item in known:
        return item
    stripped = item.strip()
    if stripped == "":
        raise InvalidQuery(f"'{parameter}' has an empty column name.", {"parameter": parameter})
    if stripped.startswith('"'):
        name, rest = _unquote(stripped, parameter)
        if rest.strip():
            raise InvalidQuery(
                f"Unexpected text '{rest}' after a quoted column name in '{parameter}'.",
                {"parameter": parameter, "value": item},
            )
        return field_of(name, known).name
    return field_of(stripped, known).name


def _order_term(item: str, known: Mapping[str, Field]) -> OrderTerm:
    stripped = item.strip()
    if stripped == "":
        raise InvalidQuery("'order' has an empty item.", {"parameter": "order"})
    if stripped.startswith('"'):
        name, rest = _unquote(stripped, "order")
        field_of(name, known)
        if rest and not rest.startswith("."):
            raise InvalidQuery(
                f"Unexpected text '{rest}' after a quoted column name in 'order'.",
                {"parameter": "order", "value": item},
            )
        return _with_modifiers(name, rest)
    problem: InvalidQuery | None = None
    for text in dict.fromkeys((item, stripped)):
        # Longest known prefix first: with columns "a" and "a.desc", "a.desc" is the column.
        candidates = [name for name in known if text == name or text.startswith(name + ".")]
        for name in sorted(candidates, key=len, reverse=True):
            try:
                return _with_modifiers(name, text[len(name) :])
            except InvalidQuery as exc:
                problem = problem or exc
    if problem is not None:
        raise problem
    raise InvalidQuery(*suggest.unknown_column(_without_modifiers(stripped), user_names(known)))


def _with_modifiers(name: str, suffix: str) -> OrderTerm:
    """``suffix`` is '' or '.asc', '.desc.nullslast', ..."""
    descending: bool | None = None
    nulls_first: bool | None = None
    for word in suffix[1:].split(".") if suffix else ():
        if word in _DIRECTIONS and descending is None and nulls_first is None:
            descending = _DIRECTIONS[word]
        elif word in _NULLS and nulls_first is None:
            nulls_first = _NULLS[word]
        else:
            raise InvalidQuery(
                f"Invalid order direction '{word}' for column '{name}': use asc or desc, optionally "
                "followed by nullsfirst or nullslast (e.g. order=amount.desc.nullslast).",
                {"parameter": "order", "column": name, "direction": word},
            )
    return OrderTerm(name, bool(descending), nulls_first)


def _without_modifiers(text: str) -> str:
    while "." in text and text.rsplit(".", 1)[1] in {*_DIRECTIONS, *_NULLS}:
        text = text.rsplit(".", 1)[0]
    return text


def _parse_distinct(text: str | None, known: Mapping[str, Field]) -> str | None:
    return None if text is None else _name(text, known, "distinct")


def _parse_search(text: str | None) -> str | None:
    if text is not None and text.strip() == "":
        raise InvalidQuery("search needs some text.", {"parameter": "search", "value": text})
    return text


def _parse_count(text: str | None) -> bool:
    if text is None:
        return True
    if text not in _COUNTS:
        raise InvalidQuery(
            f"count must be 'exact' or 'none', not '{text}'.", {"parameter": "count", "value": text}
        )
    return _COUNTS[text]
