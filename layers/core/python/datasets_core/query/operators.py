"""The filter operator registry: one entry per operator owns everything about it.

An ``Operator`` holds its value parser (query-string text, and JSON operands of bulk-write
``where`` bodies), its in-memory predicate, the index key ranges that serve it (if any) and
its columnar form (a pyarrow kernel, used on the replica; imported only by functions that
evaluate the replica). No other module branches on operator names.

Semantics (SPEC §5 and its extensions):

- Operands are typed by the field (``values.parse_text``); one that does not fit, an empty
  operand (``eq.``) or an operator the field's kind does not support is ``InvalidQuery``.
- SQL three-valued logic. A comparison with a null/missing value is UNKNOWN and never
  matches; ``not.`` swaps TRUE and FALSE and leaves UNKNOWN unknown. So ``neq.x`` and
  ``not.eq.x`` never match nulls, and ``not.gt.5`` matches exactly the non-null rows that
  ``gt.5`` does not. ``is`` is two-valued (SQL ``IS``): ``not.is.null`` matches every
  non-null value and ``not.is.true`` matches false *and* null (SQL ``IS NOT TRUE``).
- ``eq`` is exact: text case-sensitively, numbers numerically, dates and datetimes by
  instant, json by structure (object key order ignored, ``true`` never equals ``1``).
- ``gt``/``gte``/``lt``/``lte`` use the field's order (also used by ``order=``): numbers
  numerically, dates/datetimes chronologically, text casefolded with exact text as the
  tie-break, booleans false < true. json columns refuse them.
- ``contains``/``starts_with`` (and ``like``/``ilike``, aliases of ``contains``) take the
  operand as raw text on any kind and compare it casefolded with the casefolded text of the
  value (``values.text_of``). ``like``/``ilike`` drop ``*``/``%`` wildcards at the ends of the
  operand (``ilike.*acme*`` means contains ``acme``); other characters are literal.
- ``match``/``imatch``: a regular expression (RE2 syntax, linear-time matching: no
  catastrophic backtracking) searched in the value's text, case-sensitively / not.
- ``in.(a,b,"c,d")``: PostgREST list syntax (see ``split_list``); items are kept exactly
  (no trimming), each typed by the field; empty lists and unquoted empty items are refused
  (``""`` is the empty string); at most ``MAX_IN_ITEMS`` items.
- ``is.null`` on any field; ``is.true``/``is.false`` on booleans only.
- JSON paths (``meta->plan``, kind ``JSON_VALUE``): the operand is read as JSON when it is
  JSON (``5``, ``true``, ``"x"``) and as text otherwise (``eq.pro``); equality is structural,
  ranges compare numbers with numbers and strings with strings (other pairs are UNKNOWN).
- Metadata fields: ``id`` (a UUID: ``eq``, ``neq``, ``in`` only), ``row_index`` (number),
  ``created_at``/``updated_at`` (datetime).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from msgspec import Struct

from .. import jsonutil, values
from ..columns import ColumnType
from ..errors import InvalidQuery
from ..store import encoding
from ..store.index import HIGH_VALUES, LOW, Range, group_range
from .ast import Filter
from .fields import JSON_VALUE, Field, Kind, json_text

MAX_IN_ITEMS = 1000
_ALL_KINDS = frozenset({*ColumnType, JSON_VALUE})
_ORDERED_KINDS = _ALL_KINDS - {ColumnType.JSON}
_TEXT_KINDS = frozenset({ColumnType.STRING, JSON_VALUE})  # operands taken exactly, spaces included
_NULLS = group_range(encoding.NULL)
_VALUES = Range(LOW, HIGH_VALUES)


# --- keys shared by predicates, sorting and the replica --------------------------------------
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


def _json_value_order(value: Any) -> tuple[int, Any]:
    """A total order over JSON values: numbers, then strings, then booleans, then structures."""
    if isinstance(value, bool):
        return (2, value)
    if isinstance(value, (int, float, Decimal)):
        return (0, _number_key(value))
    if isinstance(value, str):
        return (1, _text_key(value))
    return (3, values.text_of(value, ColumnType.JSON))


def _json_column_order(value: Any) -> str:
    return values.text_of(value, ColumnType.JSON)


_EQUALITY_KEYS: dict[str, Callable[[Any], Any]] = {
    ColumnType.NUMBER: _number_key,
    ColumnType.DATETIME: _instant,
    ColumnType.JSON: _json_key,
    JSON_VALUE: _json_key,
}
_ORDER_KEYS: dict[str, Callable[[Any], Any]] = {
    ColumnType.STRING: _text_key,
    ColumnType.NUMBER: _number_key,
    ColumnType.BOOLEAN: bool,
    ColumnType.DATE: str,  # YYYY-MM-DD: text order is date order
    ColumnType.DATETIME: _instant,
    ColumnType.JSON: _json_column_order,
    JSON_VALUE: _json_value_order,
}


def equality_key(value: Any, kind: Kind) -> Any:
    """A hashable key equal for exactly the non-null values ``eq`` considers equal."""
    key = _EQUALITY_KEYS.get(kind)
    return key(value) if key else value


def order_key(value: Any, kind: Kind) -> Any:
    """The key of a non-null value in its kind's order (range operators and ``order=``)."""
    return _ORDER_KEYS[kind](value)


