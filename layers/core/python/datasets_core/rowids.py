"""Row ids: RFC 9562 UUIDv8 that carry the row's ``row_index``.

The first 48 bits are the row_index; the rest is random (or, for imports, derived from the
source file and line so a replayed import rewrites the same rows). A row is therefore found
by one strongly consistent GetItem (``pk = <dataset>#<row_index % shards>``, ``sk =
row_index``) with no id index to keep in sync. Ids are still opaque UUIDs to callers.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

from .errors import InvalidRowId

_MAX_ROW_INDEX = (1 << 48) - 1


def new_row_id(row_index: int, seed: bytes | None = None) -> str:
    if not 0 <= row_index <= _MAX_ROW_INDEX:
        raise ValueError("row_index out of range")
    tail = hashlib.sha256(seed).digest()[:10] if seed is not None else secrets.token_bytes(10)
    value = (row_index << 80) | int.from_bytes(tail, "big")
    value &= ~(0xF << 76)
    value |= 0x8 << 76  # version 8
    value &= ~(0x3 << 62)
    value |= 0x2 << 62  # RFC 9562 variant
    return str(uuid.UUID(int=value))


def parse_row_id(text: str) -> uuid.UUID:
    """The UUID, or ``invalid_row_id`` for anything that is not one."""
    try:
        return uuid.UUID(text)
    except (ValueError, AttributeError, TypeError) as exc:
        raise InvalidRowId(f"'{text}' is not a valid row id (a UUID).", {"row_id": text}) from exc


def row_index_of(text: str) -> int | None:
    """The row_index a row id carries; None when the UUID is not one of ours (so: not found)."""
    parsed = parse_row_id(text)
    if parsed.version != 8:
        return None
    return parsed.int >> 80
