"""Keyset cursors: opaque, tamper-evident positions in a query's order.

A cursor holds the last returned row's values of the ``order`` columns and its
``row_index`` (the order's final tie-break, so the position is exact), bound to the dataset,
its current generation and a fingerprint of the query (filters, search, order, select). It
is base64url JSON plus an HMAC-SHA256 tag; a cursor changed by hand, or replayed against
another dataset or another query, is 400 ``invalid_query``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from functools import cache
from typing import Any

from .. import jsonutil
from ..config import settings
from ..errors import InvalidQuery
from .ast import RowsQuery

_TAG_BYTES = 16


@dataclass(frozen=True)
class Position:
    values: dict[str, Any]  # order column → value of the last row
    row_index: int

    def as_row(self) -> dict[str, Any]:
        """A stand-in row at this position, for ``evaluate.sort_key`` comparisons."""
        return {**self.values, "row_index": self.row_index}


def fingerprint(query: RowsQuery) -> str:
    shape = {
        "filters": [[f.column, f.op, repr(f.value), f.negated] for f in query.filters],
        "search": query.search,
        "order": [[t.column, t.descending, t.nulls_first] for t in query.order],
        "select": list(query.select) if query.select is not None else None,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:24]


def encode(dataset: dict[str, Any], query: RowsQuery, last_row: dict[str, Any]) -> str:
    payload = {
        "d": dataset["id"],
        "g": int(dataset.get("generation", 0)),
        "q": fingerprint(query),
        "v": {term.column: last_row.get(term.column) for term in query.order},
        "r": int(last_row["row_index"]),
    }
    body = base64.urlsafe_b64encode(jsonutil.dumps(payload).encode()).rstrip(b"=")
    return (body + b"." + _tag(body)).decode()


def decode(dataset: dict[str, Any], query: RowsQuery, text: str) -> Position:
    invalid = InvalidQuery(
        "The cursor is not valid for this dataset and query; start again without 'cursor'.",
        {"parameter": "cursor"},
    )
    body, _, tag = text.encode().partition(b".")
    if not body or not hmac.compare_digest(tag, _tag(body)):
        raise invalid
    try:
        payload = jsonutil.loads(base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise invalid from exc
    expected = (dataset["id"], int(dataset.get("generation", 0)), fingerprint(query))
    if (payload.get("d"), payload.get("g"), payload.get("q")) != expected:
        raise invalid
    return Position(dict(payload["v"]), int(payload["r"]))


def _tag(body: bytes) -> bytes:
    digest = hmac.new(_secret(), body, hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=")


@cache
def _secret() -> bytes:
    # Deployed functions share CURSOR_SECRET (set by the stack); without one (tests, the
    # local stack's single process) a per-process secret is just as tamper-evident.
    configured = settings().cursor_secret
    return configured.encode() if configured else secrets.token_bytes(32)
