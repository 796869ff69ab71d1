"""The ``where`` object of bulk writes → the same typed conditions a query string produces.

``{"status": "active"}`` is equality, ``{"notes": null}`` is ``is.null``, and an object of
operators applies each (AND): ``{"amount": {"gte": 100, "lt": 500}}``, ``{"tag": {"in":
["a", "b"]}}``, ``{"vip": {"is": true}}``, ``{"status": {"not": {"in": ["lost"]}}}``.
``{"or": [{...}, {...}]}`` and ``{"and": [...]}`` group conditions (nestable; ``{"not":
{"or": [...]}}`` negates a group). A key may be a JSON path (``"meta->plan"``). Operands are
JSON values typed by the field, checked by the operator registry, so bulk writes match
exactly the rows the same filter matches in ``GET .../rows``. Raw expressions are never
accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidBody, InvalidQuery
from ..records import Column
from . import operators
from .ast import Condition, Group
from .fields import Field, fields, resolve
from .grammar import MAX_CONDITIONS, MAX_GROUP_DEPTH, parse_ref

_GROUPS = ("or", "and")


def parse_where(
    raw: Any, columns: tuple[Column, ...] | list[Column], *, required: bool
) -> tuple[Condition, ...]:
    if raw is None and not required:
        return ()
    if not isinstance(raw, dict) or (required and not raw):
        need = "a non-empty object" if required else "an object"
        raise InvalidBody(
            f'"where" must be {need} mapping columns to values or operators.', {"field": "where"}
        )
    known = fields(columns)
    try:
        conditions = _object(raw, known, depth=1)
    except InvalidQuery as exc:  # the registry speaks of query strings; this is a body
        raise InvalidBody(exc.message.replace("filter", "where condition"), exc.details) from exc
    if sum(_size(condition) for condition in conditions) > MAX_CONDITIONS:
        raise InvalidBody(f"A where holds at most {MAX_CONDITIONS} conditions.", {"field": "where"})
    return tuple(conditions)


def _size(condition: Condition) -> int:
    return sum(_size(item) for item in condition.items) if isinstance(condition, Group) else 1


def _object(raw: dict[str, Any], known: Mapping[str, Field], depth: int) -> list[Condition]:
    found: list[Condition] = []
    for name, condition in raw.items():
        if name in _GROUPS and name not in known:
            found.append(_group(name, condition, known, depth, negated=False))
        elif (
            name == "not"
            and name not in known
            and isinstance(condition, dict)
            and condition.keys() <= {*_GROUPS}
        ):
            for kind, items in condition.items():
                found.append(_group(kind, items, known, depth, negated=True))
        else:
            ref = parse_ref(name, known, "where")
            found.extend(_conditions(resolve(ref, known), ref, condition))
    return found


def _group(kind: str, items: Any, known: Mapping[str, Field], depth: int, *, negated: bool) -> Group:
    if depth > MAX_GROUP_DEPTH:
        raise InvalidBody(f"where groups nest at most {MAX_GROUP_DEPTH} deep.", {"field": "where"})
    if not isinstance(items, list) or not items or not all(isinstance(item, dict) and item for item in items):
        raise InvalidBody(
            f'"{kind}" in where takes a non-empty array of non-empty condition objects.', {"field": kind}
        )
    parts: list[Condition] = []
    for item in items:
        inner = _object(item, known, depth + 1)
        parts.append(inner[0] if len(inner) == 1 else Group("and", tuple(inner)))
    return Group(kind, tuple(parts), negated)


def _conditions(field: Field, ref: Any, condition: Any, negated: bool = False) -> list[Condition]:
    if not _is_operator_object(condition):
        op = "is" if condition is None else "eq"
        return [operators.make_json_filter(field, op, condition, negated, ref)]
    found: list[Condition] = []
    for op, operand in condition.items():
        if op == "not":
            if not _is_operator_object(operand):
                operand = {"eq": operand} if operand is not None else {"is": None}
            found.extend(_conditions(field, ref, operand, not negated))
        else:
            found.append(operators.make_json_filter(field, op, operand, negated, ref))
    return found


def _is_operator_object(condition: Any) -> bool:
    return (
        isinstance(condition, dict)
        and bool(condition)
        and all(key == "not" or key in operators.REGISTRY for key in condition)
    )
