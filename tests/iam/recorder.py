"""Record, per Lambda function, the AWS calls its handler makes during the integration tests.

How a call is attributed: every handler invocation of the integration tests goes through
``call_as(function, handler, event, context)`` (``local.dispatch`` is patched to use it for
the API routes; the import and maintenance workers are run through it by their helpers),
which sets a context variable for the duration of the handler. A botocore hook
(``BaseClient._emit_api_params``, which every client call *and* every presigned URL passes
through, after boto3 has turned conditions into expressions and values into typed
attributes) reads that variable: calls made while it is set belong to that function; calls
made by the tests themselves (seeding data, reading tables for assertions) are outside any
``call_as`` and are not recorded. Worker threads started with ``ThreadPoolExecutor`` inherit
the variable (``submit`` is wrapped to run in a copy of the caller's context); a call from
any other thread with no function set is kept as "unattributed" and fails the check.

Each call is summarized to what IAM evaluates: service, operation and the resources it
touches (table and index, bucket and key and whether a version is named, queue URL,
function name) plus, for single-item DynamoDB operations, the partition key values and the
top-level attribute names of the request (``dynamodb:LeadingKeys`` / ``dynamodb:Attributes``).

The recording is written to ``build/iam/calls.json`` once the last integration test of the
session has run (and again at the session's end), with a fingerprint of the code it was
made from and whether the run was complete (every integration test file collected, nothing
deselected, every test passed).
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import hashlib
import importlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.client
import msgspec.structs

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "build" / "iam" / "calls.json"
FORMAT_VERSION = 1

# The code whose AWS calls are recorded: a recording made from other code is stale.
FINGERPRINTED = (
    ROOT / "functions",
    ROOT / "layers" / "core" / "python" / "datasets_core",
    ROOT / "tests" / "integration",
    Path(__file__),
)

CURRENT_FUNCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("iam_function", default=None)
# What a test does itself in the middle of an invocation (a racing writer forced between two
# steps, a file dropped by "another client"): not the invoked function's calls.
TEST_ACTOR = "<the test>"


def fingerprint() -> str:
    digest = hashlib.sha256()
    for folder in FINGERPRINTED:
        for path in sorted(folder.rglob("*.py")) if folder.is_dir() else [folder]:
            if "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# --- summarizing one call -----------------------------------------------------------------------
_EXPRESSION_KEYWORDS = {"set", "remove", "add", "delete", "and", "or", "not", "between", "in"}
_VALUE_PLACEHOLDER = re.compile(r":[A-Za-z0-9_]+")
_PATH_START = re.compile(r"(?<![\w.#\]])(#?[A-Za-z_][A-Za-z0-9_]*)(\s*\()?")


def expression_attributes(expression: str | None, names: dict[str, str] | None) -> set[str]:
    """Top-level attribute names an update/condition/projection expression refers to."""
    if not expression:
        return set()
    found = set()
    for match in _PATH_START.finditer(_VALUE_PLACEHOLDER.sub(" ", expression)):
        token, call = match.group(1), match.group(2)
        if call or token.lower() in _EXPRESSION_KEYWORDS:
            continue  # a function (attribute_exists(...)) or a keyword (SET, AND, ...)
        found.add((names or {}).get(token, token) if token.startswith("#") else token)
    return found


def _scalar(value: Any) -> str:
    """The text of a typed attribute value ({"S": "x"} -> "x")."""
    if isinstance(value, dict) and len(value) == 1:
        [inner] = value.values()
        return inner if isinstance(inner, str) else repr(inner)
    return str(value)


def table_partition_keys() -> dict[str, str]:
    """Table name -> partition key attribute, from the specs the test tables are created from."""
    import os

    from infra.tables import ALL_TABLES

    found = {}
    for spec in ALL_TABLES:
        for name in (spec.local_name, os.environ.get(spec.settings_env)):
            if name:
                found[name] = spec.partition_key[0]
    return found


def _dynamodb(operation: str, params: dict[str, Any], partition_keys: Mapping[str, str]) -> dict[str, Any]:
    if operation in ("BatchWriteItem", "BatchGetItem"):
        requests = params.get("RequestItems", {})
        if operation == "BatchGetItem":
            return {"tables": sorted(requests)}
        kinds = {(table, next(iter(req))) for table, reqs in requests.items() for req in reqs}
        return {"items": sorted([table, kind] for table, kind in kinds)}
    if operation in ("TransactWriteItems", "TransactGetItems"):
        items = {
            (kind, body["TableName"])
            for entry in params.get("TransactItems", [])
            for kind, body in entry.items()
        }
        return {"items": sorted([kind, table] for kind, table in items)}
    summary: dict[str, Any] = {"table": params.get("TableName")}
    if params.get("IndexName"):
        summary["index"] = params["IndexName"]
    if operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
        table = str(params.get("TableName"))
        item_or_key = params.get("Item") if operation == "PutItem" else params.get("Key")
        names = params.get("ExpressionAttributeNames")
        pk = partition_keys.get(table)
        if pk and item_or_key and pk in item_or_key:
            summary["leading_keys"] = [_scalar(item_or_key[pk])]
        attributes = set(item_or_key or {})
        for expression in ("UpdateExpression", "ConditionExpression", "ProjectionExpression"):
            attributes |= expression_attributes(params.get(expression), names)
        # A GetItem without a projection reads every attribute: IAM sees no attribute list then.
        if operation != "GetItem" or params.get("ProjectionExpression"):
            summary["attributes"] = sorted(attributes)
        if params.get("ReturnValues"):
            summary["return_values"] = params["ReturnValues"]
    return summary


def summarize(
    service: str,
    operation: str,
    params: dict[str, Any],
    *,
    presign: bool,
    partition_keys: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """What IAM needs to know of one call (see the module docstring)."""
    summary: dict[str, Any] = {"service": service, "operation": operation}
    if presign:
        summary["presign"] = True
    if service == "dynamodb":
        keys = table_partition_keys() if partition_keys is None else partition_keys
        summary.update(_dynamodb(operation, params, keys))
    elif service == "s3":
        summary["bucket"] = params.get("Bucket")
        if "Key" in params:
            summary["key"] = params["Key"]
        if params.get("VersionId"):
            summary["version"] = True
        if "CopySource" in params:
            summary["copy_source"] = params["CopySource"]
        if "Prefix" in params:
            summary["prefix"] = params["Prefix"]
        if operation == "DeleteObjects":  # IAM authorizes s3:DeleteObject on each key
            summary["keys"] = sorted(str(o["Key"]) for o in params.get("Delete", {}).get("Objects", []))
    elif service == "sqs":
        summary["queue_url"] = params.get("QueueUrl") or params.get("QueueName")
    elif service == "lambda":
        summary["function"] = params.get("FunctionName")
    else:
        summary["params"] = sorted(params)
    return summary


# --- the recording ---------------------------------------------------------------------------------
@dataclass
class Recording:
    invocations: dict[str, int] = field(default_factory=dict)
    calls: dict[str, set[str]] = field(default_factory=dict)
    unattributed: set[str] = field(default_factory=set)
    # Settings (as environment variable names) each function ran with: resolves template names.
    names: dict[str, set[str]] = field(default_factory=dict)
    regions: set[str] = field(default_factory=set)
    # Of the code as this session imported it, not as it is when the recording is written.
    fingerprint: str = field(default_factory=fingerprint)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoked(self, function: str) -> None:
        from datasets_core.config import settings

        current = settings()
        with self.lock:
            self.invocations[function] = self.invocations.get(function, 0) + 1
            for setting in msgspec.structs.fields(current):
                value = getattr(current, setting.name)
                if isinstance(value, str) and value:
                    self.names.setdefault(setting.name.upper(), set()).add(value)

    def record(self, summary: dict[str, Any], region: str | None) -> None:
        text = json.dumps(summary, sort_keys=True, default=str)
        function = CURRENT_FUNCTION.get()
        with self.lock:
            if region:
                self.regions.add(region)
            if function == TEST_ACTOR:
                return
            if function is not None:
                self.calls.setdefault(function, set()).add(text)
            elif threading.current_thread() is not threading.main_thread():
                self.unattributed.add(text)

    def to_json(self, *, complete: bool, why_incomplete: str) -> dict[str, Any]:
        from moto.core import DEFAULT_ACCOUNT_ID

        with self.lock:
            return {
                "format": FORMAT_VERSION,
                "fingerprint": self.fingerprint,
                "complete": complete,
                "why_incomplete": why_incomplete,
                "account": DEFAULT_ACCOUNT_ID,
                "regions": sorted(self.regions),
                "names": {k: sorted(v) for k, v in sorted(self.names.items())},
                "invocations": dict(sorted(self.invocations.items())),
                "calls": {fn: [json.loads(c) for c in sorted(cs)] for fn, cs in sorted(self.calls.items())},
                "unattributed": [json.loads(c) for c in sorted(self.unattributed)],
            }

    def write(self, path: Path = RECORDING, *, complete: bool, why_incomplete: str = "") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(".tmp")
        staging.write_text(
            json.dumps(self.to_json(complete=complete, why_incomplete=why_incomplete), indent=1)
        )
        staging.replace(path)


RECORDER = Recording()


def save(progress: Progress, path: Path = RECORDING) -> None:
    """Write the recording, unless it is partial and a complete one of the same code is there."""
    why = progress.why_incomplete()
    if why and path.exists():
        try:
            existing = json.loads(path.read_text())
        except ValueError:
            existing = {}
        if existing.get("complete") and existing.get("fingerprint") == RECORDER.fingerprint:
            return  # a partial run of the same code records a subset of the same calls
    RECORDER.write(path, complete=not why, why_incomplete=why)


_last_function: list[str | None] = [None]


def call_as(function: str, handler: Callable[[Any, Any], Any], event: Any, context: Any) -> Any:
    """Run ``handler`` as the Lambda function ``function``: its AWS calls are recorded as its own.

    Lambda functions never share a container, but the tests run every handler in one process.
    The per-container caches holding data (API keys, the rate limiter's plans and slices) are
    emptied whenever the invoked function changes, so each function makes (and is recorded
    making) its own key lookup and rate count instead of riding on the previous function's.
    """
    from datasets_core import auth, ratelimit

    if _last_function[0] != function:
        auth.forget_cached_keys()
        ratelimit.forget()
        _last_function[0] = function
    RECORDER.invoked(function)
    token = CURRENT_FUNCTION.set(function)
    try:
        return handler(event, context)
    finally:
        CURRENT_FUNCTION.reset(token)


@contextmanager
def as_the_test() -> Iterator[None]:
    """Calls made here are the test's own, not the function being invoked around them."""
    token = CURRENT_FUNCTION.set(TEST_ACTOR)
    try:
        yield
    finally:
        CURRENT_FUNCTION.reset(token)


def invoke(function: str, event: Any, context: Any) -> Any:
    """Run ``functions/<function>/handler.py`` as that function (workers fed by the tests)."""
    handler = importlib.import_module(f"{function}.handler").handler
    return call_as(function, handler, event, context)


# --- hooks ---------------------------------------------------------------------------------------------
_installed: list[tuple[Any, str, Any]] = []


def install() -> None:
    """Hook botocore and ThreadPoolExecutor (idempotent)."""
    if _installed:
        return
    original_emit = botocore.client.BaseClient._emit_api_params

    def _emit_api_params(self: Any, api_params: Any, operation_model: Any, context: Any) -> Any:
        params = original_emit(self, api_params, operation_model, context)
        service = self.meta.service_model.service_name
        presign = bool((context or {}).get("is_presign_request"))
        RECORDER.record(
            summarize(service, operation_model.name, params or {}, presign=presign), self.meta.region_name
        )
        return params

    original_submit = concurrent.futures.ThreadPoolExecutor.submit

    def submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return original_submit(self, contextvars.copy_context().run, fn, *args, **kwargs)

    for owner, name, replacement in (
        (botocore.client.BaseClient, "_emit_api_params", _emit_api_params),
        (concurrent.futures.ThreadPoolExecutor, "submit", submit),
    ):
        _installed.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)


