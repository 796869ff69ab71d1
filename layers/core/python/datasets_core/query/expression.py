"""Placeholders for one DynamoDB request's expressions.

Attribute names and values reach DynamoDB only through ``ExpressionAttributeNames`` and
``ExpressionAttributeValues``: expression text is built from placeholders (``#n0``,
``:v0``) and fixed keywords, never from user text. One ``Expression`` serves every
expression of a request (key condition, filter, projection), since DynamoDB takes one set
of names and values for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Expression:
    """Accumulates placeholders; ``add_name`` reuses a name's placeholder, ``add_value`` never does."""

    def __init__(self, name_prefix: str = "#n", value_prefix: str = ":v") -> None:
        self._name_prefix = name_prefix
        self._value_prefix = value_prefix
        self._by_attr: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def add_name(self, attr: str) -> str:
        """The placeholder of attribute ``attr`` (``#n0``), registered once."""
        placeholder = self._by_attr.get(attr)
        if placeholder is None:
            placeholder = f"{self._name_prefix}{len(self._by_attr)}"
            self._by_attr[attr] = placeholder
            self.names[placeholder] = attr
        return placeholder

    def add_value(self, value: Any) -> str:
        """A new placeholder (``:v0``) for ``value``, which must already be in its stored form."""
        placeholder = f"{self._value_prefix}{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def attributes(self) -> dict[str, Any]:
        """The request parameters for the placeholders used so far (empty maps left out)."""
        params: dict[str, Any] = {}
        if self.names:
            params["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            params["ExpressionAttributeValues"] = dict(self.values)
        return params


def conjunction(fragments: Iterable[str | None]) -> str | None:
    """``(a) AND (b) ...`` of the fragments that are not None; None when there are none."""
    parts = [f"({fragment})" for fragment in fragments if fragment]
    if not parts:
        return None
    return parts[0][1:-1] if len(parts) == 1 else " AND ".join(parts)
