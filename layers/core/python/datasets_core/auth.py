"""API keys: format, hashing, and lookup with a short in-memory cache.

A key is ``dsk_<id>_<secret>``: the 16-character public id addresses one DynamoDB item (one
read), and only a SHA-256 of the secret is stored, compared in constant time. The secret is
32 random bytes, so a fast hash is enough (no password stretching needed).

Keys that do not follow the format (an operator's ``BOOTSTRAP_API_KEY`` may be any 20–200
URL-safe characters) get a public id derived from their own hash.

Lookups are cached per warm container for ``key_cache_seconds`` (30 s), so a revocation is
effective everywhere within a minute without a read on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
import time
from datetime import datetime

from msgspec import Struct

from .config import settings
from .errors import Unauthorized
from .observability import logger
from .store import keys as key_store
from .timeutil import now, now_iso, parse_iso

KEY_PREFIX = "dsk_"
_ID_ALPHABET = string.ascii_lowercase + string.digits
_ID_LENGTH = 16
_KEY_RE = re.compile(rf"^{KEY_PREFIX}([a-z0-9]{{{_ID_LENGTH}}})_([A-Za-z0-9_\-]{{43}})$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-.~]{20,200}\Z")
# One message for every bad credential (SPEC §3), saying how to send a key.
UNAUTHORIZED = "Missing or invalid API key. Send it as 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'."

SCOPES = ("datasets:read", "datasets:write", "datasets:admin", "keys:admin")


class Principal(Struct, frozen=True):
    workspace: str
    key_id: str
    scopes: frozenset[str]


class NewKey(Struct, frozen=True):
    key_id: str
    plaintext: str
    secret_hash: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_key() -> NewKey:
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))
    secret = secrets.token_urlsafe(32)
    return NewKey(key_id, f"{KEY_PREFIX}{key_id}_{secret}", hash_secret(secret))


def split_key(token: str) -> tuple[str, str]:
    """(public id, secret) of a key; a foreign-format key is its own secret."""
    match = _KEY_RE.match(token)
    if match:
        return match.group(1), match.group(2)
    return "bk" + hashlib.sha256(token.encode()).hexdigest()[: _ID_LENGTH - 2], token


def is_valid_token(token: str) -> bool:
    return bool(_TOKEN_RE.match(token))


_KEY_ANYWHERE = re.compile(rf"{KEY_PREFIX}[a-z0-9]{{{_ID_LENGTH}}}_[A-Za-z0-9_\-]{{43}}")


def contains_key(text: str) -> bool:
    """Whether ``text`` holds something shaped like a key of this API."""
    return KEY_PREFIX in text and bool(_KEY_ANYWHERE.search(text))


def authenticates(token: str) -> bool:
    """Whether ``token`` is a live key (any format); never raises."""
    try:
        authenticate(token)
    except Unauthorized:
        return False
    return True


def token_from_headers(headers: dict[str, str]) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    authorization = lowered.get("authorization")
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(UNAUTHORIZED)
        return token.strip()
    api_key = lowered.get("x-api-key")
    if api_key and api_key.strip():
        return api_key.strip()
    raise Unauthorized(UNAUTHORIZED)


# key id → (record or None, monotonic time it was read)
_cache: dict[str, tuple[dict | None, float]] = {}


def _record(key_id: str) -> dict | None:
    cached = _cache.get(key_id)
    if cached and time.monotonic() - cached[1] < settings().key_cache_seconds:
        return cached[0]
    record = key_store.get_key(key_id)
    _cache[key_id] = (record, time.monotonic())
    if record is not None and not record.get("revoked_at"):
        try:
            # At most once per cache period per container, so reads stay cheap.
            key_store.touch_key(key_id, now_iso())
        except Exception:  # noqa: BLE001 - last_used_at is best-effort, never fails a request
            logger.warning("could not record last_used_at", extra={"key_id": key_id})
    return record


def _expired(expires_at: str | None, at: datetime) -> bool:
    return bool(expires_at) and parse_iso(str(expires_at)) <= at


def authenticate(token: str) -> Principal:
    """The key's principal, or ``Unauthorized`` (one message for every reason)."""
    if not is_valid_token(token):
        raise Unauthorized(UNAUTHORIZED)
    key_id, secret = split_key(token)
    record = _record(key_id)
    if record is None or record.get("revoked_at") or _expired(record.get("expires_at"), now()):
        raise Unauthorized(UNAUTHORIZED)
    if not hmac.compare_digest(record["secret_hash"], hash_secret(secret)):
        raise Unauthorized(UNAUTHORIZED)
    return Principal(record["workspace"], key_id, frozenset(record["scopes"]))


def forget_cached_keys() -> None:
    _cache.clear()


def forget_key(key_id: str) -> None:
    """Drop one key from this container's cache (revocation is then immediate here)."""
    _cache.pop(key_id, None)
