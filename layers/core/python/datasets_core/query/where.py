"""The ``where`` object of bulk writes → the same typed filters a query string produces.

``{"status": "active"}`` is equality, ``{"notes": null}`` is ``is.null``, and an object of
operators applies each (AND): ``{"amount": {"gte": 100, "lt": 500}}``, ``{"tag": {"in":
["a", "b"]}}``, ``{"vip": {"is": true}}``, ``{"status": {"not": {"in": ["lost"]}}}``.
Operands are JSON values typed by the column; the operators are the registry's, so bulk
writes match exactly the rows the same filter matches in ``GET .../rows``. Raw expressions
are never accepted.
"""

from __future__ import annotations

from typing import Any

from .. import suggest, values
from ..errors import InvalidBody, InvalidQuery
from . import operators
from .ast import Filter


def parse_where(raw: Any, columns: list[dict[str, Any]], *, required: bool) -> tuple[Filter, ...]:
    if raw is None and not required:
        return ()
    if not isinstance(raw, dict) or (required and not raw):
        need = "a non-empty object" if required else "an object"
        raise InvalidBody(
            f'"where" must be {need} mapping columns to values or operators.', {"field": "where"}
        )
    known = operators.fields(columns)
    filters: list[Filter] = []
    for name, condition in raw.items():
        field = known.get(name)
        if field is None:
            raise InvalidBody(*suggest.unknown_column(name, operators.user_names(known), " in where"))
        filters.extend(_conditions(field, condition))
    return tuple(filters)


def _conditions(field: operators.Field, condition: Any, negated: bool = False) -> list[Filter]:
    if not _is_operator_object(condition):
        op = "is" if condition is None else "eq"
        return [_filter(field, op, condition, negated)]
    found: list[Filter] = []
    for op, operand in condition.items():
        if op == "not":
            if not _is_operator_object(operand):
                operand = {"eq": operand} if operand is not None else {"is": None}
            found.extend(_conditions(field, operand, not negated))
        else:
            found.append(_filter(field, op, operand, negated))
    return found


def _is_operator_object(condition: Any) -> bool:
    return (
        isinstance(condition, dict)
        and bool(condition)
        and all(key == "not" or key in operators.REGISTRY for key in condition)
    )


def _filter(field: operators.Field, op_name: str, operand: Any, negated: bool) -> Filter:
    """A typed filter from a JSON operand, checked by the registry like a query-string one."""
    try:
        op = operators.operator_for(field, op_name)
    except InvalidQuery as exc:
        raise InvalidBody(exc.message.replace("filter", "where condition"), exc.details) from exc
    try:
        value = _typed(field, op.name, operand)
    except values.ValueProblem as exc:
        raise InvalidBody(
            f"Invalid value for column '{field.name}' in where ({op_name}): {exc}.",
            {"column": field.name, "operator": op_name},
        ) from exc
    return Filter(field.name, op.name, value, negated)


def _typed(field: operators.Field, op: str, operand: Any) -> Any:
    if op == "is":
        if operand is not None and not (isinstance(operand, bool) and str(field.type) == "boolean"):
            raise values.ValueProblem("'is' takes null, or true/false on a boolean column")
        return operand
    if op in ("contains", "starts_with"):
        if not isinstance(operand, str) or not operand:
            raise values.ValueProblem(f"'{op}' takes non-empty text")
        return operand
    if op == "in":
        if not isinstance(operand, list) or not operand or len(operand) > operators.MAX_IN_ITEMS:
            raise values.ValueProblem(
                f"'in' takes a non-empty array of at most {operators.MAX_IN_ITEMS} values"
            )
        return tuple(_single(field, item) for item in operand)
    return _single(field, operand)


def _single(field: operators.Field, operand: Any) -> Any:
    if operand is None:
        raise values.ValueProblem("null only matches with 'is' (or a bare null)")
    if field.name == "id":
        return operators.parse_value(field, operand) if isinstance(operand, str) else _not_id(operand)
    return values.normalize(operand, field.type)


def _not_id(operand: Any) -> Any:
    raise values.ValueProblem("a row id is a UUID string")
