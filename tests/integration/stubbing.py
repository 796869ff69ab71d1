"""Answers for the Stubber on the rows table's client (fixture ``stub`` in conftest): the
failures moto cannot produce, throttling and unprocessed items on ``BatchWriteItem``; and
``FailingCall``, one refused call in the middle of real (moto) traffic."""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.awsrequest import AWSResponse
from botocore.stub import ANY, Stubber

from datasets_core.config import settings
from datasets_core.store import rows as row_store


def batch_call(
    stub: Stubber,
    *,
    unprocessed: int = 0,
    throttled: bool = False,
    error: str = "ProvisionedThroughputExceededException",
) -> None:
    """Expect one BatchWriteItem; answer with ``error`` when ``throttled``, or leave the last
    ``unprocessed`` requests."""
    if throttled:
        stub.add_client_error(
            "batch_write_item",
            service_error_code=error,
            service_message="Rate of requests exceeds the allowed throughput.",
            http_status_code=400,
        )
        return
    answers: dict[str, Any] = {"UnprocessedItems": {}}
    if unprocessed:
        # A placeholder of the right shape; ``Unprocessed`` swaps in the call's real requests.
        marker = {"PutRequest": {"Item": {"pk": {"S": f"{_MARK}{unprocessed}"}}}}
        answers = {"UnprocessedItems": {settings().rows_table: [marker]}}
    stub.add_response("batch_write_item", answers, {"RequestItems": ANY})


_MARK = "__last__"


def log_call(stub: Stubber) -> None:
    """Expect the change-log item a write puts before its rows (``store.changelog``)."""
    stub.add_response(
        "put_item",
        {},
        {"TableName": settings().rows_table, "Item": ANY, "ConditionExpression": "attribute_not_exists(pk)"},
    )


def query_call(stub: Stubber, count: int = 1) -> None:
    """Expect ``count`` Queries that find nothing (a redelivered import chunk looks for its rows
    and for API writes in the change log before it writes)."""
    for _ in range(count):
        stub.add_response("query", {"Items": [], "Count": 0, "ScannedCount": 0})


def no_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Take ``row_store.batch_write``'s backoff sleeps out; the list records each one asked for."""
    sleeps: list[float] = []
    monkeypatch.setattr(row_store.random, "uniform", lambda _low, high: high)
    monkeypatch.setattr(row_store.batch_write, "__kwdefaults__", {"sleep": sleeps.append})
    return sleeps


class Unprocessed:
    """Records each BatchWriteItem's size and turns a placeholder answer into its trailing requests."""

    def __init__(self, stub: Stubber) -> None:
        self.sizes: list[int] = []
        self.calls: list[list[dict[str, Any]]] = []  # each call's requests (Python values)
        self.deletes = 0  # DeleteRequests sent, over every call
        self.pending: list[dict[str, Any]] = []
        events = stub.client.meta.events
        events.register_first("before-parameter-build.dynamodb.BatchWriteItem", self._note)
        events.register_last("after-call.dynamodb.BatchWriteItem", self._fill)

    def _note(self, params: dict[str, Any], **_: Any) -> None:
        self.pending = copy.deepcopy(params["RequestItems"][settings().rows_table])
        self.sizes.append(len(self.pending))
        self.calls.append(self.pending)
        self.deletes += sum(1 for request in self.pending if "DeleteRequest" in request)

    def _fill(self, parsed: dict[str, Any], **_: Any) -> None:
        left = parsed.get("UnprocessedItems", {}).get(settings().rows_table) or []
        pk = left[0]["PutRequest"]["Item"]["pk"] if left else ""
        pk = pk.get("S", "") if isinstance(pk, dict) else ""
        if pk.startswith(_MARK):
            # This hook runs before boto3 turns DynamoDB's typed values into Python ones.
            typed = TypeSerializer().serialize
            left = self.pending[-int(pk.removeprefix(_MARK)) :]
            parsed["UnprocessedItems"][settings().rows_table] = [
                # {"PutRequest": {"Item": {...}}} or {"DeleteRequest": {"Key": {...}}}
                {kind: {part: {k: typed(v) for k, v in fields.items()} for part, fields in body.items()}}
                for request in left
                for kind, body in request.items()
            ]


class FailingCall:
    """Fails the ``nth`` call of one operation on a client with a DynamoDB error, letting every
    other call through to moto, so a write can be broken part-way while the data stays real.

    ``before`` runs just before the failure (with the call's parameters): what a concurrent
    writer does at that instant. It answers the way the Stubber does (a ``before-call`` hook),
    so botocore's retries do not run, as if they had all been spent."""

    def __init__(
        self,
        client: Any,
        operation: str,
        nth: int,
        *,
        code: str = "ProvisionedThroughputExceededException",
        before: Any = None,
    ) -> None:
        self.operation = operation
        self.nth = nth
        self.code = code
        self.before = before
        self.calls = 0
        self._lock = threading.Lock()
        self._events = client.meta.events
        self._events.register_first(f"before-call.dynamodb.{operation}", self._call)

    def _call(self, params: dict[str, Any], **_: Any) -> Any:
        with self._lock:
            self.calls += 1
            number = self.calls
        if number != self.nth:
            return None  # through to moto
        if self.before is not None:
            self.before(params)
        error = {
            "Error": {"Code": self.code, "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse(None, 400, {}, None), error

    def remove(self) -> None:
        self._events.unregister(f"before-call.dynamodb.{self.operation}", self._call)