def uninstall() -> None:
    while _installed:
        owner, name, original = _installed.pop()
        setattr(owner, name, original)


def integration_test_files(folder: Path) -> Iterator[Path]:
    yield from sorted(folder.glob("test_*.py"))


@dataclass
class Progress:
    """Whether this session runs the whole integration suite, and how far it got."""

    folder: Path
    expected: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    deselected: int = 0
    files_missing: list[str] = field(default_factory=list)

    def collected(self, nodeids_and_paths: Iterable[tuple[str, Path]]) -> None:
        paths = set()
        for nodeid, path in nodeids_and_paths:
            self.expected.add(nodeid)
            paths.add(Path(path).resolve())
        self.files_missing = [p.name for p in integration_test_files(self.folder) if p.resolve() not in paths]

    def done(self) -> bool:
        return bool(self.expected) and self.finished >= self.expected

    def why_incomplete(self) -> str:
        reasons = []
        if self.files_missing:
            reasons.append(f"test files not collected: {', '.join(self.files_missing)}")
        if self.deselected:
            reasons.append(f"{self.deselected} integration tests deselected (-k/--deselect/--lf)")
        if not self.finished >= self.expected:
            reasons.append(f"{len(self.expected - self.finished)} integration tests did not run")
        if self.failed:
            reasons.append(f"{len(self.failed)} integration tests failed, e.g. {sorted(self.failed)[0]}")
        return "; ".join(reasons)
