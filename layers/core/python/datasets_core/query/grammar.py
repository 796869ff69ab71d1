"""The rows query string (SPEC §5, §5b) parsed once into a typed ``RowsQuery``.

``params`` is API Gateway's multi-value query string, already URL-decoded; a ``+`` is a
plus sign, never a space. Reserved parameters (each at most once, except ``or``/``and``):
``select``, ``order``, ``limit``, ``offset``, ``search``, ``distinct``, ``count``,
``cursor``, ``as_of``, ``or``, ``and``, ``not.or``, ``not.and``. Every other parameter is a
filter ``{field}=[not.]{op}.{value}`` and may repeat (filters AND together). A column named
like a reserved parameter is filtered with its name double-quoted: ``"order"=eq.x``
(``%22order%22=eq.x`` in a URL).

Fields are column names or metadata fields, optionally followed by a JSON path
(``meta->plan``, ``meta->tags->0``, ``meta->>plan``). Commas separate items of ``select``
and ``order`` except inside double quotes and parentheses; a double-quoted name (escapes
``\\"`` and ``\\\\``) may name any column. Unquoted names are matched exactly, then with
surrounding spaces removed; where a name is followed by ``.`` (``order``, group items), the
longest known name wins, so names containing dots work (``v1.2.desc``).

Logical groups follow PostgREST: ``or=(status.eq.active,and(amount.gt.100,vip.is.true))``;
an item is ``field.[not.]op.value``, ``and(...)``, ``or(...)``, ``not.and(...)`` or
``not.or(...)``; a value holding ``,`` ``.`` ``:`` ``(`` ``)`` is double-quoted, with ``\\"``
and ``\\\\`` escapes. Every problem is ``InvalidQuery`` whose details name the parameter,
column or value at fault.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping

from ..columns import ColumnType
from ..errors import InvalidQuery
from ..records import Column
from .ast import AGGREGATES, Aggregate, Condition, Filter, Group, OrderTerm, Ref, RowsQuery, Selected
from .fields import Field, field_of, fields, resolve, unknown_column
from .operators import make_filter, quoted_at, unquote
from .paging import parse_page, single

RESERVED_PARAMS = frozenset(
    {"select", "order", "limit", "offset", "search", "distinct", "count", "cursor", "as_of"}
)
GROUP_PARAMS = {"or": ("or", False), "and": ("and", False), "not.or": ("or", True), "not.and": ("and", True)}
_DIRECTIONS = {"asc": False, "desc": True}
_NULLS = {"nullsfirst": True, "nullslast": False}
_COUNTS = {"exact": True, "none": False}
_NESTED = (
    ("not.and(", ("and", True)),
    ("not.or(", ("or", True)),
    ("and(", ("and", False)),
    ("or(", ("or", False)),
)
MAX_GROUP_DEPTH = 10
MAX_CONDITIONS = 100


def parse_rows_query(params: dict[str, list[str]], columns: Iterable[Column]) -> RowsQuery:
    """The typed query of a rows request, or ``InvalidQuery``."""
    refuse_stray_characters(params)
    known = fields(columns)
    conditions: list[Condition] = []
    for name, texts in params.items():
        if name in RESERVED_PARAMS:
            continue
        for text in texts:
            if name in GROUP_PARAMS:
                kind, negated = GROUP_PARAMS[name]
                conditions.append(parse_group(kind, negated, text, known, name))
            else:
                conditions.append(parse_filter(name, text, known))
    if sum(_size(condition) for condition in conditions) > MAX_CONDITIONS:
        raise InvalidQuery(f"A query holds at most {MAX_CONDITIONS} conditions.", {"limit": MAX_CONDITIONS})
    select, aggregates = parse_select(single(params, "select"), known)
    query = RowsQuery(
        select=select,
        aggregates=aggregates,
        filters=tuple(conditions),
        search=_parse_search(single(params, "search")),
        order=parse_order(single(params, "order"), known, aggregates=aggregates),
        page=parse_page(single(params, "limit"), single(params, "offset")),
        distinct=_parse_distinct(single(params, "distinct"), known),
        count=_parse_count(single(params, "count")),
        cursor=single(params, "cursor"),  # opaque here; the cursor codec validates it
        as_of=_parse_as_of(single(params, "as_of")),
    )
    _check_aggregation(query)
    return query


# Parameters whose values are names, numbers or keywords: a control character (a newline or tab
# pasted along, ``limit=5%0A``) is never part of one, so it is refused rather than ignored.
_NAME_PARAMS = ("select", "order", "distinct", "limit", "offset", "count", "cursor", "as_of")


def refuse_stray_characters(params: Mapping[str, list[str]]) -> None:
    """``InvalidQuery`` naming the first reserved parameter whose value holds a control character."""
    for name in _NAME_PARAMS:
        for text in params.get(name) or ():
            if any(unicodedata.category(ch) == "Cc" for ch in text):
                raise InvalidQuery(
                    f"'{name}' holds a control character (a newline or tab?): {text!r}.",
                    {"parameter": name, "value": text},
                )


def _size(condition: Condition) -> int:
    return sum(_size(item) for item in condition.items) if isinstance(condition, Group) else 1


# --- fields and JSON paths ----------------------------------------------------------------------
def parse_ref(text: str, known: Mapping[str, Field], parameter: str) -> Ref:
    """A field reference written ``name`` / ``"quoted name"`` with an optional JSON path."""
    if text.startswith('"'):
        name, rest = _unquote(text, parameter)
        if rest and not rest.startswith("->"):
            raise InvalidQuery(
                f"Unexpected text '{rest}' after a quoted column name in '{parameter}'.",
                {"parameter": parameter, "value": text},
            )
        return _with_path(name, rest, parameter, known)
    if text in known or "->" not in text:
        return Ref(text)
    # The column is the longest known name followed by an arrow (names may hold "->" too).
    for name in sorted((n for n in known if text.startswith(n + "->")), key=len, reverse=True):
        return _with_path(name, text[len(name) :], parameter, known)
    name, _, _ = text.partition("->")
    return _with_path(name, text[len(name) :], parameter, known)


def _with_path(name: str, rest: str, parameter: str, known: Mapping[str, Field]) -> Ref:
    keys: list[str] = []
    as_text = False
    position = 0
    while position < len(rest):
        if as_text:
            raise InvalidQuery(
                "'->>' must be the last step of a JSON path.", {"parameter": parameter, "column": name}
            )
        if rest.startswith("->>", position):
            as_text, position = True, position + 3
        elif rest.startswith("->", position):
            position += 2
        else:
            raise InvalidQuery(f"Invalid JSON path '{rest}'.", {"parameter": parameter, "column": name})
        if rest.startswith('"', position):
            key, position = _quoted(rest, position, parameter)
        else:
            end = rest.find("->", position)
            end = len(rest) if end < 0 else end
            key, position = rest[position:end], end
        if key == "":
            raise InvalidQuery(
                f"A JSON path step after '{name}' is empty.", {"parameter": parameter, "column": name}
            )
        keys.append(key)
    ref = Ref(name, tuple(keys), as_text)
    resolve(ref, known)  # unknown column, or a path into a column that is not json
    return ref


# --- filters ------------------------------------------------------------------------------------
def parse_filter(name: str, text: str, known: Mapping[str, Field]) -> Filter:
    """One filter ``{field}=[not.]{op}.{value}``."""
    ref = parse_ref(name, known, name)
    field = resolve(ref, known)
    rest, negated = (text[4:], True) if text.startswith("not.") else (text, False)
    op, _, value = rest.partition(".")
    label = str(ref)
    if op == "not":
        problem = "may appear only once" if negated else "must be followed by an operator"
        raise InvalidQuery(
            f"'not.' {problem} in the filter on '{label}'.",
            {"parameter": name, "column": label, "value": text},
        )
    if op == "":
        raise InvalidQuery(
            f"The filter on '{label}' needs an operator: write {label}={{op}}.{{value}}, e.g. eq.42.",
            {"parameter": name, "column": label, "value": text},
        )
    return make_filter(field, op, value, negated, ref)


# --- logical groups -----------------------------------------------------------------------------
def parse_group(kind: str, negated: bool, text: str, known: Mapping[str, Field], parameter: str) -> Group:
    """``or=(...)`` / ``and=(...)`` (and their ``not.`` forms) as a condition tree."""
    parser = _GroupParser(text, known, parameter)
    group = parser.group(kind, negated, depth=1)
    if parser.position != len(text):
        raise parser.error(f"unexpected text '{text[parser.position :]}' after the closing parenthesis")
    return group


class _GroupParser:
    def __init__(self, text: str, known: Mapping[str, Field], parameter: str) -> None:
        self.text = text
        self.known = known
        self.parameter = parameter
        self.position = 0

    def error(self, problem: str) -> InvalidQuery:
        return InvalidQuery(
            f"Invalid '{self.parameter}' group: {problem}. Write e.g. "
            f"{self.parameter}=(status.eq.active,amount.gt.100).",
            {"parameter": self.parameter, "value": self.text, "position": self.position},
        )

    def group(self, kind: str, negated: bool, depth: int) -> Group:
        if depth > MAX_GROUP_DEPTH:
            raise self.error(f"groups nest at most {MAX_GROUP_DEPTH} deep")
        if not self.text.startswith("(", self.position):
            raise self.error("a group is written in parentheses")
        self.position += 1
        items: list[Condition] = []
        while True:
            if self.text.startswith(")", self.position):
                raise self.error("a group needs at least one condition" if not items else "an item is empty")
            items.append(self.item(depth))
            if self.position >= len(self.text):
                raise self.error("a parenthesis is not closed")
            if self.text[self.position] == ")":
                self.position += 1
                return Group(kind, tuple(items), negated)
            if self.text[self.position] != ",":
                raise self.error(f"expected ',' or ')' at '{self.text[self.position :]}'")
            self.position += 1

    def item(self, depth: int) -> Condition:
        rest = self.text[self.position :]
        for prefix, (kind, negated) in _NESTED:
            if rest.startswith(prefix):
                self.position += len(prefix) - 1
                return self.group(kind, negated, depth + 1)
        ref = self.field()
        if not self.text.startswith(".", self.position):
            raise self.error(f"'{ref}' must be followed by .operator.value")
        self.position += 1
        negated = False
        if self.text.startswith("not.", self.position):
            negated, self.position = True, self.position + 4
        end = self.text.find(".", self.position)
        if end < 0:
            raise self.error(f"the condition on '{ref}' needs .operator.value")
        op = self.text[self.position : end]
        self.position = end + 1
        value = self.value()
        try:
            return make_filter(resolve(ref, self.known), op, value, negated, ref)
        except InvalidQuery as exc:
            raise InvalidQuery(
                f"In '{self.parameter}': {exc.message}", {**exc.details, "parameter": self.parameter}
            ) from exc

    def field(self) -> Ref:
        rest = self.text[self.position :]
        if rest.startswith('"'):
            name, after = _quoted(self.text, self.position, self.parameter)
            self.position = after
            path_end = self._path_end(self.position)
            ref = _with_path(name, self.text[self.position : path_end], self.parameter, self.known)
            self.position = path_end
            return ref
        # The longest known name followed by '.' or a JSON path arrow.
        for name in sorted((n for n in self.known if rest.startswith(n)), key=len, reverse=True):
            follow = rest[len(name) : len(name) + 2]
            if follow.startswith(".") or follow == "->":
                self.position += len(name)
                path_end = self._path_end(self.position)
                ref = _with_path(name, self.text[self.position : path_end], self.parameter, self.known)
                self.position = path_end
                return ref
        raise unknown_column(rest.split(".", 1)[0].split("->", 1)[0], self.known)

    def _path_end(self, position: int) -> int:
        return position + path_length(self.text[position:], ".,()")

    def value(self) -> str:
        """A value: double-quoted, an ``in`` list in parentheses, or text up to ',' / ')'."""
        if self.text.startswith('"', self.position):
            value, self.position = _quoted(self.text, self.position, self.parameter)
            return value
        if self.text.startswith("(", self.position):
            start, depth = self.position, 0
            while self.position < len(self.text):
                ch = self.text[self.position]
                if ch == '"':
                    _, self.position = _quoted(self.text, self.position, self.parameter)
                    continue
                depth += {"(": 1, ")": -1}.get(ch, 0)
                self.position += 1
                if depth == 0:
                    return self.text[start : self.position]
            raise self.error("a list is not closed")
        start = self.position
        while self.position < len(self.text) and self.text[self.position] not in ",()":
            self.position += 1
        return self.text[start : self.position]


# --- select and aggregates ----------------------------------------------------------------------
def parse_select(
    text: str | None, known: Mapping[str, Field]
) -> tuple[tuple[Selected, ...] | None, tuple[Aggregate, ...]]:
    """Selected items in the caller's order (``id`` first unless placed or aggregating) and the
    aggregates; ``(None, ())`` selects every column."""
    if text is None or text.strip(" ") == "*":
        return None, ()
    selected: list[Selected] = []
    aggregates: list[Aggregate] = []
    for item in split_items(text, "select"):
        found = _select_item(item, known)
        if isinstance(found, Aggregate):
            aggregates.append(found)
        elif all(found.key != seen.key for seen in selected):
            selected.append(found)
    if aggregates:
        unnamed = [aggregate.key for aggregate in aggregates if aggregate.alias is None]
        taken = [aggregate.key for aggregate in aggregates] + [item.key for item in selected]
        twice = sorted({key for key in unnamed if taken.count(key) > 1})
        if twice:
            raise InvalidQuery(
                f"Two results of select are named '{twice[0]}': name them, e.g. select=total:amount.sum().",
                {"parameter": "select", "name": twice[0]},
            )
        return tuple(selected), tuple(aggregates)
    if all(item.key != "id" for item in selected):
        selected.insert(0, Selected(Ref("id")))
    return tuple(selected), ()


def _select_item(item: str, known: Mapping[str, Field]) -> Selected | Aggregate:
    stripped = item.strip(" ")
    if stripped == "":
        raise InvalidQuery("'select' has an empty item.", {"parameter": "select"})
    if item in known:
        return Selected(Ref(item))
    alias = None
    body = stripped
    if not stripped.startswith('"') and stripped not in known:
        head, colon, tail = stripped.partition(":")
        if (
            colon
            and head
            and head not in known
            and (tail.strip(" ") in known or "(" in tail or "->" in tail or '"' in tail)
        ):
            alias, body = head.strip(" "), tail.strip(" ")
    if body == "count()":
        return Aggregate("count", None, alias=alias)
    for function in AGGREGATES:
        for distinct, suffix in ((True, f".{function}(distinct)"), (False, f".{function}()")):
            if body.endswith(suffix):
                ref = parse_ref(body[: -len(suffix)].strip(" "), known, "select")
                field = resolve(ref, known)
                _check_aggregate(function, field, distinct)
                return Aggregate(function, ref, distinct, alias)
    if body.endswith(")") and "(" in body:
        raise InvalidQuery(
            f"Unknown aggregate in '{body}': use count(), col.count(), col.count(distinct), col.sum(), "
            "col.avg(), col.min() or col.max().",
            {"parameter": "select", "value": body},
        )
    ref = parse_ref(body, known, "select")
    resolve(ref, known)
    return Selected(ref, alias)


def _check_aggregate(function: str, field: Field, distinct: bool) -> None:
    numeric = field.kind is ColumnType.NUMBER
    if function in ("sum", "avg") and not numeric:
        raise InvalidQuery(
            f"{function}() applies to number columns; '{field.name}' is {field.kind}.",
            {"parameter": "select", "column": field.name, "function": function},
        )
    if function in ("min", "max") and field.kind is ColumnType.JSON:
        raise InvalidQuery(
            f"{function}() needs an ordered column; json columns have no order.",
            {"parameter": "select", "column": field.name, "function": function},
        )
    if distinct and function != "count":
        raise InvalidQuery(
            "Only count takes 'distinct' (col.count(distinct)).",
            {"parameter": "select", "column": field.name, "function": function},
        )


def _check_aggregation(query: RowsQuery) -> None:
    if not query.aggregates:
        return
    if query.distinct is not None:
        raise InvalidQuery("'distinct' cannot be combined with aggregates.", {"parameter": "distinct"})
    if query.cursor is not None:
        raise InvalidQuery("Aggregated answers page with limit/offset, not cursor.", {"parameter": "cursor"})
    keys = {item.ref for item in query.select or ()} | {Ref(aggregate.key) for aggregate in query.aggregates}
    for term in query.order:
        if term.ref not in keys:
            raise InvalidQuery(
                f"With aggregates, order names a group column or an aggregate; '{term.ref}' is neither.",
                {"parameter": "order", "column": str(term.ref)},
            )


# --- order --------------------------------------------------------------------------------------
def parse_order(
    text: str | None, known: Mapping[str, Field], *, aggregates: tuple[Aggregate, ...] = ()
) -> tuple[OrderTerm, ...]:
    """Order terms; a field repeated keeps its first occurrence (as SQL does)."""
    if text is None:
        return ()
    names = dict(known)
    for aggregate in aggregates:  # an aggregate's result key may be ordered by
        names.setdefault(aggregate.key, Field(aggregate.key, "aggregate"))
    terms: list[OrderTerm] = []
    for item in split_items(text, "order"):
        term = _order_term(item, names)
        if all(seen.ref != term.ref for seen in terms):
            terms.append(term)
    return tuple(terms)


def split_items(text: str, parameter: str) -> list[str]:
    """Comma-separated items; commas inside parentheses, or inside double quotes that open an
    item, a path key (``->"k"``) or an aliased name (``alias:"name"``), do not split. A quote
    elsewhere is an ordinary character (``we"ird`` is a name)."""
    items: list[str] = []
    start = position = depth = 0
    while position < len(text):
        ch = text[position]
        opens = text[start:position].strip(" ") == "" or text.endswith(("->", ":"), start, position)
        if ch == '"' and opens:
            try:
                _, position = quoted_at(text, position)
            except ValueError:
                position = len(text)  # unclosed: the item's parser reports it
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            items.append(text[start:position])
            start = position + 1
        position += 1
    items.append(text[start:])
    return items


def _quoted(text: str, position: int, parameter: str) -> tuple[str, int]:
    try:
        return quoted_at(text, position)
    except ValueError as exc:
        raise InvalidQuery(
            f"A double-quoted name or value in '{parameter}' is not closed.",
            {"parameter": parameter, "value": text},
        ) from exc


def _unquote(text: str, parameter: str) -> tuple[str, str]:
    try:
        return unquote(text)
    except ValueError as exc:
        raise InvalidQuery(
            f"A double-quoted name in '{parameter}' is not closed.", {"parameter": parameter, "value": text}
        ) from exc


def _order_term(item: str, known: Mapping[str, Field]) -> OrderTerm:
    stripped = item.strip(" ")
    if stripped == "":
        raise InvalidQuery("'order' has an empty item.", {"parameter": "order"})
    if stripped.startswith('"'):
        name, rest = _unquote(stripped, "order")
        field_of(name, known)
        path_end = path_length(rest, ".")
        ref = _with_path(name, rest[:path_end], "order", known) if path_end else Ref(name)
        suffix = rest[path_end:]
        if suffix and not suffix.startswith("."):
            raise InvalidQuery(
                f"Unexpected text '{suffix}' after a quoted column name in 'order'.",
                {"parameter": "order", "value": item},
            )
        return _with_modifiers(ref, suffix)
    problem: InvalidQuery | None = None
    for text in dict.fromkeys((item, stripped)):
        # Longest known prefix first: with columns "a" and "a.desc", "a.desc" is the column.
        candidates = [n for n in known if text == n or text.startswith(n + ".") or text.startswith(n + "->")]
        for name in sorted(candidates, key=len, reverse=True):
            rest = text[len(name) :]
            path_end = path_length(rest, ".")
            try:
                ref = _with_path(name, rest[:path_end], "order", known) if path_end else Ref(name)
                return _with_modifiers(ref, rest[path_end:])
            except InvalidQuery as exc:
                problem = problem or exc
    if problem is not None:
        raise problem
    raise unknown_column(_without_modifiers(stripped).split("->", 1)[0], known)


def path_length(text: str, stops: str) -> int:
    """Length of the JSON path (``->a->>b``) ``text`` starts with; an unquoted key ends at one of
    ``stops`` or at the next arrow, a double-quoted key may hold anything."""
    position = 0
    while text.startswith("->", position):
        position += 3 if text.startswith("->>", position) else 2
        if text.startswith('"', position):
            try:
                _, position = quoted_at(text, position)
            except ValueError:
                return len(text)  # unclosed: the path's parser reports it
            continue
        while position < len(text) and text[position] not in stops and not text.startswith("->", position):
            position += 1
    return position


def _with_modifiers(ref: Ref, suffix: str) -> OrderTerm:
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
                f"Invalid order direction '{word}' for column '{ref}': use asc or desc, optionally "
                "followed by nullsfirst or nullslast (e.g. order=amount.desc.nullslast).",
                {"parameter": "order", "column": str(ref), "direction": word},
            )
    return OrderTerm(ref, bool(descending), nulls_first)


def _without_modifiers(text: str) -> str:
    while "." in text and text.rsplit(".", 1)[1] in {*_DIRECTIONS, *_NULLS}:
        text = text.rsplit(".", 1)[0]
    return text


# --- the other parameters -----------------------------------------------------------------------
def _parse_distinct(text: str | None, known: Mapping[str, Field]) -> str | None:
    if text is None:
        return None
    stripped = text.strip(" ")
    if stripped == "":
        raise InvalidQuery("'distinct' has an empty column name.", {"parameter": "distinct"})
    if text in known:
        return text
    if stripped.startswith('"'):
        name, rest = _unquote(stripped, "distinct")
        if rest.strip(" "):
            raise InvalidQuery(
                f"Unexpected text '{rest}' after a quoted column name in 'distinct'.",
                {"parameter": "distinct", "value": text},
            )
        return field_of(name, known).name
    return field_of(stripped, known).name


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


def _parse_as_of(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) < 2**53:
        raise InvalidQuery(
            "as_of must be a version number (see GET /v1/datasets/{id}/versions).",
            {"parameter": "as_of", "value": text},
        )
    return int(text)
