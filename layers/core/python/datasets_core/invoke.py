"""Calling another function of the stack synchronously (the API's light functions hand replica
work to the ``analytics`` function, which has pyarrow).

The answer is ``{"json": <text>}``, the text being ``{"ok": ...}`` or ``{"error": {"status",
"code", "message", "details"}}`` (JSON text, so decimal numbers stay exact through Lambda); an
error of ours comes back as the same ``ApiError`` here, anything else as ``internal_error``.
Locally the Lambda client is pointed at the local stack's Invoke endpoint
(``AWS_ENDPOINT_URL_LAMBDA``); tests replace ``invoke`` with an in-process call.
"""

from __future__ import annotations

from typing import Any

from . import aws, jsonutil
from .errors import ApiError
from .observability import logger


class RemoteError(ApiError):
    """An error answered by the called function, carried back with its status and code."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message, details)
        self.status = status
        self.code = code


def invoke(function_name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The raw answer of ``function_name`` for ``payload`` (RequestResponse)."""
    response = aws.client("lambda").invoke(
        FunctionName=function_name, InvocationType="RequestResponse", Payload=jsonutil.dumps(payload).encode()
    )
    body = response["Payload"].read()
    if response.get("FunctionError"):
        logger.error("invoked function failed", extra={"function": function_name, "answer": body[:2000]})
        raise ApiError("Something went wrong on our side.")
    answer = jsonutil.loads(body)
    if not isinstance(answer, dict) or not isinstance(answer.get("json"), str):
        raise ApiError("Something went wrong on our side.")
    inner = jsonutil.loads(answer["json"])
    return inner if isinstance(inner, dict) else {}


def call(function_name: str, payload: dict[str, Any]) -> Any:
    """What ``function_name`` answered (``ok``), or its error raised here."""
    answer = invoke(function_name, payload)
    if "error" in answer:
        error = answer["error"]
        raise RemoteError(
            int(error["status"]), str(error["code"]), str(error["message"]), dict(error.get("details") or {})
        )
    return answer.get("ok")