def text_of(value: Any, kind: Kind) -> str:
    """The text ``contains``, ``starts_with``, ``match`` and ``search`` look at."""
    return json_text(value) if kind == JSON_VALUE else values.text_of(value, kind)


# --- operands --------------------------------------------------------------------------------
def bad_value(field: Field, op: str, text: Any, problem: str) -> InvalidQuery:
    return InvalidQuery(
        f"Invalid value for '{field.name}' in '{op}.{text}': {problem}.",
        {"column": field.name, "operator": op, "value": str(text), "type": str(field.kind)},
    )


def parse_value(field: Field, text: str) -> Any:
    """The typed value of ``text`` for ``field``; ``values.ValueProblem`` when it does not fit."""
    if field.kind not in _TEXT_KINDS and text != text.strip():
        # A number, date or boolean never has spaces around it: ``eq.5%0A`` is a pasted newline,
        # `` 5`` most often a raw '+' (``+5``), which a query string turns into a space.
        raise values.ValueProblem(f"{text!r} has whitespace around the value")
    if field.name == "id" and field.metadata:
        try:
            return str(uuid.UUID(text))
        except ValueError as exc:
            raise values.ValueProblem(f"'{text}' is not a row id (a UUID)") from exc
    if field.kind == JSON_VALUE:
        return _json_operand(text)
    return values.parse_text(text, field.kind)


def _json_operand(text: str) -> Any:
    """A JSON path's operand: JSON when it reads as JSON (with no space around it), else the text
    itself."""
    if text != text.strip():
        return text
    try:
        value = jsonutil.loads(text)
    except ValueError:
        return text
    if value is None:
        raise values.ValueProblem("null never equals anything; use is.null")
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return values.normalize(value, ColumnType.NUMBER)  # exact, or refused like any number
    return value


def json_value(field: Field, operand: Any) -> Any:
    """The typed value of a JSON operand (bulk-write ``where`` bodies) for ``field``."""
    if operand is None:
        raise values.ValueProblem("null only matches with 'is' (or a bare null)")
    if field.name == "id" and field.metadata:
        if not isinstance(operand, str):
            raise values.ValueProblem("a row id is a UUID string")
        return parse_value(field, operand)
    if field.kind == JSON_VALUE:
        return operand
    return values.normalize(operand, field.kind)


Parse = Callable[[Field, str, str], Any]  # (field, operator as written, text) → operand
FromJson = Callable[[Field, str, Any], Any]  # (field, operator as written, JSON operand) → operand


def _typed(field: Field, op: str, text: str) -> Any:
    try:
        return parse_value(field, text)
    except values.ValueProblem as exc:
        error = bad_value(field, op, text, str(exc))
        if " " in text:  # the likely cause: a '+' (1e+5, +02:00) sent raw arrives as a space
            hint = "If the value had a '+', send it as %2B: a raw '+' in a query string means a space."
            error.message += " " + hint
            error.details["hint"] = hint
        raise error from exc


def _typed_json(field: Field, op: str, operand: Any) -> Any:
    try:
        return json_value(field, operand)
    except values.ValueProblem as exc:
        raise bad_value(field, op, jsonutil.dumps(operand), str(exc)) from exc


