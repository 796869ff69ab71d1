"""API key management: create (shown once), list (no secrets), revoke."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import auth
from ..errors import InvalidBody
from ..store import keys as key_store
from ..timeutil import iso, now, now_iso

if TYPE_CHECKING:  # a pydantic model: listing and revoking keys must not load pydantic
    from ..models import CreateKey


def create(principal: auth.Principal, request: CreateKey) -> dict[str, Any]:
    unknown = sorted(set(request.scopes) - set(auth.SCOPES))
    if unknown:
        raise InvalidBody(
            f"Unknown scope(s): {', '.join(unknown)}.",
            {"unknown_scopes": unknown, "valid_scopes": list(auth.SCOPES)},
        )
    escalation = sorted(set(request.scopes) - principal.scopes)
    if escalation:
        raise InvalidBody(
            "A key cannot grant scopes it does not hold itself.", {"scopes_not_held": escalation}
        )
    expires_at = None
    if request.expires_at is not None:
        if request.expires_at.tzinfo is None:
            raise InvalidBody("expires_at must include a timezone (e.g. 2027-01-01T00:00:00Z).")
        if request.expires_at <= now():
            raise InvalidBody("expires_at must be in the future.")
        expires_at = iso(request.expires_at)
    return issue_key(principal.workspace, request.name, list(dict.fromkeys(request.scopes)), expires_at)


def issue_key(workspace: str, name: str, scopes: list[str], expires_at: str | None = None) -> dict[str, Any]:
    """Create a key in ``workspace``; the only time the plaintext exists."""
    new = auth.generate_key()
    record = key_store.put_key(
        key_id=new.key_id,
        workspace=workspace,
        name=name,
        scopes=scopes,
        secret_hash=new.secret_hash,
        created_at=now_iso(),
        expires_at=expires_at,
    )
    return {**_view(record), "key": new.plaintext}


def register_key(workspace: str, name: str, scopes: list[str], plaintext: str) -> dict[str, Any]:
    """Register a key whose plaintext the operator chose (``BOOTSTRAP_API_KEY``)."""
    if not auth.is_valid_token(plaintext):
        raise ValueError("a key must be 20–200 URL-safe characters (A-Z a-z 0-9 - _ . ~)")
    key_id, secret = auth.split_key(plaintext)
    record = key_store.put_key(
        key_id=key_id,
        workspace=workspace,
        name=name,
        scopes=scopes,
        secret_hash=auth.hash_secret(secret),
        created_at=now_iso(),
        expires_at=None,
        overwrite=True,
    )
    return _view(record)


def list_keys(principal: auth.Principal) -> list[dict[str, Any]]:
    keys = [key for key in key_store.list_keys(principal.workspace) if not key.get("revoked_at")]
    return [_view(key) for key in sorted(keys, key=lambda key: key["created_at"])]


def revoke(principal: auth.Principal, key_id: str) -> dict[str, Any]:
    key_store.revoke_key(key_id, now_iso(), workspace=principal.workspace)
    auth.forget_key(key_id)
    return {"id": key_id, "revoked": True}


def _view(record: dict[str, Any]) -> dict[str, Any]:
    return {
        field: record.get(field)
        for field in ("id", "name", "scopes", "created_at", "last_used_at", "expires_at")
    }
