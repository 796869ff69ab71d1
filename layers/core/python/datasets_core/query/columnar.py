"""Columnar evaluation of the query language with pyarrow: the replica's side of every operator.

``ColumnData`` is one field of a replica table with the views operators need (values, the
casefolded text, the text ``contains``/``match``/``search`` read, an equality form, an order
form); each operator's columnar form (named in ``operators.REGISTRY``) is a kernel here.
Results are Arrow booleans with SQL's three values (null = UNKNOWN), combined with pyarrow's
Kleene logic, so ``not.`` and groups behave exactly as in ``query.evaluate``.

Exactness: numbers are ``int64`` or ``decimal128`` arrays and operands are compared exactly
(an operand with more decimals than the column compares through floor/ceiling at the column's
scale); a column whose numbers fit no decimal128 (more than 38 digits from its largest to its
smallest, e.g. 1e120 beside 1e-10), JSON path values, and JSON equality are evaluated row by
row with the in-memory predicate instead. Text order is casefolded text then exact text,
as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal, localcontext
from functools import cached_property
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .. import jsonutil, values
from ..columns import ColumnType
from .fields import JSON_VALUE, Field, Kind
from .operators import REGISTRY, _number_key, compiled_pattern, equality_key, order_key, text_of

_FRACTION_ZEROS = r"\.?0+$"
_INT64 = (-(2**63), 2**63 - 1)
# Arithmetic on operands never rounds: DynamoDB numbers span 1e-130..1e126 with 38 digits.
_EXACT = Context(prec=400, Emin=-999_999, Emax=999_999)


class ColumnData:
    """One field over a replica table's rows, with lazily computed (and cached) views."""

    def __init__(self, field: Field, array: pa.Array | None, objects: Callable[[], list[Any]]) -> None:
        self.field = field
        self.kind: Kind = field.kind
        self._array = array
        self._objects = objects

    # --- representations -------------------------------------------------------------------
    @property
    def native(self) -> bool:
        """Whether kernels can work on Arrow arrays (else row by row on Python values)."""
        if self._array is None or self.kind == JSON_VALUE:
            return False
        return not (self.kind is ColumnType.NUMBER and pa.types.is_string(self._array.type))

    @property
    def array(self) -> pa.Array:
        assert self._array is not None
        return self._array

    @cached_property
    def objects(self) -> list[Any]:
        """API-form Python values (None for null)."""
        return self._objects()

    @cached_property
    def null_mask(self) -> pa.Array:
        if self._array is not None and self.kind != JSON_VALUE:
            return pc.is_null(self._array)
        return pa.array([value is None for value in self.objects], pa.bool_())

    @cached_property
    def fold(self) -> pa.Array:
        """Casefolded strings (Python's casefold: ``ß`` → ``ss``); ASCII rows fold in Arrow."""
        return casefold(self.array)

    @cached_property
    def text(self) -> pa.Array:
        """``operators.text_of`` of every value: what contains, match and search look at."""
        if not self.native:
            return pa.array(
                [None if value is None else text_of(value, self.kind) for value in self.objects],
                pa.large_string(),
            )
        array, kind = self.array, self.kind
        if kind is ColumnType.STRING or kind is ColumnType.JSON:
            return array
        if kind is ColumnType.BOOLEAN:
            return pc.if_else(array, "true", "false")
        if kind is ColumnType.DATE:
            return array.cast(pa.string())
        if kind is ColumnType.DATETIME:
            if pa.types.is_string(array.type):
                return array
            text = pc.strftime(array, format="%Y-%m-%dT%H:%M:%S")  # %S carries 6 fraction digits
            text = pc.replace_substring_regex(text, pattern=_FRACTION_ZEROS, replacement="")
            return pc.binary_join_element_wise(text, pa.scalar("Z"), "")
        if pa.types.is_integer(array.type):
            return array.cast(pa.string())
        text = array.cast(pa.string())  # decimal128 prints its scale's zeros: 1.50 → 1.5, 2.00 → 2
        return pc.replace_substring_regex(text, pattern=r"\.0*$|(\.\d*?)0+$", replacement=r"\1")

    @cached_property
    def fold_text(self) -> pa.Array:
        return self.fold if self.kind is ColumnType.STRING and self.native else casefold(self.text)

    @cached_property
    def comparable(self) -> pa.Array:
        """The array equality and ranges compare (datetimes as instants, JSON by structure)."""
        array = self.array
        if self.kind is ColumnType.DATETIME and pa.types.is_string(array.type):
            return array.cast(pa.timestamp("us", tz="UTC"))
        if self.kind is ColumnType.JSON:
            return pa.array(
                [None if value is None else canonical_json(value) for value in self.objects],
                pa.large_string(),
            )
        return array

    def sort_arrays(self) -> list[pa.Array]:
        """Arrays whose lexicographic order is the field's order (nulls left as nulls)."""
        if self.kind is ColumnType.STRING:
            return [self.fold, self.array]
        if self.kind is ColumnType.JSON:
            return [self.array]
        return [self.comparable]

    # --- operands ------------------------------------------------------------------------------
    def scalar(self, operand: Any) -> pa.Scalar:
        """``operand`` as a scalar comparable with ``comparable`` (non-number kinds)."""
        kind = self.kind
        if kind is ColumnType.DATETIME:
            return pa.scalar(values.parse_datetime(operand), pa.timestamp("us", tz="UTC"))
        if kind is ColumnType.DATE:
            return pa.scalar(operand).cast(pa.date32())
        if kind is ColumnType.JSON:
            return pa.scalar(canonical_json(operand), pa.large_string())
        if kind is ColumnType.BOOLEAN:
            return pa.scalar(bool(operand))
        return pa.scalar(operand, self.array.type)