def _text(field: Field, op: str, text: Any) -> str:
    if not isinstance(text, str) or not text:
        raise bad_value(field, op, text, f"'{op}' takes non-empty text")
    return text


def _like(field: Field, op: str, text: Any) -> str:
    pattern = _text(field, op, text).strip("*%")
    if not pattern:
        raise bad_value(field, op, text, "the pattern has no text besides wildcards")
    return pattern


def _pattern(field: Field, op: str, text: Any) -> str:
    pattern = _text(field, op, text)
    try:
        compiled_pattern(pattern, True)
    except ValueError as exc:
        raise bad_value(field, op, text, f"not a valid regular expression ({exc})") from exc
    return pattern


@lru_cache(maxsize=256)
def compiled_pattern(pattern: str, case_sensitive: bool) -> Any:
    """An RE2 program (linear-time matching); ``ValueError`` when the pattern is invalid."""
    import re2  # only filters with match/imatch pay for loading RE2

    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = case_sensitive
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(reason) from exc


def _in_list(field: Field, op: str, text: str) -> tuple[Any, ...]:
    try:
        items = split_list(text)
    except ValueError as exc:
        raise bad_value(field, op, text, str(exc)) from exc
    if len(items) > MAX_IN_ITEMS:
        raise bad_value(field, op, text, f"a list holds at most {MAX_IN_ITEMS} items")
    return tuple(_typed(field, op, item) for item in items)


def _in_json(field: Field, op: str, operand: Any) -> tuple[Any, ...]:
    if not isinstance(operand, list) or not operand or len(operand) > MAX_IN_ITEMS:
        raise bad_value(
            field,
            op,
            jsonutil.dumps(operand),
            f"'in' takes a non-empty array of at most {MAX_IN_ITEMS} values",
        )
    return tuple(_typed_json(field, op, item) for item in operand)


_IS_VALUES: dict[str, bool | None] = {"null": None, "true": True, "false": False}


def _is_text(field: Field, op: str, text: str) -> bool | None:
    keyword = text.lower()
    if keyword not in _IS_VALUES:
        raise bad_value(field, op, text, "is. takes null, true or false")
    return _is_json(field, op, _IS_VALUES[keyword])


def _is_json(field: Field, op: str, operand: Any) -> bool | None:
    if operand is not None and not isinstance(operand, bool):
        raise bad_value(field, op, jsonutil.dumps(operand), "is takes null, true or false")
    if operand is not None and field.kind is not ColumnType.BOOLEAN:
        raise bad_value(
            field,
            op,
            str(operand).lower(),
            f"is.true/is.false apply to boolean columns only; this is {field.kind}",
        )
    return operand


# --- predicates ------------------------------------------------------------------------------
Predicate = Callable[[Any, Any, Kind], bool | None]  # None: UNKNOWN


def _comparison(compare: Callable[[Any, Any, Kind], bool | None]) -> Predicate:
    def predicate(value: Any, operand: Any, kind: Kind) -> bool | None:
        return None if value is None else compare(value, operand, kind)

    return predicate


def _comparable(value: Any, operand: Any, kind: Kind) -> bool:
    """JSON values compare in order only number with number, string with string."""
    if kind != JSON_VALUE:
        return True
    number = (int, float, Decimal)
    if isinstance(value, bool) or isinstance(operand, bool):
        return False
    return (isinstance(value, number) and isinstance(operand, number)) or (
        isinstance(value, str) and isinstance(operand, str)
    )


def _ordered(compare: Callable[[Any, Any], bool]) -> Predicate:
    def check(value: Any, operand: Any, kind: Kind) -> bool | None:
        if not _comparable(value, operand, kind):
            return None
        return compare(order_key(value, kind), order_key(operand, kind))

    return _comparison(check)


def _equal(value: Any, operand: Any, kind: Kind) -> bool:
    return bool(equality_key(value, kind) == equality_key(operand, kind))


def _in(value: Any, items: tuple[Any, ...], kind: Kind) -> bool:
    key = equality_key(value, kind)
    return any(key == equality_key(item, kind) for item in items)


