"""``Idempotency-Key`` on writes, on Powertools' idempotency utility.

A retry with the same key and the same request returns the first response and writes
nothing again; the same key with a different request is 409 ``conflict``. The record is
keyed by workspace + key + method + path, so two workspaces (or two endpoints) never share
a key; the query string and body are the payload that must match. Failed requests (any
error response) are not remembered, so a corrected retry may reuse the key.
"""

from __future__ import annotations

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

from . import aws
from .config import settings
from .errors import Conflict, InvalidBody

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
    try:
        stored = run(request=request, compute=compute)
    except IdempotencyValidationError as exc:
        raise Conflict(
            f"This {HEADER} was already used with a different request.", {"idempotency_key": key}
        ) from exc
    except IdempotencyAlreadyInProgressError as exc:
        raise Conflict(
            f"A request with this {HEADER} is still in progress; retry shortly.", {"idempotency_key": key}
        ) from exc
    return Response(
        status_code=stored["status"],
        content_type="application/json",
        body=stored["body"],
        headers={"Idempotent-Replayed": "true"} if stored.get("replayed") else None,
    )


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
        return {"status": response.status_code, "body": response.body}

    return run, config


def _mark_replayed(response: Any, _record: Any) -> Any:
    return {**response, "replayed": True} if isinstance(response, dict) else response