def casefold(array: pa.Array) -> pa.Array:
    """Python's ``str.casefold`` over a string array (nulls kept)."""
    lower = pc.ascii_lower(array)
    if pc.all(pc.fill_null(pc.string_is_ascii(array), True)).as_py() is not False:
        return lower
    wide = pc.invert(pc.fill_null(pc.string_is_ascii(array), True))
    folded = [text.casefold() for text in pc.filter(array, wide).to_pylist()]
    return pc.replace_with_mask(lower, wide, pa.array(folded, lower.type))


def canonical_json(value: Any) -> str:
    """JSON equality as text: object keys sorted, numbers exact, ``true`` never ``1``."""
    return jsonutil.dumps(_sorted_keys(value))


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return values.from_store(_number_key(value), ColumnType.NUMBER)  # 1, 1.0 and 1E0 are one number
    return value


# --- conditions ---------------------------------------------------------------------------------
def condition_mask(condition: Any, column_of: Callable[[Any], ColumnData], rows: int) -> pa.Array:
    """The three-valued truth of a condition (``Filter`` or ``Group``) over every row."""
    from .ast import Group

    if isinstance(condition, Group):
        combine = pc.or_kleene if condition.kind == "or" else pc.and_kleene
        result = None
        for item in condition.items:
            mask = condition_mask(item, column_of, rows)
            result = mask if result is None else combine(result, mask)
        assert result is not None
        return pc.invert(result) if condition.negated else result
    data = column_of(condition.ref)
    op = REGISTRY[condition.op]
    if data.native:
        result = op.columnar(data, condition.value, data.kind)
        if not op.two_valued:  # a comparison with a null is UNKNOWN, whatever the kernel says
            result = pc.if_else(data.null_mask, pa.scalar(None, pa.bool_()), result)
    else:
        result = pa.array([op.truth(value, condition.value, data.kind) for value in data.objects], pa.bool_())
    return pc.invert(result) if condition.negated else result


# --- kernels (named by operators.REGISTRY) -----------------------------------------------------------
def equal(data: ColumnData, operand: Any, kind: Kind) -> pa.Array:
    if kind is ColumnType.NUMBER:
        return _number_compare(data, operand, "equal")
    return pc.equal(data.comparable, data.scalar(operand))


def not_equal(data: ColumnData, operand: Any, kind: Kind) -> pa.Array:
    return pc.invert(equal(data, operand, kind))


def _compare(name: str) -> Callable[[ColumnData, Any, Kind], pa.Array]:
    def kernel(data: ColumnData, operand: Any, kind: Kind) -> pa.Array:
        if kind is ColumnType.NUMBER:
            return _number_compare(data, operand, name)
        if kind is ColumnType.STRING:
            fold, exact = operand.casefold(), operand
            strict = "greater" if name.startswith("greater") else "less"
            tie = getattr(pc, name)(data.array, pa.scalar(exact, data.array.type))
            return pc.or_kleene(
                getattr(pc, strict)(data.fold, pa.scalar(fold, data.fold.type)),
                pc.and_kleene(pc.equal(data.fold, pa.scalar(fold, data.fold.type)), tie),
            )
        return getattr(pc, name)(data.comparable, data.scalar(operand))

    return kernel