def _contains(value: Any, operand: str, kind: Kind) -> bool:
    return operand.casefold() in text_of(value, kind).casefold()


def _starts_with(value: Any, operand: str, kind: Kind) -> bool:
    return text_of(value, kind).casefold().startswith(operand.casefold())


def _matches(case_sensitive: bool) -> Predicate:
    def check(value: Any, pattern: str, kind: Kind) -> bool:
        return compiled_pattern(pattern, case_sensitive).search(text_of(value, kind)) is not None

    return _comparison(check)


def _is(value: Any, operand: bool | None, kind: Kind) -> bool:
    return value is operand if operand is None else value is not None and bool(value) is operand


# --- index ranges ------------------------------------------------------------------------------
IndexRange = Callable[[Any, Kind], "list[Range] | None"]  # ranges holding every match of a filter


def _group(value: Any, kind: Kind) -> Range:
    return group_range(encoding.cut(encoding.encode(value, kind)))


def _eq_range(operand: Any, kind: Kind) -> list[Range]:
    return [_group(operand, kind)]


def _in_range(items: tuple[Any, ...], kind: Kind) -> list[Range]:
    return sorted({_group(value, kind) for value in items}, key=lambda bounds: bounds.low)


def _is_range(operand: bool | None, kind: Kind) -> list[Range]:
    return [_NULLS] if operand is None else [_group(operand, kind)]


def _starts_with_range(operand: str, kind: Kind) -> list[Range] | None:
    if kind is not ColumnType.STRING:
        return None
    return [group_range(encoding.cut(encoding.casefold_prefix(operand)))]


def _range(lower: bool, inclusive: bool) -> IndexRange:
    def ranges(operand: Any, kind: Kind) -> list[Range]:
        full = encoding.encode(operand, kind)
        key, was_cut = encoding.cut(full), len(full) > encoding.MAX_VALUE_BYTES
        after_ties = group_range(key).high
        if lower:
            return [Range(key if inclusive or was_cut else after_ties, HIGH_VALUES)]
        return [Range(LOW, after_ties if inclusive or was_cut else key)]

    return ranges


def range_is_exact(flt: Filter, kind: Kind) -> bool:
    """Whether a filter's key ranges hold exactly its matches (no operand cut at the key limit)."""
    operands = flt.value if isinstance(flt.value, tuple) else (flt.value,)
    for operand in operands:
        if operand is None or isinstance(operand, bool):
            continue
        if flt.op == "starts_with":
            size = len(encoding.casefold_prefix(operand))
        else:
            size = len(encoding.encode(operand, kind))
        if size > encoding.MAX_VALUE_BYTES:
            return False
    return True


# --- the registry ------------------------------------------------------------------------------
Columnar = Callable[[Any, Any, Kind], Any]  # (column data, operand, kind) → Arrow booleans


def _kernel(name: str) -> Columnar:
    """The columnar form named ``name`` in ``query.columnar`` (pyarrow), loaded on first use."""

    def run(data: Any, operand: Any, kind: Kind) -> Any:
        from . import columnar

        return getattr(columnar, name)(data, operand, kind)

    return run


class Operator(Struct, frozen=True):
    """One filter operator. ``predicate`` gets the row's value (None for null/missing)."""

    name: str  # canonical: what Filter.op holds
    parse: Parse
    from_json: FromJson
    predicate: Predicate
    columnar: Columnar
    index_range: IndexRange | None = None  # None: an index cannot narrow it
    kinds: frozenset[str] = _ALL_KINDS
    two_valued: bool = False  # never UNKNOWN (``is``): ``not.`` is a plain negation
    pins: bool = False  # keeps single values (an index walks them in row_index order)

    def test(self, value: Any, operand: Any, kind: Kind, negated: bool = False) -> bool:
        """Whether a value matches, under three-valued logic (UNKNOWN never matches)."""
        result = self.truth(value, operand, kind, negated)
        return bool(result)

    def truth(self, value: Any, operand: Any, kind: Kind, negated: bool = False) -> bool | None:
        """TRUE, FALSE or UNKNOWN (None) — what groups combine."""
        result = self.predicate(value, operand, kind)
        if result is None:
            return None
        return result != negated

    def ranges(self, operand: Any, kind: Kind, negated: bool) -> list[Range] | None:
        """Index key ranges holding every row the filter matches, or None."""
        if negated:
            # not.is.null keeps every value; other negations cannot narrow a key range.
            return [_VALUES] if self.name == "is" and operand is None else None
        return self.index_range(operand, kind) if self.index_range else None


