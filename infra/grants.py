"""IAM statements for the capabilities of ``functions/routes.py`` (API routes and workers alike).

One capability = one statement naming exactly the actions the code calls, on one resource.
CDK's ``grant_read_data``/``grant_read_write_data``/``grant_read`` helpers are not used: they
add actions no function calls (Scan, BatchGetItem, DescribeTable, streams, GetBucket*, List*),
which ``tests/infra/test_iam_calls.py`` would report as unused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs

from infra.storage import Storage
from routes import (
    ANALYTICS_INVOKE,
    DROP_PUT,
    DROP_READ,
    IDEMPOTENCY,
    IMPORT_SEND,
    MAINTENANCE_SEND,
    META_CONDITION,
    META_DELETE,
    META_GET,
    META_INDEX,
    META_PUT,
    META_QUERY,
    META_UPDATE,
    REPLICA_DELETE,
    REPLICA_GET,
    REPLICA_LIST,
    REPLICA_PUT,
    ROWS_BATCH_GET,
    ROWS_BATCH_WRITE,
    ROWS_DELETE,
    ROWS_GET,
    ROWS_INDEX,
    ROWS_PUT,
    ROWS_QUERY,
    ROWS_UPDATE,
)

# The key lookup of every authenticated route touches only API-key items (pk KEY#<id>), and
# its update only stamps last_used_at (dynamodb:Attributes lists every top-level attribute a
# request names, keys included), returning no old values.
KEY_ITEMS = "KEY#*"
KEY_TOUCH_ATTRIBUTES = ("pk", "sk", "last_used_at")
# The per-key rate limit (datasets_core/ratelimit.py, store/ratelimits.py) of every
# authenticated route: read the workspace's rate plan, add to a key's window counter (one
# conditional ADD returning the new count) — RATE# items only, counter attributes only.
RATE_PLAN_ITEMS = "RATE#WS#*"
RATE_COUNTER_ITEMS = "RATE#KEY#*"
RATE_COUNTER_ATTRIBUTES = ("pk", "sk", "granted", "expires_at_epoch")
# Powertools' idempotency writes its record conditionally and reads a conflicting one from the
# failed write (ReturnValuesOnConditionCheckFailure=ALL_OLD); its GetItem fallback serves stores
# that do not return the old item, which DynamoDB always does.
IDEMPOTENCY_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


@dataclass(frozen=True)
class Targets:
    storage: Storage
    import_queue: sqs.IQueue
    maintenance_queue: sqs.IQueue
    analytics: lambda_.IFunction | None = None  # set once the analytics function exists


def _table(capability: str, targets: Targets) -> tuple[list[str], list[str]] | None:
    """(actions, resources) of a ``<table>[/index]:<Action>`` capability."""
    resource, _, action = capability.partition(":")
    table_name, _, index = resource.partition("/")
    tables = {"meta": targets.storage.meta, "rows": targets.storage.rows}
    if table_name not in tables or not action:
        return None
    arn = tables[table_name].table_arn
    return [f"dynamodb:{action}"], [f"{arn}/index/*" if index else arn]


def statement(capability: str, targets: Targets) -> iam.PolicyStatement:
    storage = targets.storage
    table = _table(capability, targets)
    if table is not None:
        actions, resources = table
        return iam.PolicyStatement(actions=actions, resources=resources)
    objects = storage.bucket.arn_for_objects(f"{storage.drop_prefix}*")
    replica = storage.replica
    fixed: dict[str, tuple[list[str], list[str]]] = {
        REPLICA_GET: (["s3:GetObject"], [replica.arn_for_objects("*")]),
        REPLICA_PUT: (["s3:PutObject"], [replica.arn_for_objects("*")]),
        REPLICA_DELETE: (["s3:DeleteObject"], [replica.arn_for_objects(f"{storage.replica_prefix}*")]),
        REPLICA_LIST: (["s3:ListBucket"], [replica.bucket_arn]),
        IDEMPOTENCY: (list(IDEMPOTENCY_ACTIONS), [storage.idempotency.table_arn]),
        DROP_PUT: (["s3:PutObject"], [objects]),
        # The drop bucket is versioned: S3 events name the version, the import reads exactly it
        # (an event without one — an unversioned bucket — is read by ETag: s3:GetObject).
        DROP_READ: (["s3:GetObject", "s3:GetObjectVersion"], [objects]),
        IMPORT_SEND: (["sqs:SendMessage"], [targets.import_queue.queue_arn]),
        MAINTENANCE_SEND: (["sqs:SendMessage"], [targets.maintenance_queue.queue_arn]),
    }
    if capability == ANALYTICS_INVOKE:
        assert targets.analytics is not None, "the analytics function is created before its callers"
        return iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[targets.analytics.function_arn]
        )
    if capability not in fixed:
        raise ValueError(f"unknown capability {capability!r} (functions/routes.py lists them)")
    actions, resources = fixed[capability]
    return iam.PolicyStatement(actions=actions, resources=resources)


def key_lookup(targets: Targets) -> list[iam.PolicyStatement]:
    """What the auth layer of every authenticated route needs: read a key, stamp last_used_at,
    read the workspace's rate plan and count the key's requests."""
    meta = targets.storage.meta.table_arn
    only_keys = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [KEY_ITEMS]}}
    return [
        *_rate_limit(meta),
        iam.PolicyStatement(actions=["dynamodb:GetItem"], resources=[meta], conditions=only_keys),
        iam.PolicyStatement(
            actions=["dynamodb:UpdateItem"],
            resources=[meta],
            conditions={
                **only_keys,
                "ForAllValues:StringEquals": {"dynamodb:Attributes": list(KEY_TOUCH_ATTRIBUTES)},
                "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
            },
        ),
    ]


def _rate_limit(meta: str) -> list[iam.PolicyStatement]:
    return [
        iam.PolicyStatement(
            actions=["dynamodb:GetItem"],
            resources=[meta],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [RATE_PLAN_ITEMS]}},
        ),
        iam.PolicyStatement(
            actions=["dynamodb:UpdateItem"],
            resources=[meta],
            conditions={
                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [RATE_COUNTER_ITEMS]},
                "ForAllValues:StringEquals": {"dynamodb:Attributes": list(RATE_COUNTER_ATTRIBUTES)},
                "StringEquals": {"dynamodb:ReturnValues": ["UPDATED_NEW"]},
            },
        ),
    ]


def grant(
    fn: lambda_.Function, capabilities: Iterable[str], targets: Targets, *, authenticated: bool
) -> None:
    """Add one statement per capability (and the key lookup when ``authenticated``) to ``fn``'s role."""
    statements = [statement(c, targets) for c in dict.fromkeys(capabilities)]
    if authenticated:
        statements += key_lookup(targets)
    for s in statements:
        fn.add_to_role_policy(s)


ALL_CAPABILITIES = (
    META_CONDITION,
    ROWS_BATCH_GET,
    REPLICA_GET,
    REPLICA_PUT,
    REPLICA_DELETE,
    REPLICA_LIST,
    ANALYTICS_INVOKE,
    META_GET,
    META_QUERY,
    META_INDEX,
    META_PUT,
    META_UPDATE,
    META_DELETE,
    ROWS_GET,
    ROWS_QUERY,
    ROWS_INDEX,
    ROWS_PUT,
    ROWS_UPDATE,
    ROWS_DELETE,
    ROWS_BATCH_WRITE,
    IDEMPOTENCY,
    DROP_PUT,
    DROP_READ,
    IMPORT_SEND,
    MAINTENANCE_SEND,
)
