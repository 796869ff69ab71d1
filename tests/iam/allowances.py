"""Grants a function holds although its handler never makes the call: each one says why.

``tests/infra/test_iam_calls.py`` fails on any granted (action, resource) that no recorded
call needed unless an entry here covers it, and on an entry here that covers nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

# Targets: "*" (the resource is "*"), LOG_GROUP (the function's own log group), EVENT_SOURCE
# (the queue its SQS event source mapping reads), or a setting name: the resource the
# function's environment variable of that name refers to (e.g. "DROP_BUCKET").
ANY_RESOURCE = "*"
LOG_GROUP = "log-group"
EVENT_SOURCE = "event-source"


@dataclass(frozen=True)
class Allowance:
    functions: tuple[str, ...] | None  # None: every function
    actions: tuple[str, ...]
    target: str
    reason: str


ALLOWANCES: tuple[Allowance, ...] = (
    Allowance(
        None,
        ("xray:PutTraceSegments", "xray:PutTelemetryRecords"),
        ANY_RESOURCE,
        "Active tracing: Lambda sends the trace segments with the function's role; these X-Ray "
        "actions support no resource-level permissions.",
    ),
    Allowance(
        None,
        ("logs:CreateLogStream", "logs:PutLogEvents"),
        LOG_GROUP,
        "The Lambda runtime writes the function's logs (to its own log group) with its role.",
    ),
    Allowance(
        ("import_file", "maintenance"),
        (
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:GetQueueUrl",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
        ),
        EVENT_SOURCE,
        "The SQS event source mapping polls, hides and deletes the function's messages with the "
        "function's role (CDK's SqsEventSource grants exactly this set).",
    ),
    Allowance(
        ("import_file",),
        ("s3:ListBucket",),
        "DROP_BUCKET",
        "Limited to the drop prefix: without it S3 answers 403 AccessDenied instead of 404 "
        "NoSuchKey for a dropped file deleted before its import ran, and the import would retry "
        "until the dead-letter queue instead of finishing as 'file gone'.",
    ),
    Allowance(
        ("update_rows", "delete_rows"),
        ("dynamodb:GetItem",),
        "ROWS_TABLE",
        "A bulk write by 'where' re-reads a row whose conditional write failed because another "
        "request changed its 'where' columns meanwhile, to write it only if it still matches "
        "(logic/bulk_where.py); only a race on those very columns takes that path.",
    ),
    Allowance(
        ("row_changes",),
        ("dynamodb:GetItem",),
        "ROWS_TABLE",
        "A row with no audit entries (imported rows have none) is looked up to tell an untouched "
        "row (200, empty trail) from a row id that never belonged to the dataset (404).",
    ),
    Allowance(
        ("analytics",),
        ("dynamodb:PutItem",),
        "META_TABLE",
        "After reading a delta past the compaction threshold the analytics function queues a "
        "compaction: its job record; inserts usually ask first, so only a delta that grew "
        "without them (updates, deletes) takes that path.",
    ),
    Allowance(
        ("analytics",),
        ("sqs:SendMessage",),
        "MAINTENANCE_QUEUE_URL",
        "The same compaction request: the job's message (see the job record above).",
    ),
)
