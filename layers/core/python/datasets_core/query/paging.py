"""Strict ``limit`` / ``offset``: out-of-range or non-integer values are errors, never clamped."""

from __future__ import annotations

import re

from msgspec import Struct

from ..errors import InvalidQuery

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# Far beyond any dataset's row count; bigger offsets are refused, never a server error.
MAX_OFFSET = 10**12
_INTEGER = re.compile(r"[0-9]+")  # matched whole: "5\n" is not an integer


class Page(Struct, frozen=True):
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def parse_page(limit: str | None, offset: str | None) -> Page:
    page_limit = DEFAULT_LIMIT
    page_offset = 0
    if limit is not None:
        # Length first: int() of thousands of digits is itself an error.
        if not _INTEGER.fullmatch(limit) or len(limit) > 4 or not 1 <= int(limit) <= MAX_LIMIT:
            raise InvalidQuery(
                f"limit must be an integer from 1 to {MAX_LIMIT}.", {"parameter": "limit", "value": limit}
            )
        page_limit = int(limit)
    if offset is not None:
        if not _INTEGER.fullmatch(offset) or len(offset) > 13 or int(offset) > MAX_OFFSET:
            raise InvalidQuery(
                f"offset must be an integer from 0 to {MAX_OFFSET:,}.",
                {"parameter": "offset", "value": offset},
            )
        page_offset = int(offset)
    return Page(page_limit, page_offset)


def single(params: dict[str, list[str]], name: str) -> str | None:
    """The one value of a parameter that may not repeat."""
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise InvalidQuery(f"'{name}' may be given only once.", {"parameter": name})
    return values[0]