def _compare(symbol: str, compare: Callable[[Any, Any], bool], lower: bool, inclusive: bool) -> Operator:
    return Operator(
        symbol,
        _typed,
        _typed_json,
        _ordered(compare),
        _kernel(f"compare_{symbol}"),
        _range(lower, inclusive),
        _ORDERED_KINDS,
    )


_CONTAINS = Operator("contains", _text, _text, _comparison(_contains), _kernel("contains"))
_LIKE = Operator("contains", _like, _like, _comparison(_contains), _kernel("contains"))

REGISTRY: dict[str, Operator] = {
    "eq": Operator("eq", _typed, _typed_json, _comparison(_equal), _kernel("equal"), _eq_range, pins=True),
    "neq": Operator(
        "neq", _typed, _typed_json, _comparison(lambda v, o, k: not _equal(v, o, k)), _kernel("not_equal")
    ),
    "gt": _compare("gt", lambda a, b: a > b, lower=True, inclusive=False),
    "gte": _compare("gte", lambda a, b: a >= b, lower=True, inclusive=True),
    "lt": _compare("lt", lambda a, b: a < b, lower=False, inclusive=False),
    "lte": _compare("lte", lambda a, b: a <= b, lower=False, inclusive=True),
    "contains": _CONTAINS,
    "like": _LIKE,
    "ilike": _LIKE,
    "starts_with": Operator(
        "starts_with", _text, _text, _comparison(_starts_with), _kernel("starts_with"), _starts_with_range
    ),
    "match": Operator("match", _pattern, _pattern, _matches(True), _kernel("match")),
    "imatch": Operator("imatch", _pattern, _pattern, _matches(False), _kernel("imatch")),
    "in": Operator("in", _in_list, _in_json, _comparison(_in), _kernel("is_in"), _in_range, pins=True),
    "is": Operator("is", _is_text, _is_json, _is, _kernel("is_"), _is_range, two_valued=True, pins=True),
}


def valid_operators(field: Field | None = None) -> list[str]:
    """Operator names (aliases included) usable on ``field``, or on some field when None."""
    return [name for name, op in REGISTRY.items() if field is None or _applies(op, field)]


def _applies(op: Operator, field: Field) -> bool:
    allowed = field.operators is None or op.name in field.operators
    return allowed and field.kind in op.kinds


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
        kind = "the metadata field" if field.metadata else f"the {field.kind} field"
        usable = valid_operators(field)
        raise InvalidQuery(
            f"Operator '{op_name}' does not apply to {kind} '{field.name}'. Use one of: {', '.join(usable)}.",
            {**details, "valid_operators": usable},
        )
    return op


def make_filter(field: Field, op_name: str, text: str, negated: bool = False, ref: Any = None) -> Filter:
    """The typed filter ``{field}=[not.]{op_name}.{text}``, or ``InvalidQuery`` saying what is wrong."""
    from .ast import Ref

    op = operator_for(field, op_name)
    if text == "":
        raise InvalidQuery(
            f"The filter on '{field.name}' has no value after '{op_name}.'.",
            {"column": field.name, "operator": op_name, "value": ""},
        )
    target = ref if ref is not None else Ref(field.name, field.path, field.as_text)
    return Filter(target, op.name, op.parse(field, op_name, text), negated)


def make_json_filter(
    field: Field, op_name: str, operand: Any, negated: bool = False, ref: Any = None
) -> Filter:
    """The typed filter of a ``where`` body entry ``{"<op>": <JSON operand>}``."""
    from .ast import Ref

    op = operator_for(field, op_name)
    target = ref if ref is not None else Ref(field.name, field.path, field.as_text)
    return Filter(target, op.name, op.from_json(field, op_name, operand), negated)


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
            item, position = quoted_at(body, position)
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


def quoted_at(text: str, start: int) -> tuple[str, int]:
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
    name, end = quoted_at(text, 0)
    return name, text[end:]
