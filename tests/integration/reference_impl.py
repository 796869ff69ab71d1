"""An independent in-memory model of the rows query semantics of SPEC §5, for property tests.

Written from the specification alone; it deliberately imports nothing from
``datasets_core`` so a shared mistake cannot hide in both. What it models:

- Values in their API form: numbers (integers without ``.0``), booleans, ``YYYY-MM-DD``
  dates, ISO 8601 datetimes normalised to UTC with a ``Z``, text; ``None`` is null.
- Filters with SQL three-valued logic: a comparison with a null is UNKNOWN and never
  matches, ``not.`` swaps TRUE/FALSE but leaves UNKNOWN unknown; ``is`` is two-valued.
  ``eq`` is exact (text case-sensitively, numbers numerically, datetimes by instant);
  ranges use the column's order; ``contains``/``starts_with`` (``like``/``ilike`` =
  ``contains`` with ``*``/``%`` wildcards allowed at the ends) compare casefolded text.
- ``match``/``imatch``: a regular expression searched in the value's text, case-sensitively
  or not (the patterns the tests draw mean the same in RE2 and in Python's ``re``).
- Logical groups (``or``/``and``, optionally negated, nested) in three-valued logic: ``or``
  is TRUE when an item is, FALSE when all are, else UNKNOWN; ``and`` the dual; ``not``
  leaves UNKNOWN unknown; a row matches when the whole condition is TRUE.
- JSON paths into ``json`` columns: ``col->>key`` is the text at the path (a string, or the
  JSON text of other values), compared as a string; ``col->key`` the JSON value, here always
  a number, compared numerically; a missing key or index is null.
- ``search``: casefolded substring over the text of every user column (a json column's text
  is its compact JSON).
- Order: text casefolded then exact, numbers numerically, dates/datetimes chronologically,
  booleans false < true; nulls last ascending and first descending unless overridden;
  remaining ties by ``row_index`` ascending.
- ``total`` counts every match; ``limit``/``offset`` cut the window; ``distinct`` groups by
  equality, ordered by count descending then value (null last within its count).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

TYPES = ("string", "number", "boolean", "date", "datetime")
GROUP_SPECIALS = frozenset(',.:()"\\')  # a group item's value holding one of these is quoted
METADATA_TYPES = {"row_index": "number"}


# --- values ----------------------------------------------------------------------------------
def instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def canonical(value: Any, kind: str) -> Any:
    """The value as the API returns it after storing ``value`` in a ``kind`` column."""
    if value is None:
        return None
    if kind == "datetime":
        moment = instant(value)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if moment.microsecond:
            text += "." + f"{moment.microsecond:06d}".rstrip("0")
        return text + "Z"
    if kind == "number":
        number = Decimal(str(value))
        return int(number) if number == number.to_integral_value() else float(number)
    return value


def render_number(value: Any) -> str:
    """Numbers as text: integers without ``.0``, other numbers in plain decimal notation."""
    number = Decimal(str(value))
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def text_of(value: Any, kind: str) -> str:
    if kind == "json":
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "number":
        return render_number(value)
    return str(value)


def order_key(value: Any, kind: str) -> Any:
    if kind == "string":
        return (value.casefold(), value)
    if kind == "number":
        return Decimal(str(value))
    if kind == "boolean":
        return 1 if value else 0
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "datetime":
        return instant(value)
    raise ValueError(kind)


def equal_key(value: Any, kind: str) -> Any:
    if kind == "string":
        return value  # eq is exact: case matters
    return order_key(value, kind)


# --- queries ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Filter:
    column: str
    op: str  # eq neq gt gte lt lte contains starts_with like ilike in is match imatch
    value: Any  # typed operand; a tuple for ``in``; None/True/False for ``is``; text for text ops
    text: str  # the operand as written in the query string
    negated: bool = False
    path: tuple[str, ...] = ()  # a JSON path into a json column
    as_text: bool = False  # ``->>`` (the text at the path) rather than ``->``

    @property
    def field(self) -> str:
        """The field as a query names it: ``col``, ``col->key`` or ``col->>key``."""
        if not self.path:
            return self.column
        *inner, last = self.path
        return self.column + "".join(f"->{key}" for key in inner) + ("->>" if self.as_text else "->") + last

    def render(self) -> str:
        return f"{'not.' if self.negated else ''}{self.op}.{self.text}"

    def render_item(self) -> str:
        """The filter as an item of a logical group: ``field.[not.]op.value``, the value quoted
        when it holds a character the group syntax uses."""
        text = self.text
        if self.op not in ("in", "is") and (not text or GROUP_SPECIALS & set(text) or text != text.strip()):
            text = quote_item(text)
        return f"{self.field}.{'not.' if self.negated else ''}{self.op}.{text}"


@dataclass(frozen=True)
class Group:
    kind: str  # or | and
    items: tuple[Filter | Group, ...]
    negated: bool = False

    @property
    def param(self) -> str:
        return ("not." if self.negated else "") + self.kind

    def render(self) -> str:
        return "(" + ",".join(item.render_item() for item in self.items) + ")"

    def render_item(self) -> str:
        return self.param + self.render()


@dataclass(frozen=True)
class Order:
    column: str
    descending: bool = False
    nulls_first: bool | None = None

    def render(self) -> str:
        text = f"{self.column}.{'desc' if self.descending else 'asc'}"
        if self.nulls_first is not None:
            text += ".nullsfirst" if self.nulls_first else ".nullslast"
        return text


@dataclass
class Query:
    filters: list[Filter | Group] = field(default_factory=list)
    search: str | None = None
    order: list[Order] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None
    count_none: bool = False
    distinct: str | None = None

    def params(self) -> list[tuple[str, str]]:
        pairs = [
            (flt.param, flt.render()) if isinstance(flt, Group) else (flt.field, flt.render())
            for flt in self.filters
        ]
        if self.search is not None:
            pairs.append(("search", self.search))
        if self.order:
            pairs.append(("order", ",".join(term.render() for term in self.order)))
        if self.limit is not None:
            pairs.append(("limit", str(self.limit)))
        if self.offset is not None:
            pairs.append(("offset", str(self.offset)))
        if self.count_none:
            pairs.append(("count", "none"))
        if self.distinct is not None:
            pairs.append(("distinct", self.distinct))
        return pairs

    def query_string(self) -> str:
        """Percent-encoded query string (spaces as %20, ``+`` as %2B: nothing left ambiguous)."""
        return encode_params(self.params())


def encode_params(pairs: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)


def quote_item(text: str) -> str:
    """A double-quoted ``in`` list item: backslash-escape ``\\`` and ``"``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def in_list(texts: Sequence[str]) -> str:
    return "(" + ",".join(quote_item(text) for text in texts) + ")"


