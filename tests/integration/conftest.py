"""Integration fixtures: handlers called with API Gateway events against moto.

The tables come from ``infra/tables.py``, the same definitions the CDK stack synthesizes.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from datasets_core import auth, aws, ratelimit
from datasets_core.config import settings
from datasets_core.logic import keys
from datasets_core.store import rows as row_store
from infra.tables import create_local_tables
from local import dispatch as local_dispatch
from local.dispatch import HttpResponse, dispatch
from local.events import LambdaContext
from tests.iam import recorder

from .import_support import FakeContext, sqs_event

ALL_SCOPES = list(auth.SCOPES)
INTEGRATION_DIR = Path(__file__).resolve().parent


# --- the IAM call recording (tests/iam): every handler runs through recorder.call_as -------------
_progress = recorder.Progress(INTEGRATION_DIR)


def _is_integration(item: pytest.Item) -> bool:
    return Path(item.path).resolve().is_relative_to(INTEGRATION_DIR)


def pytest_deselected(items: list[pytest.Item]) -> None:
    _progress.deselected += sum(1 for item in items if _is_integration(item))


def pytest_collection_finish(session: pytest.Session) -> None:
    _progress.collected((item.nodeid, item.path) for item in session.items if _is_integration(item))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid not in _progress.expected:
        return
    if report.failed:
        _progress.failed.add(report.nodeid)
    if report.when == "teardown":
        _progress.finished.add(report.nodeid)
        if _progress.done():  # the last integration test: infra tests of this session read it
            recorder.save(_progress)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _progress.finished:
        recorder.save(_progress)


@pytest.fixture(scope="session", autouse=True)
def _record_aws_calls() -> Iterator[None]:
    """Hook botocore; route every API handler the dispatcher runs through ``recorder.call_as``."""
    recorder.install()
    original = local_dispatch.handler_for

    def handler_for(route: Any) -> Any:
        return within_lambda_limit(functools.partial(recorder.call_as, route.function, original(route)))

    local_dispatch.handler_for = handler_for  # type: ignore[assignment]
    yield
    local_dispatch.handler_for = original  # type: ignore[assignment]
    recorder.uninstall()


# Lambda refuses a function's result past 6 MB (API Gateway then answers 502); moto and the
# in-process calls here do not, so every result is weighed as the Python 3.13 runtime writes it.
LAMBDA_PAYLOAD_BYTES = 6 * 1024 * 1024


def lambda_payload_bytes(result: Any) -> int:
    return len(json.dumps(result, ensure_ascii=False).encode())


def within_lambda_limit(handler: Any) -> Any:
    def call(event: Any, context: Any) -> Any:
        result = handler(event, context)
        size = lambda_payload_bytes(result)
        assert size <= LAMBDA_PAYLOAD_BYTES, f"Lambda would refuse this {size:,}-byte result"
        return result

    return call


class Client:
    """A tiny HTTP-shaped client over ``dispatch`` (the same path the local server takes)."""

    def __init__(self, key: str | None) -> None:
        self.key = key

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: str | bytes | None = None,
        params: dict[str, Any] | list[tuple[str, str]] | str | None = None,
        headers: dict[str, str] | None = None,
        key: str | None = None,
    ) -> HttpResponse:
        all_headers = {"Content-Type": "application/json"}
        use_key = key if key is not None else self.key
        if use_key:
            all_headers["Authorization"] = f"Bearer {use_key}"
        all_headers.update(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
        query = params if isinstance(params, str) else urlencode(params or {}, doseq=True)
        return dispatch(method, "/v1" + path, query_string=query, headers=all_headers, body=body)

    def get(self, path: str, **kw: Any) -> HttpResponse:
        return self.request("GET", path, **kw)

    def post(self, path: str, json_body: Any = None, **kw: Any) -> HttpResponse:
        return self.request("POST", path, json_body=json_body, **kw)

    def patch(self, path: str, json_body: Any = None, **kw: Any) -> HttpResponse:
        return self.request("PATCH", path, json_body=json_body, **kw)

    def put(self, path: str, json_body: Any = None, **kw: Any) -> HttpResponse:
        return self.request("PUT", path, json_body=json_body, **kw)

    def delete(self, path: str, json_body: Any = None, **kw: Any) -> HttpResponse:
        return self.request("DELETE", path, json_body=json_body, **kw)


# AWS answers each request atomically; moto's in-process backends do not (a request reading an
# item another thread is updating fails with "dictionary changed size during iteration"). Tests
# that race requests on threads, and the functions' own thread pools, get AWS's guarantee: one
# moto request at a time (the local stack does the same for DynamoDB, local/dynamodb.py).
_MOTO_REQUEST_LOCK = threading.RLock()
_moto_process_request = BotocoreStubber.process_request


def _one_request_at_a_time(self: BotocoreStubber, request: Any) -> Any:
    with _MOTO_REQUEST_LOCK:
        return _moto_process_request(self, request)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh moto account with every table, the drop bucket and the queues."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    # Tests force interleavings themselves: no purge delay, no change-log margin.
    monkeypatch.setenv("PURGE_DELAY_SECONDS", "0")
    # Tests call handlers back to back with one key: the per-key limit (still counted, its
    # calls recorded) is raised out of their way; tests of the limit set a workspace's plan.
    monkeypatch.setenv("DEFAULT_RATE_LIMIT", "1000000")
    monkeypatch.setenv("CUT_MARGIN_SECONDS", "0")
    monkeypatch.setattr(BotocoreStubber, "process_request", _one_request_at_a_time)
    with mock_aws():
        sqs = boto3.client("sqs")
        monkeypatch.setenv("IMPORT_QUEUE_URL", sqs.create_queue(QueueName="datasets-import")["QueueUrl"])
        monkeypatch.setenv(
            "MAINTENANCE_QUEUE_URL", sqs.create_queue(QueueName="datasets-maintenance")["QueueUrl"]
        )
        settings.cache_clear()
        aws.reset()
        auth.forget_cached_keys()
        ratelimit.forget()
        create_local_tables(boto3.client("dynamodb"))
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=settings().drop_bucket)
        # Versioned like the stack's drop bucket: S3 events then name the object version, and
        # the import reads exactly that version (s3:GetObjectVersion on AWS).
        s3.put_bucket_versioning(Bucket=settings().drop_bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.create_bucket(Bucket=settings().replica_bucket)
        yield
        settings.cache_clear()
        aws.reset()
        auth.forget_cached_keys()
        ratelimit.forget()


@pytest.fixture(autouse=True)
def analytics_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """API functions call the analytics function through ``datasets_core.invoke.invoke``
    (Lambda's Invoke API); here it runs in this process, with the payload serialized as
    Lambda would, and its answer held to Lambda's 6 MB."""
    from datasets_core import invoke, jsonutil

    def invoke_in_process(function_name: str, payload: dict[str, Any]) -> dict[str, Any]:
        assert function_name == settings().analytics_function_name
        # The caller's Invoke is an AWS call its role must allow: record it as botocore would.
        request = {"FunctionName": function_name, "InvocationType": "RequestResponse"}
        recorder.RECORDER.record(recorder.summarize("lambda", "Invoke", request, presign=False), None)
        event = json.loads(json.dumps(payload))  # Lambda hands the payload over as JSON
        answer = within_lambda_limit(functools.partial(recorder.invoke, "analytics"))(
            event, LambdaContext("analytics")
        )
        return dict(jsonutil.loads(json.loads(json.dumps(answer))["json"]))

    monkeypatch.setattr(invoke, "invoke", invoke_in_process)


def run_maintenance(max_rounds: int = 200) -> list[str]:
    """Run the maintenance function on every queued job message, continuations included, until
    the queue is empty (as its SQS event source would); the outcome of each message."""
    outcomes: list[str] = []
    for _ in range(max_rounds):
        ran = maintenance_round()
        if not ran:
            return outcomes
        outcomes += ran
    raise AssertionError("maintenance did not settle")


def maintenance_round(remaining_ms: int | None = None) -> list[str]:
    """One delivery of each message now queued. ``remaining_ms``: the Lambda time each run has
    when it starts; after that its clock reads a quarter of it, below the job engine's margin
    (half of a short run), so the run does one step and queues its continuation."""
    outcomes: list[str] = []
    for task in queued_maintenance():
        event = sqs_event(json.dumps(task), queue="datasets-maintenance")
        context = FakeContext(function_name="maintenance")
        if remaining_ms is not None:
            context.remaining = [remaining_ms, remaining_ms // 4]
        result = recorder.invoke("maintenance", event, context)
        outcomes.append("failed" if result["batchItemFailures"] else "done")
    return outcomes


def queued_maintenance() -> list[dict[str, Any]]:
    """Take the tasks waiting on the maintenance queue (what its worker would receive)."""
    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=settings().maintenance_queue_url, MaxNumberOfMessages=10)
    for message in messages.get("Messages", []):
        sqs.delete_message(QueueUrl=settings().maintenance_queue_url, ReceiptHandle=message["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def make_key(workspace: str = "default", scopes: list[str] | None = None, name: str = "test") -> str:
    return keys.issue_key(workspace, name, scopes or ALL_SCOPES)["key"]


@pytest.fixture
def client(aws_env: None) -> Client:
    """A client holding a key with every scope in workspace ``default``."""
    return Client(make_key())


@pytest.fixture
def anonymous(aws_env: None) -> Client:
    return Client(None)


@pytest.fixture
def stub(client: Client, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """The rows table's client answered by a Stubber (see ``stubbing.py``); meta stays on moto."""
    monkeypatch.setattr(row_store.random, "uniform", lambda _low, _high: 0.0)  # no backoff sleeps
    stubber = Stubber(row_store.rows().meta.client)
    with stubber:
        yield stubber
