"""``Idempotency-Key`` on writes, on Powertools' idempotency utility.

A retry with the same key and the same request returns the first response and writes
nothing again; the same key with a different request is 409 ``conflict``. The record is
keyed by workspace + key + method + path, so two workspaces (or two endpoints) never share
a key; the query string and body are the payload that must match. Failed requests (any
error response) are not remembered, so a corrected retry may reuse the key.

A record is one DynamoDB item (400 KB), an answer up to 6 MB (an insert echoes its rows): a
big answer is stored compressed, and one that does not compress enough is stored abridged —
its rows reduced to their ids and metadata, ``"abridged": true`` — which is what a replay then
returns (the first answer is always whole). Storing it must not fail the write it answers.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from . import aws, jsonutil
from .config import settings
from .errors import Conflict, InvalidBody
from .query import answer

HEADER = "Idempotency-Key"
_MAX_KEY_LENGTH = 255
_REMEMBER_SECONDS = 24 * 3600


def once(request: dict[str, Any], compute: Callable[[], Response], lambda_context: Any = None) -> Response:
    """``compute()`` at most once per idempotency key found in ``request``.

    ``request`` = ``{workspace, key, method, path, query, body}``; without a ``key`` the
    request simply runs.
    """
    key = request.get("key")
    if key is None:
        return compute()
    if not 1 <= len(key) <= _MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidBody(f"The {HEADER} header must be 1–{_MAX_KEY_LENGTH} printable characters.")
    run, config = _runner()
    if lambda_context is not None and hasattr(lambda_context, "get_remaining_time_in_millis"):
        # Lets Powertools expire an in-progress record when this invocation times out.
        config.register_lambda_context(lambda_context)
    first: list[Response] = []  # the answer computed now (a replay computes nothing)

    def computed() -> Response:
        response = compute()
        first.append(response)
        return response

    try:
        stored = run(request=request, compute=computed)
    except IdempotencyValidationError as exc:
        raise Conflict(
            f"This {HEADER} was already used with a different request.", {"idempotency_key": key}
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise Conflict(
            f"A request with this {HEADER} is still in progress; retry shortly.", {"idempotency_key": key}
        ) from exc
    if first and not stored.get("replayed"):
        return first[0]
    return Response(
        status_code=stored["status"],
        content_type="application/json",
        body=unpacked(stored),
        headers={"Idempotent-Replayed": "true"} if stored.get("replayed") else None,
    )


# What a record's answer may take: the item holds the request's hash, status and expiry too.
RECORD_BODY_BYTES = 300_000


def packed(status: int, body: str) -> dict[str, Any]:
    """The answer as a record stores it: as is, compressed, or abridged (see the module doc)."""
    if len(body.encode()) <= RECORD_BODY_BYTES:
        return {"status": status, "body": body}
    squeezed = base64.b64encode(zlib.compress(body.encode(), 6)).decode()
    if len(squeezed) <= RECORD_BODY_BYTES:
        return {"status": status, "zbody": squeezed}
    return packed(status, jsonutil.dumps(answer.abridged(jsonutil.loads(body))))


def unpacked(record: dict[str, Any]) -> str:
    if "zbody" in record:
        return zlib.decompress(base64.b64decode(record["zbody"])).decode()
    return str(record["body"])


@cache
def _runner() -> tuple[Callable[..., dict[str, Any]], IdempotencyConfig]:
    # Built on first use, not at import: the table name comes from settings and nothing may
    # talk to (or configure a client for) AWS during a cold start's imports.
    persistence = DynamoDBPersistenceLayer(
        table_name=settings().idempotency_table, boto3_client=aws.client("dynamodb")
    )
    config = IdempotencyConfig(
        event_key_jmespath="[workspace, key, method, path]",
        payload_validation_jmespath="[query, body]",
        expires_after_seconds=_REMEMBER_SECONDS,
        response_hook=_mark_replayed,  # type: ignore[arg-type]  # Powertools types the hook narrowly
    )

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
    def run(*, request: dict[str, Any], compute: Callable[[], Response]) -> dict[str, Any]:
        response = compute()
        return packed(response.status_code, str(response.body or ""))

    return run, config


def _mark_replayed(response: Any, _record: Any) -> Any:
    return {**response, "replayed": True} if isinstance(response, dict) else response
