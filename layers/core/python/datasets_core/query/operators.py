"""The filter operator registry: name → value parser, in-memory predicate, DynamoDB condition.

Every filter ``{column}={op}.{value}`` goes through ``make_filter`` (parse once, at the edge)
and is then evaluated by ``Operator.test`` (in memory) or ``filter_condition`` (DynamoDB).
No other module branches on operator names.

Semantics (SPEC §5 and its extensions):

- Values are typed by the column (``values.parse_text``); one that does not fit, an empty
  value (``eq.``) or an operator the column's type does not support is ``InvalidQuery``.
- SQL three-valued logic. A comparison with a null/missing value is UNKNOWN and never
  matches; ``not.`` swaps TRUE and FALSE and leaves UNKNOWN unknown. So ``neq.x`` and
  ``not.eq.x`` never match nulls, and ``not.gt.5`` matches exactly the non-null rows that
  ``gt.5`` does not. ``is`` is two-valued (SQL ``IS``): ``not.is.null`` matches every
  non-null value and ``not.is.true`` matches false *and* null (SQL ``IS NOT TRUE``).
- ``eq`` is exact: text case-sensitively, numbers numerically, dates and datetimes by
  instant (datetimes are compared parsed: fraction lengths vary), json by structure
  (object key order ignored, ``true`` never equals ``1``).
- ``gt``/``gte``/``lt``/``lte`` use the column's order (also used by ``order=``): numbers
  numerically, dates/datetimes chronologically, text casefolded with exact text as the
  tie-break, booleans false < true. json columns refuse them.
- ``contains``/``starts_with`` (and ``like``/``ilike``, aliases of ``contains``) take the
  operand as raw text on any column type and compare it casefolded with the casefolded
  ``values.text_of`` of the value. ``like``/``ilike`` drop ``*``/``%`` wildcards at the ends
  of the operand (``ilike.*acme*`` means contains ``acme``); other characters are literal.
- ``in.(a,b,"c,d")``: PostgREST list syntax (see ``split_list``); items are kept exactly
  (no trimming), each parsed for the column's type; empty lists and unquoted empty items
  are refused (``""`` is the empty string); at most ``MAX_IN_ITEMS`` items.
- ``is.null`` on any column; ``is.true``/``is.false`` on boolean columns only.
- Metadata fields: ``id`` (a UUID: ``eq``, ``neq``, ``in`` only), ``row_index`` (number),
  ``created_at``/``updated_at`` (datetime).
- ``condition`` builds a DynamoDB fragment only when DynamoDB compares the stored form
  exactly as the predicate does; otherwise (casefolded text, text order, datetime ranges,
  json, boolean ranges, metadata timestamps stored at millisecond precision) it returns
  None and the caller filters in memory.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from .. import suggest, values
from ..columns import ColumnType
from ..errors import InvalidQuery
from .ast import Filter
from .expression import Expression

MAX_IN_ITEMS = 1000
_DYNAMODB_MAX_IN = 100  # operands of one DynamoDB IN
_ALL_TYPES = frozenset(ColumnType)
_RANGE_TYPES = _ALL_TYPES - {ColumnType.JSON}
# Types whose stored form DynamoDB compares for equality exactly like ``eq`` does. Datetimes
# qualify because values.normalize stores one canonical text per instant; json does not
# (object key order is kept).
_EXACT_EQ = frozenset(
    {ColumnType.STRING, ColumnType.NUMBER, ColumnType.BOOLEAN, ColumnType.DATE, ColumnType.DATETIME}
)
# Types whose stored form DynamoDB orders like the predicates do (ISO dates sort as text).
_EXACT_RANGE = frozenset({ColumnType.NUMBER, ColumnType.DATE})


# --- fields -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """Something a query can name: a user column or a metadata field."""

    name: str
    type: ColumnType
    attr: str | None  # the stored attribute (store/rows.py layout)
    indexed: bool = False
    metadata: bool = False
    operators: frozenset[str] | None = None  # canonical operator names allowed; None: by type
    exact_conditions: bool = True  # False: DynamoDB cannot compare the stored form exactly


METADATA = {
    "id": Field("id", ColumnType.STRING, "id", metadata=True, operators=frozenset({"eq", "neq", "in"})),
    # ``sk`` is the rows table's sort key: usable in key conditions, not in a filter on a Query.
    "row_index": Field("row_index", ColumnType.NUMBER, "sk", metadata=True),
    # Stored as timeutil.iso (fixed milliseconds), not values.format_datetime: filter in memory.
    "created_at": Field("created_at", ColumnType.DATETIME, "ca", metadata=True, exact_conditions=False),
    "updated_at": Field("updated_at", ColumnType.DATETIME, "ua", metadata=True, exact_conditions=False),
}


def fields(columns: Iterable[Mapping[str, Any]]) -> dict[str, Field]:
    """Every field of a dataset by name: the metadata fields, then its columns in order."""
    known = dict(METADATA)
    for column in columns:
        name = str(column["name"])
        known[name] = Field(
            name, ColumnType(column["type"]), column.get("attr"), indexed=bool(column.get("indexed"))
        )
    return known


def field_of(name: str, known: Mapping[str, Field]) -> Field:
    """The field called ``name``, or ``InvalidQuery`` naming the unknown column."""
    found = known.get(name)
    if found is None:
        raise InvalidQuery(*suggest.unknown_column(name, user_names(known)))
    return found


def user_names(known: Mapping[str, Field]) -> list[str]:
    """The dataset's column names, then the metadata fields: what a mistyped name is compared to."""
    return [name for name, field in known.items() if not field.metadata] + list(METADATA)


