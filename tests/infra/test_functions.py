"""One function per route (plus the queue workers and the analytics function), their settings,
and least-privilege grants."""

from __future__ import annotations

import json

import pytest

from infra import grants, tables
from infra.api import handler_for
from routes import (
    ANALYTICS_INVOKE,
    DROP_PUT,
    IDEMPOTENCY,
    IMPORT_SEND,
    MAINTENANCE_SEND,
    REPLICA_DELETE,
    REPLICA_GET,
    REPLICA_LIST,
    REPLICA_PUT,
    ROUTES,
    ROWS_BATCH_WRITE,
    ROWS_DELETE,
    ROWS_PUT,
    ROWS_UPDATE,
    Route,
)
from tests.infra.cfn import Synth

WORKERS = ("import_file", "maintenance", "analytics")
ALL_FUNCTIONS = (*ROUTES, *WORKERS)

WRITE_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
ROWS_WRITES = {ROWS_PUT, ROWS_UPDATE, ROWS_DELETE, ROWS_BATCH_WRITE}
# What an SQS event source mapping needs on its queue (granted by CDK's SqsEventSource).
CONSUME = {
    "sqs:ReceiveMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueUrl",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
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
    # Core layer, plus Swagger UI's files for the one function serving them; pyarrow stays out.
    layers = [{"Ref": synth.logical_id(synth.stack.core_layer)}]
    if function == "docs_asset":
        layers.append({"Ref": synth.logical_id(synth.stack.docs_layer)})
    assert props["Layers"] == layers


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
    columnar = [
        {"Ref": synth.logical_id(synth.stack.core_layer)},
        {"Ref": synth.logical_id(synth.stack.imports_layer)},
    ]
    # Jobs (purges, backfills, compaction) checkpoint and continue; compaction reads snapshots.
    maintenance = synth.function("maintenance")["Properties"]
    assert (maintenance["MemorySize"], maintenance["Timeout"]) == (3008, 900)
    assert maintenance["Layers"] == columnar
    # The analytics function answers API calls (29 s behind API Gateway) from snapshots in memory.
    analytics = synth.function("analytics")["Properties"]
    assert (analytics["MemorySize"], analytics["Timeout"]) == (3008, 28)
    # Exports stream to S3 as they are written (replica/upload.py): no disk beyond the default.
    assert "EphemeralStorage" not in analytics
    assert analytics["Layers"] == columnar


def test_log_groups_keep_one_month(synth: Synth) -> None:
    groups = synth.of_type("AWS::Logs::LogGroup")
    for function in ALL_FUNCTIONS:
        ref = synth.function(function)["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[ref]["Properties"]["RetentionInDays"] == 30


def test_routes_name_only_known_capabilities() -> None:
    for route in ROUTES.values():
        assert set(route.grants) <= set(grants.ALL_CAPABILITIES), route.function


@pytest.mark.parametrize("route", ROUTES.values(), ids=lambda r: r.function)
def test_route_roles_hold_exactly_their_capabilities(synth: Synth, route: Route) -> None:
    # Given a route's capabilities, when reading its function's role,
    fn = route.function
    statements = synth.statements(fn)
    meta_updates = [s for s in statements if "dynamodb:UpdateItem" in _as_list(s["Action"])]
    # then the key lookup of authenticated routes updates only last_used_at of KEY# items, and
    # their rate limit only the counter attributes of RATE#KEY# items (reading RATE#WS# plans),
    conditioned = [s for s in statements if "Condition" in s]
    if route.scope is None:
        assert conditioned == []
    else:
        meta = {"Fn::GetAtt": [tables.META.logical_id, "Arn"]}
        [touch, counter] = sorted(
            (s for s in meta_updates if "Condition" in s),
            key=lambda s: s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"][0],
        )
        assert touch["Resource"] == counter["Resource"] == meta
        assert touch["Condition"] == {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["KEY#*"]},
            "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "last_used_at"]},
            "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
        }
        assert counter["Condition"] == {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["RATE#KEY#*"]},
            "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "granted", "expires_at_epoch"]},
            "StringEquals": {"dynamodb:ReturnValues": ["UPDATED_NEW"]},
        }
        reads = sorted(
            s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
            for s in conditioned
            if s["Action"] == "dynamodb:GetItem"
        )
        assert reads == [["KEY#*"], ["RATE#WS#*"]]
    # and apart from logs, tracing and the key lookup, the role allows exactly its capabilities.
    data = {
        (action, _compact(resource))
        for s in statements
        if "Condition" not in s
        for action in _as_list(s["Action"])
        if not action.startswith(("logs:", "xray:"))
        for resource in _as_list(s["Resource"])
    }
    assert data == expected_permissions(synth, route.grants)
    # Nobody writes rows without a rows write capability; only a commit of a previewed import
    # sends to the import queue.
    rows_writes = actions_on(synth, fn, tables.ROWS.logical_id) & WRITE_ACTIONS
    assert bool(rows_writes) == bool(set(route.grants) & ROWS_WRITES), rows_writes
    sends = actions_on(synth, fn, synth.logical_id(synth.stack.imports.queue))
    assert sends == ({"sqs:SendMessage"} if fn == "commit_import" else set())
    puts = {r for a, r in synth.permissions(fn) if a == "s3:PutObject"}
    assert all(r.endswith('"/drop/*"]]}') for r in puts) and bool(puts) == (DROP_PUT in route.grants)


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_functions_write_only_their_own_log_group(synth: Synth, function: str) -> None:
    log_group = synth.function(function)["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    logs = [
        s for s in synth.statements(function) if any(a.startswith("logs:") for a in _as_list(s["Action"]))
    ]
    assert logs == [
        {
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [log_group, "Arn"]},
        }
    ]
    role = synth.function(function)["Properties"]["Role"]["Fn::GetAtt"][0]
    assert "ManagedPolicyArns" not in synth.resources[role]["Properties"]


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_wildcard_resources_are_xray_only(synth: Synth, function: str) -> None:
    assert {a for a, r in synth.permissions(function) if r == "*"} <= {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def test_import_function_grants(synth: Synth) -> None:
    fn = "import_file"
    assert actions_on(synth, fn, tables.IDEMPOTENCY.logical_id) == set()
    # Object reads of the drop bucket (of the object S3 announced) only under drop/; listing only
    # under drop/.
    drop = synth.logical_id(synth.stack.storage.bucket)
    reads = {(a, r) for a, r in synth.permissions(fn) if a.startswith("s3:") and f'"{drop}"' in r}
    objects = {r for _, r in reads if "Fn::Join" in r}
    assert objects and all(r.endswith('"/drop/*"]]}') for r in objects), objects
    assert {a for a, _ in reads} == {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"}
    # Staging parts and snapshot parts in the replica bucket.
    replica = actions_on(synth, fn, synth.logical_id(synth.stack.storage.replica))
    assert replica == {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"}
    [listing] = [
        s for s in synth.statements(fn) if s["Action"] == "s3:ListBucket" and f'"{drop}"' in json.dumps(s)
    ]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["drop/*"]}}
    assert actions_on(synth, fn, synth.logical_id(synth.stack.imports.queue)) == {"sqs:SendMessage"} | CONSUME
    # A replace import queues the purge of the old generation (or a failed file's dataset) there.
    maintenance_queue = actions_on(synth, fn, synth.logical_id(synth.stack.imports.maintenance_queue))
    assert maintenance_queue == {"sqs:SendMessage"}


def test_maintenance_function_grants(synth: Synth) -> None:
    fn = "maintenance"
    assert actions_on(synth, fn, tables.IDEMPOTENCY.logical_id) == set()
    assert actions_on(synth, fn, "DropBucket") == set()
    maintenance_queue = actions_on(synth, fn, synth.logical_id(synth.stack.imports.maintenance_queue))
    assert maintenance_queue == CONSUME | {"sqs:SendMessage"}  # continuations of its jobs
    rows = actions_on(synth, fn, tables.ROWS.logical_id)
    assert "dynamodb:PutItem" not in rows and "dynamodb:DeleteItem" not in rows


def expected_permissions(synth: Synth, capabilities: tuple[str, ...]) -> set[tuple[str, str]]:
    """(action, resource) pairs the capabilities stand for (see infra/grants.py)."""
    arn = {
        "meta": {"Fn::GetAtt": [tables.META.logical_id, "Arn"]},
        "rows": {"Fn::GetAtt": [tables.ROWS.logical_id, "Arn"]},
    }
    drop_objects = {"Fn::Join": ["", [{"Fn::GetAtt": ["DropBucket", "Arn"]}, "/drop/*"]]}
    replica_arn = {"Fn::GetAtt": ["ReplicaBucket", "Arn"]}
    replica = {
        REPLICA_GET: ("s3:GetObject", {"Fn::Join": ["", [replica_arn, "/*"]]}),
        REPLICA_PUT: ("s3:PutObject", {"Fn::Join": ["", [replica_arn, "/*"]]}),
        REPLICA_DELETE: ("s3:DeleteObject", {"Fn::Join": ["", [replica_arn, "/replica/*"]]}),
        REPLICA_LIST: ("s3:ListBucket", replica_arn),
        ANALYTICS_INVOKE: (
            "lambda:InvokeFunction",
            {"Fn::GetAtt": [synth.function_id("analytics"), "Arn"]},
        ),
    }
    queue = {"Fn::GetAtt": [synth.logical_id(synth.stack.imports.maintenance_queue), "Arn"]}
    import_queue = {"Fn::GetAtt": [synth.logical_id(synth.stack.imports.queue), "Arn"]}
    pairs = set()
    for capability in capabilities:
        resource, _, action = capability.partition(":")
        table, _, index = resource.partition("/")
        if capability == IDEMPOTENCY:
            idem = _compact({"Fn::GetAtt": [tables.IDEMPOTENCY.logical_id, "Arn"]})
            pairs |= {(a, idem) for a in grants.IDEMPOTENCY_ACTIONS}
        elif capability == DROP_PUT:
            pairs.add(("s3:PutObject", _compact(drop_objects)))
        elif capability == MAINTENANCE_SEND:
            pairs.add(("sqs:SendMessage", _compact(queue)))
        elif capability in replica:
            action, target = replica[capability]
            pairs.add((action, _compact(target)))
        elif capability == IMPORT_SEND:
            pairs.add(("sqs:SendMessage", _compact(import_queue)))
        else:
            target = {"Fn::Join": ["", [arn[table], "/index/*"]]} if index else arn[table]
            pairs.add((f"dynamodb:{action}", _compact(target)))
    return pairs


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def _compact(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