compare_gt = _compare("greater")
compare_gte = _compare("greater_equal")
compare_lt = _compare("less")
compare_lte = _compare("less_equal")


def _number_compare(data: ColumnData, operand: Any, name: str) -> pa.Array:
    """Exact comparison of a number column with a number operand."""
    with localcontext(_EXACT):
        return _number_compare_exactly(data, operand, name)


def _number_compare_exactly(data: ColumnData, operand: Any, name: str) -> pa.Array:
    array = data.array
    number = operand if isinstance(operand, Decimal) else Decimal(operand)
    scale = 0 if pa.types.is_integer(array.type) else array.type.scale
    exact = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_FLOOR)
    if exact == number and _fits(number, array.type):
        return getattr(pc, name)(array, _number_scalar(number, array.type))
    # The operand is between two representable values (more decimals than the column holds).
    if name == "equal":
        return pc.if_else(pc.is_null(array), pa.scalar(None, pa.bool_()), False)
    floor = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_FLOOR)
    ceiling = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_CEILING)
    bound, op = {
        "greater": (floor, "greater"),
        "greater_equal": (ceiling, "greater_equal"),
        "less": (ceiling, "less"),
        "less_equal": (floor, "less_equal"),
    }[name]
    if not _fits(bound, array.type):
        beyond_top = bound > 0
        answer = beyond_top if name.startswith("less") else not beyond_top
        return pc.if_else(pc.is_null(array), pa.scalar(None, pa.bool_()), answer)
    return getattr(pc, op)(array, _number_scalar(bound, array.type))


def _fits(number: Decimal, arrow_type: pa.DataType) -> bool:
    if pa.types.is_integer(arrow_type):
        return number == number.to_integral_value() and _INT64[0] <= int(number) <= _INT64[1]
    sign, digits, exponent = number.normalize().as_tuple() if number else (0, (0,), 0)
    assert isinstance(exponent, int)
    integer_digits = max(len(digits) + exponent, 0)
    return integer_digits <= arrow_type.precision - arrow_type.scale and -exponent <= arrow_type.scale


def _number_scalar(number: Decimal, arrow_type: pa.DataType) -> pa.Scalar:
    if pa.types.is_integer(arrow_type):
        return pa.scalar(int(number), arrow_type)
    return pa.scalar(number, arrow_type)


def contains(data: ColumnData, operand: str, kind: Kind) -> pa.Array:
    return pc.match_substring(data.fold_text, operand.casefold())


def starts_with(data: ColumnData, operand: str, kind: Kind) -> pa.Array:
    return pc.starts_with(data.fold_text, operand.casefold())


def match(data: ColumnData, pattern: str, kind: Kind) -> pa.Array:
    compiled_pattern(pattern, True)  # refused earlier if invalid; RE2 here as in Arrow
    return pc.match_substring_regex(data.text, pattern)


def imatch(data: ColumnData, pattern: str, kind: Kind) -> pa.Array:
    return pc.match_substring_regex(data.text, pattern, ignore_case=True)


def is_in(data: ColumnData, items: tuple[Any, ...], kind: Kind) -> pa.Array:
    result = None
    for item in items:
        mask = equal(data, item, kind)
        result = mask if result is None else pc.or_kleene(result, mask)
    assert result is not None
    return result


def is_(data: ColumnData, operand: bool | None, kind: Kind) -> pa.Array:
    if operand is None:
        return data.null_mask
    return pc.fill_null(pc.equal(data.array, pa.scalar(operand)), False)


# --- search, order ------------------------------------------------------------------------------
def search_mask(needle: str, columns: Sequence[ColumnData], rows: int) -> pa.Array:
    """Rows where some column's casefolded text contains the casefolded needle."""
    folded = needle.casefold()
    result = pa.array([False] * rows, pa.bool_()) if not columns else None
    for data in columns:
        mask = pc.fill_null(pc.match_substring(data.fold_text, folded), False)
        result = mask if result is None else pc.or_(result, mask)
    assert result is not None
    return result


def python_order_keys(data: ColumnData) -> list[Any]:
    """Order keys of a field evaluated in Python (fallback columns, JSON paths)."""
    return [None if value is None else order_key(value, data.kind) for value in data.objects]


def python_equality_keys(data: ColumnData) -> list[Any]:
    return [None if value is None else equality_key(value, data.kind) for value in data.objects]