def parse_value(field: Field, text: str) -> Any:
    """The typed value of ``text`` for ``field``; ``values.ValueProblem`` when it does not fit."""
    if field.name == "id":
        try:
            return str(uuid.UUID(text))
        except ValueError as exc:
            raise values.ValueProblem(f"'{text}' is not a row id (a UUID)") from exc
    return values.parse_text(text, field.type)


# --- keys shared by predicates and sorting ------------------------------------------------------
@lru_cache(maxsize=65536)
def _instant_of_text(text: str) -> datetime:
    return values.parse_datetime(text)


def _instant(value: Any) -> datetime:
    return value if isinstance(value, datetime) else _instant_of_text(value)


def _number_key(value: Any) -> Decimal:
    # Decimal, not float: stored numbers arrive as Decimal and Decimal(1.1) != 1.1 in Python.
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _json_key(value: Any) -> Any:
    if isinstance(value, dict):
        return ("o", tuple(sorted((str(k), _json_key(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("a", tuple(_json_key(item) for item in value))
    if isinstance(value, bool):  # before numbers: True must not equal 1
        return ("b", value)
    if isinstance(value, (int, float, Decimal)):
        return ("n", _number_key(value))
    return ("s", value) if value is not None else ("z",)


def _text_key(value: Any) -> tuple[str, str]:
    return (value.casefold(), value)


def _json_text(value: Any) -> str:
    return values.text_of(value, ColumnType.JSON)


_EQUALITY_KEYS: dict[ColumnType, Callable[[Any], Any]] = {
    ColumnType.NUMBER: _number_key,
    ColumnType.DATETIME: _instant,
    ColumnType.JSON: _json_key,
}
_ORDER_KEYS: dict[ColumnType, Callable[[Any], Any]] = {
    ColumnType.STRING: _text_key,
    ColumnType.NUMBER: _number_key,
    ColumnType.BOOLEAN: bool,
    ColumnType.DATE: str,  # YYYY-MM-DD: text order is date order
    ColumnType.DATETIME: _instant,
    ColumnType.JSON: _json_text,
}


def equality_key(value: Any, kind: ColumnType) -> Any:
    """A hashable key equal for exactly the non-null values ``eq`` considers equal."""
    key = _EQUALITY_KEYS.get(kind)
    return key(value) if key else value


def order_key(value: Any, kind: ColumnType) -> Any:
    """The key of a non-null value in its column's order (range operators and ``order=``)."""
    return _ORDER_KEYS[kind](value)


# --- the registry ---------------------------------------------------------------------------------
Parse = Callable[[Field, str, str], Any]  # (field, operator as written, text) → operand
Predicate = Callable[[Any, Any, ColumnType], bool | None]  # None: UNKNOWN
Condition = Callable[[Expression, str, Any, ColumnType], str | None]


@dataclass(frozen=True)
class Operator:
    """One filter operator. ``predicate`` gets the row's value (None for null/missing)."""

    name: str  # canonical: what Filter.op holds
    parse: Parse
    predicate: Predicate
    condition: Condition  # (expression, stored attribute, operand, type) → fragment or None
    types: frozenset[ColumnType] = _ALL_TYPES
    two_valued: bool = False  # never UNKNOWN (``is``): ``not.`` is a plain negation

    def test(self, value: Any, operand: Any, kind: ColumnType, negated: bool = False) -> bool:
        """Whether a value matches, under three-valued logic (UNKNOWN never matches)."""
        result = self.predicate(value, operand, kind)
        if result is None:
            return False
        return result != negated


def _bad_value(field: Field, op: str, text: str, problem: str) -> InvalidQuery:
    return InvalidQuery(
        f"Invalid value for column '{field.name}' in '{op}.{text}': {problem}.",
        {"column": field.name, "operator": op, "value": text, "type": str(field.type)},
    )


def _parse_typed(field: Field, op: str, text: str) -> Any:
    try:
        return parse_value(field, text)
    except values.ValueProblem as exc:
        error = _bad_value(field, op, text, str(exc))
        if " " in text:  # the likely cause: a '+' (1e+5, +02:00) sent raw arrives as a space
            hint = "If the value had a '+', send it as %2B: a raw '+' in a query string means a space."
            error.message += " " + hint
            error.details["hint"] = hint
        raise error from exc


def _parse_text(field: Field, op: str, text: str) -> str:
    return text


def _parse_like(field: Field, op: str, text: str) -> str:
    pattern = text.strip("*%")
    if not pattern:
        raise _bad_value(field, op, text, "the pattern has no text besides wildcards")
    return pattern


def _parse_in(field: Field, op: str, text: str) -> tuple[Any, ...]:
    try:
        items = split_list(text)
    except ValueError as exc:
        raise _bad_value(field, op, text, str(exc)) from exc
    if len(items) > MAX_IN_ITEMS:
        raise _bad_value(field, op, text, f"a list holds at most {MAX_IN_ITEMS} items")
    return tuple(_parse_typed(field, op, item) for item in items)


_IS_VALUES: dict[str, bool | None] = {"null": None, "true": True, "false": False}


def _parse_is(field: Field, op: str, text: str) -> bool | None:
    keyword = text.lower()
    if keyword not in _IS_VALUES:
        raise _bad_value(field, op, text, "is. takes null, true or false")
    if keyword != "null" and field.type is not ColumnType.BOOLEAN:
        raise _bad_value(
            field, op, text, f"is.{keyword} applies to boolean columns only; this is a {field.type} column"
        )
    return _IS_VALUES[keyword]


def _comparison(compare: Callable[[Any, Any, ColumnType], bool]) -> Predicate:
    def predicate(value: Any, operand: Any, kind: ColumnType) -> bool | None:
        return None if value is None else compare(value, operand, kind)

    return predicate


def _ordered(compare: Callable[[Any, Any], bool]) -> Predicate:
    return _comparison(lambda value, operand, kind: compare(order_key(value, kind), order_key(operand, kind)))


def _equal(value: Any, operand: Any, kind: ColumnType) -> bool:
    return bool(equality_key(value, kind) == equality_key(operand, kind))


def _in(value: Any, items: tuple[Any, ...], kind: ColumnType) -> bool:
    key = equality_key(value, kind)
    return any(key == equality_key(item, kind) for item in items)


def _contains(value: Any, operand: str, kind: ColumnType) -> bool:
    return operand.casefold() in values.text_of(value, kind).casefold()


def _starts_with(value: Any, operand: str, kind: ColumnType) -> bool:
    return values.text_of(value, kind).casefold().startswith(operand.casefold())


def _is(value: Any, operand: bool | None, kind: ColumnType) -> bool:
    return value is operand if operand is None else value is not None and bool(value) is operand


def _compare_condition(symbol: str, exact: frozenset[ColumnType]) -> Condition:
    def build(expr: Expression, attr: str, operand: Any, kind: ColumnType) -> str | None:
        if kind not in exact:
            return None
        return f"{expr.add_name(attr)} {symbol} {expr.add_value(values.to_store(operand, kind))}"

    return build


def _neq_condition(expr: Expression, attr: str, operand: Any, kind: ColumnType) -> str | None:
    if kind not in _EXACT_EQ:
        return None
    name = expr.add_name(attr)
    # attribute_exists: a missing attribute (null) must not match, whatever DynamoDB's <> says.
    return f"attribute_exists({name}) AND {name} <> {expr.add_value(values.to_store(operand, kind))}"


def _in_condition(expr: Expression, attr: str, items: tuple[Any, ...], kind: ColumnType) -> str | None:
    if kind not in _EXACT_EQ or len(items) > _DYNAMODB_MAX_IN:
        return None
    name = expr.add_name(attr)
    placeholders = ", ".join(expr.add_value(values.to_store(item, kind)) for item in items)
    return f"{name} IN ({placeholders})"


def _is_condition(expr: Expression, attr: str, operand: bool | None, kind: ColumnType) -> str | None:
    name = expr.add_name(attr)
    if operand is None:
        return f"attribute_not_exists({name})"  # nulls are absent attributes
    return f"{name} = {expr.add_value(operand)}"


def _no_condition(expr: Expression, attr: str, operand: Any, kind: ColumnType) -> str | None:
    return None  # casefolded text: DynamoDB's contains/begins_with are case-sensitive


_EQ = Operator("eq", _parse_typed, _comparison(_equal), _compare_condition("=", _EXACT_EQ))
_CONTAINS = Operator("contains", _parse_text, _comparison(_contains), _no_condition)

REGISTRY: dict[str, Operator] = {
    "eq": _EQ,
    "neq": Operator("neq", _parse_typed, _comparison(lambda v, o, k: not _equal(v, o, k)), _neq_condition),
    "gt": Operator(
        "gt", _parse_typed, _ordered(lambda a, b: a > b), _compare_condition(">", _EXACT_RANGE), _RANGE_TYPES
    ),
    "gte": Operator(
        "gte",
        _parse_typed,
        _ordered(lambda a, b: a >= b),
        _compare_condition(">=", _EXACT_RANGE),
        _RANGE_TYPES,
    ),
    "lt": Operator(
        "lt", _parse_typed, _ordered(lambda a, b: a < b), _compare_condition("<", _EXACT_RANGE), _RANGE_TYPES
    ),
    "lte": Operator(
        "lte",
        _parse_typed,
        _ordered(lambda a, b: a <= b),
        _compare_condition("<=", _EXACT_RANGE),
        _RANGE_TYPES,
    ),
    "contains": _CONTAINS,
    "like": Operator("contains", _parse_like, _CONTAINS.predicate, _no_condition),
    "ilike": Operator("contains", _parse_like, _CONTAINS.predicate, _no_condition),
    "starts_with": Operator("starts_with", _parse_text, _comparison(_starts_with), _no_condition),
    "in": Operator("in", _parse_in, _comparison(_in), _in_condition),
    "is": Operator("is", _parse_is, _is, _is_condition, two_valued=True),
}


def valid_operators(field: Field | None = None) -> list[str]:
    """Operator names (aliases included) usable on ``field``, or on some field when None."""
    return [name for name, op in REGISTRY.items() if field is None or _applies(op, field)]


def _applies(op: Operator, field: Field) -> bool:
    allowed = field.operators is None or op.name in field.operators
    return allowed and field.type in op.types


def operator_for(field: Field, op_name: str) -> Operator:
    """The operator called ``op_name`` if it applies to ``field``, or ``InvalidQuery`` saying why not."""
    op = REGISTRY.get(op_name)
    details = {"column": field.name, "operator": op_name}
    if op is None:
        raise InvalidQuery(
            f"Unknown operator '{op_name}' in the filter on '{field.name}'. "
            f"Valid operators: {', '.join(valid_operators())} (each may be prefixed with 'not.').",
            {**details, "valid_operators": valid_operators()},
        )
    if not _applies(op, field):
        kind = "the metadata field" if field.metadata else f"the {field.type} column"
        usable = valid_operators(field)
        raise InvalidQuery(
            f"Operator '{op_name}' does not apply to {kind} '{field.name}'. Use one of: {', '.join(usable)}.",
            {**details, "valid_operators": usable},
        )
    return op


def make_filter(field: Field, op_name: str, text: str, negated: bool = False) -> Filter:
    """The typed filter ``{field}=[not.]{op_name}.{text}``, or ``InvalidQuery`` saying what is wrong."""
    op = operator_for(field, op_name)
    if text == "":
        raise InvalidQuery(
            f"The filter on '{field.name}' has no value after '{op_name}.'.",
            {"column": field.name, "operator": op_name, "value": ""},
        )
    return Filter(field.name, op.name, op.parse(field, op_name, text), negated)


def filter_condition(expr: Expression, flt: Filter, field: Field, attr: str | None = None) -> str | None:
    """A DynamoDB condition matching exactly the items ``flt`` matches, or None when there is none.

    ``attr`` overrides the field's stored attribute. Placeholders are added to ``expr`` only
    when a fragment is returned.
    """
    target = attr or field.attr
    if target is None or not field.exact_conditions:
        return None
    op = REGISTRY[flt.op]
    positive = op.condition(expr, target, flt.value, field.type)
    if positive is None or not flt.negated:
        return positive
    if op.two_valued:
        return f"NOT ({positive})"
    # NOT of UNKNOWN stays UNKNOWN: a missing attribute must not match the negation either.
    return f"attribute_exists({expr.add_name(target)}) AND NOT ({positive})"


# --- PostgREST lists ------------------------------------------------------------------------------
def split_list(text: str) -> list[str]:
    """Items of ``(a,b,"c,d")``; ``ValueError`` with a reason a user understands.

    Unquoted items run to the next comma and may not contain ``"``, ``(`` or ``)``; a
    double-quoted item may contain anything, with ``\\"`` and ``\\\\`` (a backslash escapes
    any character) and must be followed by ``,`` or the closing parenthesis.
    """
    if len(text) < 2 or text[0] != "(" or text[-1] != ")":
        raise ValueError('a list is written in parentheses, like in.(a,b,"c,d")')
    body = text[1:-1]
    if body == "":
        raise ValueError("the list is empty")
    items: list[str] = []
    position = 0
    while True:
        if body.startswith('"', position):
            item, position = _quoted(body, position)
            if position < len(body) and body[position] != ",":
                raise ValueError("a quoted item must be followed by ',' or ')'")
        else:
            end = body.find(",", position)
            end = len(body) if end < 0 else end
            item = body[position:end]
            if item == "":
                raise ValueError('the list has an empty item (write "" for the empty string)')
            if any(ch in item for ch in '"()'):
                raise ValueError(f"put the item {item} in double quotes: it contains a quote or parenthesis")
            position = end
        items.append(item)
        if position >= len(body):
            return items
        position += 1  # the comma


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The unescaped text of the quoted string at ``start`` and the position after it."""
    chars: list[str] = []
    position = start + 1
    while position < len(text):
        ch = text[position]
        if ch == '"':
            return "".join(chars), position + 1
        if ch == "\\" and position + 1 < len(text):
            ch = text[position + 1]
            position += 1
        chars.append(ch)
        position += 1
    raise ValueError("a double-quoted item is not closed")


def quote(item: str) -> str:
    """``item`` as a double-quoted list item (or column name), escaping ``\\`` and ``"``."""
    return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_list(items: Iterable[str]) -> str:
    """The ``in.`` operand that ``split_list`` turns back into ``items``."""
    return "(" + ",".join(quote(item) for item in items) + ")"


def unquote(text: str) -> tuple[str, str]:
    """A leading double-quoted name and the text after it; ``ValueError`` when not closed."""
    name, end = _quoted(text, 0)
    return name, text[end:]
