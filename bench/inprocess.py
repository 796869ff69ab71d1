"""Measuring DynamoDB work in this process: moto, the real handlers, and exact counts.

- ``environment(projection)``: a fresh moto account with the stack's tables (the rows
  table's indexes optionally given another projection, to compare), the API's handlers
  called through the local dispatcher as the integration tests call them.
- ``DynamoMeter``: while installed, every DynamoDB request this process sends is seen in its
  wire form (botocore's ``_make_request``, after parameters are serialized and before the
  response is turned into Python values). Writes are priced from the items' images read just
  before and just after the request (``bench.capacity``); reads from the items returned.
- The critical path: each thread carries a *lane*, the number of DynamoDB round trips that
  had to complete, one after another, before it could go on. A request adds one to its
  lane; work handed to a ``ThreadPoolExecutor`` starts on a copy of the submitter's lane,
  and taking a future's result joins that copy back (the longer of the two). The lane of
  the request's thread at its end is the longest chain of round trips that depend on each
  other — what parallel reads shorten — counted from the code's structure, not measured
  in time, so it is exact on a loaded machine.
"""

from __future__ import annotations

import base64
import concurrent.futures
import contextvars
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

import boto3
import botocore.client
from moto import mock_aws

from infra import tables
from infra.tables import create_table_kwargs

from . import capacity

_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "PURGE_DELAY_SECONDS": "0",
}