# --- evaluation --------------------------------------------------------------------------------
class Model:
    """Rows (``{"row_index", <column>: canonical value or None}``) and their column types."""

    def __init__(self, types: dict[str, str], rows: list[dict[str, Any]]) -> None:
        self.types = {**METADATA_TYPES, **types}
        self.user_columns = list(types)
        self.rows = rows

    def kind(self, column: str) -> str:
        return self.types[column]

    # filters
    def truth(self, row: dict[str, Any], condition: Filter | Group) -> bool | None:
        """TRUE, FALSE or UNKNOWN (None) for one condition on one row."""
        if isinstance(condition, Group):
            results = [self.truth(row, item) for item in condition.items]
            if condition.kind == "or":
                result = True if True in results else (None if None in results else False)
            else:
                result = False if False in results else (None if None in results else True)
            return result if result is None else result != condition.negated
        value = self.value_at(row, condition)
        if condition.path:
            kind = "string" if condition.as_text else "number"  # ``->`` paths here hold numbers
        else:
            kind = self.kind(condition.column)
        if condition.op == "is":
            result = value is None if condition.value is None else value is condition.value
            return result != condition.negated
        if value is None:
            return None  # UNKNOWN: neither the filter nor its negation matches
        return self._compare(value, condition, kind) != condition.negated

    def value_at(self, row: dict[str, Any], flt: Filter) -> Any:
        value = row.get(flt.column)
        for key in flt.path:
            if isinstance(value, dict):
                value = value.get(key)
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                return None
            if value is None:
                return None
        if flt.as_text and value is not None and not isinstance(value, str):
            return text_of(value, "json" if isinstance(value, (dict, list)) else "number")
        return value

    def passes(self, row: dict[str, Any], flt: Filter | Group) -> bool:
        return self.truth(row, flt) is True

    def _compare(self, value: Any, flt: Filter, kind: str) -> bool:
        op = flt.op
        if op in ("match", "imatch"):
            flags = re.IGNORECASE if op == "imatch" else 0
            return re.search(flt.value, text_of(value, kind), flags) is not None
        if op == "eq":
            return equal_key(value, kind) == equal_key(flt.value, kind)
        if op == "neq":
            return equal_key(value, kind) != equal_key(flt.value, kind)
        if op == "in":
            return any(equal_key(value, kind) == equal_key(item, kind) for item in flt.value)
        if op in ("gt", "gte", "lt", "lte"):
            left, right = order_key(value, kind), order_key(flt.value, kind)
            return {
                "gt": left > right,
                "gte": left >= right,
                "lt": left < right,
                "lte": left <= right,
            }[op]
        haystack = text_of(value, kind).casefold()
        if op == "starts_with":
            return haystack.startswith(flt.value.casefold())
        if op in ("contains", "like", "ilike"):
            needle = flt.value.strip("*%") if op in ("like", "ilike") else flt.value
            return needle.casefold() in haystack
        raise ValueError(op)

    def found(self, row: dict[str, Any], text: str) -> bool:
        needle = text.casefold()
        return any(
            row.get(column) is not None and needle in text_of(row[column], self.kind(column)).casefold()
            for column in self.user_columns
        )

    def matching(self, query: Query) -> list[dict[str, Any]]:
        return [
            row
            for row in self.rows
            if all(self.passes(row, flt) for flt in query.filters)
            and (query.search is None or self.found(row, query.search))
        ]

    # order
    def sorted(self, rows: list[dict[str, Any]], order: Sequence[Order]) -> list[dict[str, Any]]:
        def compare(a: dict[str, Any], b: dict[str, Any]) -> int:
            for term in order:
                left, right = a.get(term.column), b.get(term.column)
                nulls_first = term.descending if term.nulls_first is None else term.nulls_first
                if left is None and right is None:
                    continue
                if left is None:
                    return -1 if nulls_first else 1
                if right is None:
                    return 1 if nulls_first else -1
                kind = self.kind(term.column)
                lk, rk = order_key(left, kind), order_key(right, kind)
                if lk != rk:
                    smaller = -1 if lk < rk else 1
                    return -smaller if term.descending else smaller
            return a["row_index"] - b["row_index"]

        return sorted(rows, key=functools.cmp_to_key(compare))

    # the answer
    def run(self, query: Query) -> dict[str, Any]:
        matched = self.matching(query)
        limit = 100 if query.limit is None else query.limit
        offset = query.offset or 0
        if query.distinct is not None:
            values = self.distinct(matched, query.distinct)
            return {"values": values[offset : offset + limit], "total_unique": len(values)}
        ordered = self.sorted(matched, query.order)
        return {
            "rows": ordered[offset : offset + limit],
            "total": None if query.count_none else len(matched),
        }

    def distinct(self, rows: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
        kind = self.kind(column)
        groups: dict[Any, list[Any]] = {}
        for row in rows:
            value = row.get(column)
            key = ("null",) if value is None else ("v", equal_key(value, kind))
            groups.setdefault(key, [value, 0])[1] += 1

        def compare(a: list[Any], b: list[Any]) -> int:
            if a[1] != b[1]:
                return b[1] - a[1]
            if a[0] is None or b[0] is None:
                return (a[0] is None) - (b[0] is None)
            lk, rk = order_key(a[0], kind), order_key(b[0], kind)
            return -1 if lk < rk else (1 if lk > rk else 0)

        return [
            {"value": value, "count": count}
            for value, count in sorted(groups.values(), key=functools.cmp_to_key(compare))
        ]
