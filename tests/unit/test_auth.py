"""Key format, hashing and header parsing (no AWS)."""

from __future__ import annotations

import pytest

from datasets_core import auth
from datasets_core.errors import Unauthorized


def test_generated_key_splits_into_its_public_id_and_secret() -> None:
    new = auth.generate_key()
    key_id, secret = auth.split_key(new.plaintext)
    assert key_id == new.key_id
    assert auth.hash_secret(secret) == new.secret_hash
    assert new.secret_hash not in new.plaintext
    assert auth.is_valid_token(new.plaintext)


def test_two_generated_keys_differ() -> None:
    assert auth.generate_key().plaintext != auth.generate_key().plaintext


def test_foreign_format_key_gets_a_stable_derived_id() -> None:
    token = "my-own-bootstrap-key-12345"
    first, secret = auth.split_key(token)
    again, _ = auth.split_key(token)
    assert first == again and len(first) == 16 and secret == token
    assert auth.split_key(token + "x")[0] != first


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Authorization": "Bearer abc"}, "abc"),
        ({"authorization": "bearer  abc "}, "abc"),
        ({"X-Api-Key": "xyz"}, "xyz"),
        ({"x-api-key": "xyz"}, "xyz"),
    ],
)
def test_token_is_read_from_either_header(headers: dict[str, str], expected: str) -> None:
    assert auth.token_from_headers(headers) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer   "},
        {"X-Api-Key": " "},
    ],
)
def test_missing_or_malformed_header_is_unauthorized(headers: dict[str, str]) -> None:
    with pytest.raises(Unauthorized):
        auth.token_from_headers(headers)


@pytest.mark.parametrize("token", ["short", "x" * 201, "has space in it 123456", "semi;colon;1234567890"])
def test_malformed_tokens_are_rejected_before_any_lookup(token: str) -> None:
    with pytest.raises(Unauthorized):
        auth.authenticate(token)
