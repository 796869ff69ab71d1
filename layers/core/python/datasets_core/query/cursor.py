"""Keyset cursors: opaque, tamper-evident positions in a query's order.

A cursor holds the last returned row's values of the ``order`` terms and its ``row_index``
(the order's final tie-break, so the position is exact), bound to the dataset, its current
generation and a fingerprint of the query (filters, search, order, select, version). It is
base64url JSON plus an HMAC-SHA256 tag; a cursor changed by hand, or replayed against another
dataset or another query, is 400 ``invalid_query``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from functools import cache
from typing import Any

from msgspec import Struct

from .. import jsonutil
from ..config import settings
from ..errors import InvalidQuery
from ..records import Dataset
from .ast import RowsQuery

_TAG_BYTES = 16


class Position(Struct, frozen=True):
    values: tuple[Any, ...]  # the last row's value of each order term
    row_index: int


def fingerprint(query: RowsQuery) -> str:
    shape = {
        "filters": repr(query.filters),
        "search": query.search,
        "order": repr(query.order),
        "select": repr(query.select),
        "as_of": query.as_of,
    }
    return hashlib.sha256(jsonutil.dumps(shape).encode()).hexdigest()[:24]


def encode(dataset: Dataset, query: RowsQuery, term_values: Sequence[Any], row_index: int) -> str:
    payload = {
        "d": dataset.id,
        "g": dataset.generation,
        "q": fingerprint(query),
        "v": list(term_values),
        "r": int(row_index),
    }
    body = base64.urlsafe_b64encode(jsonutil.dumps(payload).encode()).rstrip(b"=")
    return (body + b"." + _tag(body)).decode()


def decode(dataset: Dataset, query: RowsQuery, text: str) -> Position:
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
    if not isinstance(payload, dict):
        raise invalid
    expected = (dataset.id, dataset.generation, fingerprint(query))
    if (payload.get("d"), payload.get("g"), payload.get("q")) != expected:
        raise invalid
    term_values = payload.get("v")
    if not isinstance(term_values, list) or len(term_values) != len(query.order):
        raise invalid
    return Position(tuple(term_values), int(payload["r"]))


def _tag(body: bytes) -> bytes:
    digest = hmac.new(_secret(), body, hashlib.sha256).digest()[:_TAG_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=")


@cache
def _secret() -> bytes:
    # Deployed functions share CURSOR_SECRET (set by the stack); without one (tests, the
    # local stack's single process) a per-process secret is just as tamper-evident.
    configured = settings().cursor_secret
    return configured.encode() if configured else secrets.token_bytes(32)
