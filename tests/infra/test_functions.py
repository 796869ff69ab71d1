"""One function per route (plus the two workers), their settings, and least-privilege grants."""

from __future__ import annotations

import pytest

from infra import tables
from infra.api import handler_for
from routes import (
    DROP_PUT,
    DROP_READ,
    IDEMPOTENCY,
    MAINTENANCE_SEND,
    META_READ,
    META_WRITE,
    ROUTES,
    ROWS_READ,
    ROWS_WRITE,
    Route,
)
from tests.infra.cfn import Synth

WORKERS = ("import_file", "maintenance")
ALL_FUNCTIONS = (*ROUTES, *WORKERS)

READ_ACTIONS = {"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:Scan"}
WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
EXPECTED_ENV = {
    "META_TABLE",
    "ROWS_TABLE",
    "IDEMPOTENCY_TABLE",
    "DROP_BUCKET",
    "DROP_PREFIX",
    "EXPORT_PREFIX",
    "IMPORT_QUEUE_URL",
    "MAINTENANCE_QUEUE_URL",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
}


def actions_on(synth: Synth, function: str, logical_id: str) -> set[str]:
    """Actions ``function`` may do on the resource ``logical_id`` (or anything under its ARN)."""
    return {action for action, resource in synth.permissions(function) if f'"{logical_id}"' in resource}


def test_exactly_one_function_per_route_and_worker(synth: Synth) -> None:
    # Given the synthesized template, when functions are identified by handler,
    found = synth.functions_by_handler()
    ours = {h: ids for h, ids in found.items() if h.endswith(".handler.handler")}
    # then there is one function per route and per worker, and no other of ours.
    assert set(ours) == {handler_for(name) for name in ALL_FUNCTIONS}
    assert all(len(ids) == 1 for ids in ours.values()), ours


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_function_runtime_and_environment(synth: Synth, function: str) -> None:
    props = synth.function(function)["Properties"]
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert "LoggingConfig" in props and "LogGroup" in props["LoggingConfig"]
    env = props["Environment"]["Variables"]
    assert set(env) >= EXPECTED_ENV
    assert env["POWERTOOLS_SERVICE_NAME"] == "datasets-api"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "DatasetsApi"
    assert env["DROP_PREFIX"] == "drop/"
    assert env["META_TABLE"] == {"Ref": tables.META.logical_id}


@pytest.mark.parametrize("function", ROUTES)
def test_api_function_settings(synth: Synth, function: str) -> None:
    props = synth.function(function)["Properties"]
    assert props["MemorySize"] == 512
    assert props["Timeout"] == 29
    # Core layer only: pyarrow stays out of API functions.
    assert props["Layers"] == [{"Ref": synth.logical_id(synth.stack.core_layer)}]


def test_api_functions_share_one_code_asset(synth: Synth) -> None:
    codes = {str(synth.function(name)["Properties"]["Code"]) for name in ALL_FUNCTIONS}
    assert len(codes) == 1


def test_worker_settings(synth: Synth) -> None:
    imp = synth.function("import_file")["Properties"]
    assert (imp["MemorySize"], imp["Timeout"]) == (2048, 900)
    assert imp["Layers"] == [
        {"Ref": synth.logical_id(synth.stack.core_layer)},
        {"Ref": synth.logical_id(synth.stack.imports_layer)},
    ]
    maintenance = synth.function("maintenance")["Properties"]
    assert maintenance["Timeout"] == 300
    assert len(maintenance["Layers"]) == 1


