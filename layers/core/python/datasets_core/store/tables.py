"""Handles on the tables and the key shapes of the ``meta`` table."""

from __future__ import annotations

from typing import Any

from .. import aws
from ..config import settings


def meta() -> Any:
    return aws.table(settings().meta_table)


def rows() -> Any:
    return aws.table(settings().rows_table)


def query_all(table: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item a Query returns, following ``LastEvaluatedKey`` (raw DynamoDB values)."""
    items: list[dict[str, Any]] = []
    while True:
        page = table.query(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def ws_pk(workspace: str) -> str:
    return f"WS#{workspace}"


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def cancellation_codes(exc: Exception) -> list[str]:
    """Per-item reason codes of a cancelled ``TransactWriteItems`` ('None' for items that passed)."""
    response = getattr(exc, "response", None) or {}
    return [str(reason.get("Code", "None")) for reason in response.get("CancellationReasons", [])]