# --- the environment -----------------------------------------------------------------------------
@contextmanager
def environment(projection: str | None = None) -> Iterator[Client]:
    """A moto account holding the stack's tables; a client with every scope in ``default``.

    ``projection`` replaces the rows table's index projection (None: the stack's own)."""
    from datasets_core import auth, aws
    from datasets_core.config import settings
    from datasets_core.logic import keys

    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AWS_") or name in _SETTINGS:
            del os.environ[name]
    os.environ.update(_ENV)
    try:
        with mock_aws():
            settings.cache_clear()
            aws.reset()
            auth.forget_cached_keys()
            dynamodb = boto3.client("dynamodb")
            for spec in tables.ALL_TABLES:
                if spec is tables.ROWS and projection is not None:
                    spec = replace(spec, gsis=tuple(replace(gsi, projection=projection) for gsi in spec.gsis))
                dynamodb.create_table(**create_table_kwargs(spec))
            yield Client(keys.issue_key("default", "bench", list(auth.SCOPES))["key"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
        settings.cache_clear()
        aws.reset()
        auth.forget_cached_keys()


def _settings_env() -> frozenset[str]:
    from msgspec.structs import fields

    from datasets_core.config import Settings

    return frozenset(setting.name.upper() for setting in fields(Settings))


_SETTINGS = _settings_env()


class Client:
    """Requests handed to the API's handlers exactly as the local server hands them."""

    def __init__(self, key: str) -> None:
        self.key = key

    def call(
        self, method: str, path: str, body: Any = None, params: list[tuple[str, str]] | None = None
    ) -> Any:
        from local.dispatch import dispatch

        response = dispatch(
            method,
            "/v1" + path,
            query_string=urlencode(params or [], doseq=True),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"},
            body=json.dumps(body) if body is not None else None,
        )
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {response.body!r}")
        return response.json()


# --- what DynamoDB sees ------------------------------------------------------------------------------
def _bytes(value: str | bytes) -> bytes:
    return base64.b64decode(value) if isinstance(value, str) else bytes(value)


def _raw(value: dict[str, Any]) -> dict[str, Any]:
    """A wire value with binaries as bytes (as botocore parses them; JSON carries base64)."""
    [(kind, inner)] = value.items()
    if kind == "B":
        return {kind: _bytes(inner)}
    if kind == "BS":
        return {kind: [_bytes(element) for element in inner]}
    if kind == "L":
        return {kind: [_raw(element) for element in inner]}
    if kind == "M":
        return {kind: {name: _raw(element) for name, element in inner.items()}}
    return {kind: inner}


@dataclass
class Call:
    operation: str
    table: str
    index: str | None
    depth: int  # the round trip's place on its chain (1: depends on none)
    items: int = 0  # items returned (reads)
    read_units: float = 0.0
    writes: list[tuple[str, dict[str, Any], capacity.WriteUnits]] = field(default_factory=list)
    # ^ (table, key, units) per item written
    params: dict[str, Any] = field(default_factory=dict)  # the request, as sent


class _Lane:
    __slots__ = ("depth",)

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth


_LANE: contextvars.ContextVar[_Lane | None] = contextvars.ContextVar("bench_lane", default=None)


class DynamoMeter:
    """Records every DynamoDB request of this process while installed (see module doc)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._installed: list[tuple[Any, str, Any]] = []
        self._tables: dict[str, capacity.Table] = {}
        self.reader: Any = None
        self.paused = False  # requests pass unrecorded (loading data)

    # -- installing
    def __enter__(self) -> DynamoMeter:
        from datasets_core.config import settings

        described = boto3.client("dynamodb")
        for spec in tables.ALL_TABLES:
            name = getattr(settings(), spec.settings_env.lower())
            projections = {
                index["IndexName"]: index["Projection"]["ProjectionType"]
                for index in described.describe_table(TableName=name)["Table"].get(
                    "GlobalSecondaryIndexes", []
                )
            }
            table = capacity.Table.of(spec)
            self._tables[name] = replace(
                table,
                indexes=tuple(replace(index, projection=projections[index.name]) for index in table.indexes),
            )
        self.reader = described
        self._install()
        return self

    def __exit__(self, *exc: object) -> None:
        while self._installed:
            owner, name, original = self._installed.pop()
            setattr(owner, name, original)

    def _install(self) -> None:
        meter = self
        original_request = botocore.client.BaseClient._make_request
        original_submit = concurrent.futures.ThreadPoolExecutor.submit
        original_result = concurrent.futures.Future.result

        def _make_request(client: Any, operation_model: Any, request_dict: Any, request_context: Any) -> Any:
            if meter.paused or operation_model.service_model.service_name != "dynamodb":
                return original_request(client, operation_model, request_dict, request_context)
            return meter._observe(
                operation_model.name,
                json.loads(request_dict["body"] or b"{}"),
                lambda: original_request(client, operation_model, request_dict, request_context),
            )

        def submit(pool: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            parent = _LANE.get()
            if parent is None:
                return original_submit(pool, fn, *args, **kwargs)
            child = _Lane(parent.depth)
            context = contextvars.copy_context()
            context.run(_LANE.set, child)
            future = original_submit(pool, context.run, fn, *args, **kwargs)
            future._bench_lane = child  # type: ignore[attr-defined]
            return future

        def result(future: Any, timeout: float | None = None) -> Any:
            value = original_result(future, timeout)
            child, parent = getattr(future, "_bench_lane", None), _LANE.get()
            if child is not None and parent is not None:
                parent.depth = max(parent.depth, child.depth)  # joined: waited for that work
            return value

        for owner, name, replacement in (
            (botocore.client.BaseClient, "_make_request", _make_request),
            (concurrent.futures.ThreadPoolExecutor, "submit", submit),
            (concurrent.futures.Future, "result", result),
        ):
            self._installed.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, replacement)

    # -- one request
    def _observe(self, operation: str, params: dict[str, Any], send: Callable[[], Any]) -> Any:
        lane = _LANE.get()
        depth = (lane.depth if lane is not None else 0) + 1
        writes = self._written_keys(operation, params) if operation in _WRITES else []
        before = [self._image(table, key) for table, key, _ in writes]
        http, parsed = send()
        after = [self._image(table, key) for table, key, _ in writes]
        call = Call(
            operation, self._table_of(operation, params), params.get("IndexName"), depth, params=params
        )
        for (table, key, transactional), old, new in zip(writes, before, after, strict=True):
            units = capacity.write_units(self._tables[table], old, new, transactional=transactional)
            call.writes.append((table, key, units))
        self._price_read(call, params, parsed)
        if lane is not None:
            lane.depth = depth
        with self._lock:
            self.calls.append(call)
        return http, parsed

    def _table_of(self, operation: str, params: dict[str, Any]) -> str:
        if "TableName" in params:
            return str(params["TableName"])
        if operation == "TransactWriteItems":
            return ",".join(
                sorted({next(iter(entry.values()))["TableName"] for entry in params["TransactItems"]})
            )
        return ",".join(sorted(params.get("RequestItems", {})))

    def _written_keys(self, operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
        def key_of(table: str, item: dict[str, Any]) -> dict[str, Any]:
            return {name: item[name] for name in self._tables[table].keys}

        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            table = params["TableName"]
            return [(table, key_of(table, params.get("Item") or params["Key"]), False)]
        if operation == "BatchWriteItem":
            return [
                (
                    table,
                    key_of(
                        table,
                        (request.get("PutRequest") or {}).get("Item") or request["DeleteRequest"]["Key"],
                    ),
                    False,
                )
                for table, requests in params["RequestItems"].items()
                for request in requests
            ]
        found = []
        for entry in params["TransactItems"]:
            [(kind, body)] = entry.items()
            table = body["TableName"]
            found.append((table, key_of(table, body.get("Item") or body["Key"]), True))
        return found

    def _image(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """The item as moto holds it now, in wire form (read from moto's backend, not through
        botocore: the reading is no request of the code measured)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][os.environ["AWS_DEFAULT_REGION"]]
        item = backend.get_item(table, key)
        return {name: _raw(value) for name, value in item.to_json()["Attributes"].items()} if item else None

    def _price_read(self, call: Call, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        if call.operation in ("Query", "Scan"):
            items = parsed.get("Items", [])
            call.items = int(parsed.get("ScannedCount", parsed.get("Count", len(items))))
            if params.get("Select") != "COUNT":  # a count returns no items to size
                consistent = bool(params.get("ConsistentRead")) and not params.get("IndexName")
                call.read_units = capacity.query_read_units(items, consistent=consistent)
        elif call.operation == "BatchGetItem":
            for table, got in parsed.get("Responses", {}).items():
                consistent = bool(params["RequestItems"][table].get("ConsistentRead"))
                asked = len(params["RequestItems"][table]["Keys"])
                call.items += len(got)
                call.read_units += capacity.batch_get_read_units(got, asked - len(got), consistent=consistent)
        elif call.operation == "GetItem":
            item = parsed.get("Item")
            call.items = 1 if item else 0
            call.read_units = capacity.batch_get_read_units(
                [item] if item else [], 0 if item else 1, consistent=bool(params.get("ConsistentRead"))
            )

    # -- views
    def take(self) -> list[Call]:
        """The calls recorded so far (and forget them)."""
        with self._lock:
            calls, self.calls = self.calls, []
        return calls


@contextmanager
def critical_path() -> Iterator[_Lane]:
    """Count the longest chain of dependent round trips of what runs inside (``lane.depth``)."""
    lane = _Lane()
    token = _LANE.set(lane)
    try:
        yield lane
    finally:
        _LANE.reset(token)