def test_log_groups_keep_one_month(synth: Synth) -> None:
    groups = synth.of_type("AWS::Logs::LogGroup")
    for function in ALL_FUNCTIONS:
        ref = synth.function(function)["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[ref]["Properties"]["RetentionInDays"] == 30


@pytest.mark.parametrize("route", ROUTES.values(), ids=lambda r: r.function)
def test_route_grants_are_least_privilege(synth: Synth, route: Route) -> None:
    # Given a route's grants, when reading its function's IAM policy,
    fn = route.function
    grants = set(route.grants)
    meta = actions_on(synth, fn, tables.META.logical_id)
    rows = actions_on(synth, fn, tables.ROWS.logical_id)
    idem = actions_on(synth, fn, tables.IDEMPOTENCY.logical_id)
    bucket = actions_on(synth, fn, "DropBucket")
    maintenance_queue = actions_on(synth, fn, synth.logical_id(synth.stack.imports.maintenance_queue))
    import_queue = actions_on(synth, fn, synth.logical_id(synth.stack.imports.queue))

    # then meta: writes only with META_WRITE; authenticated routes read keys and touch last_used_at.
    if META_WRITE in grants:
        assert meta >= WRITE_ACTIONS
    elif META_READ in grants or route.scope is not None:
        assert meta >= READ_ACTIONS
        assert meta & WRITE_ACTIONS == ({"dynamodb:UpdateItem"} if route.scope else set())
    else:
        assert meta == set()
    # rows: nobody writes rows without ROWS_WRITE, nobody reads them without a rows grant.
    if ROWS_WRITE in grants:
        assert rows >= WRITE_ACTIONS
    elif ROWS_READ in grants:
        assert rows >= READ_ACTIONS and not rows & WRITE_ACTIONS
    else:
        assert rows == set()
    assert (idem >= WRITE_ACTIONS) if IDEMPOTENCY in grants else idem == set()
    # S3: put only under drop/, read only with DROP_READ.
    puts = {r for a, r in synth.permissions(fn) if a == "s3:PutObject"}
    if DROP_PUT in grants:
        assert puts and all(r.endswith('"/drop/*"]]}') for r in puts), puts
    else:
        assert "s3:PutObject" not in bucket
    assert ("s3:GetObject*" in bucket) == (DROP_READ in grants)
    if not grants & {DROP_PUT, DROP_READ}:
        assert bucket == set()
    # queues: send to maintenance only with MAINTENANCE_SEND; never to the import queue.
    assert ("sqs:SendMessage" in maintenance_queue) == (MAINTENANCE_SEND in grants)
    assert import_queue == set()


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_wildcard_resources_are_xray_only(synth: Synth, function: str) -> None:
    assert {a for a, r in synth.permissions(function) if r == "*"} <= {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def test_import_function_grants(synth: Synth) -> None:
    fn = "import_file"
    for spec in tables.ALL_TABLES:
        assert actions_on(synth, fn, spec.logical_id) >= WRITE_ACTIONS | READ_ACTIONS
    # Object reads only under drop/ (the bucket ARN itself is there for s3:ListBucket).
    s3_reads = {r for a, r in synth.permissions(fn) if a == "s3:GetObject*"}
    objects = {r for r in s3_reads if "Fn::Join" in r}
    assert s3_reads <= objects | {'{"Fn::GetAtt":["DropBucket","Arn"]}'}
    assert objects and all(r.endswith('"/drop/*"]]}') for r in objects), objects
    assert "s3:PutObject" not in actions_on(synth, fn, "DropBucket")
    assert "sqs:SendMessage" in actions_on(synth, fn, synth.logical_id(synth.stack.imports.queue))
    # A replace import queues the purge of the old generation on the maintenance queue.
    maintenance_queue = actions_on(synth, fn, synth.logical_id(synth.stack.imports.maintenance_queue))
    assert "sqs:SendMessage" in maintenance_queue and "sqs:ReceiveMessage" not in maintenance_queue


def test_maintenance_function_grants(synth: Synth) -> None:
    fn = "maintenance"
    for spec in (tables.META, tables.ROWS):
        assert actions_on(synth, fn, spec.logical_id) >= WRITE_ACTIONS | READ_ACTIONS
    assert actions_on(synth, fn, tables.IDEMPOTENCY.logical_id) == set()
    assert actions_on(synth, fn, "DropBucket") == set()
    maintenance_queue = actions_on(synth, fn, synth.logical_id(synth.stack.imports.maintenance_queue))
    assert {"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= maintenance_queue
