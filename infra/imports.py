"""Background work: S3 drop folder -> import queue -> ``import_file``; maintenance queue -> ``maintenance``.

Both queues have a dead-letter queue (after 5 failed receives) and a visibility timeout of
six times their function's timeout, as AWS recommends for SQS event sources, so a message is
never redelivered while a run that holds it may still be going.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import grants
from infra.api import python_function
from infra.storage import Storage
from routes import (
    DROP_READ,
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
    ROWS_GET,
    ROWS_INDEX,
    ROWS_PUT,
    ROWS_QUERY,
    ROWS_UPDATE,
)

IMPORT_FUNCTION = "import_file"
MAINTENANCE_FUNCTION = "maintenance"

# What the workers' code calls (the same capabilities as the routes of functions/routes.py).
IMPORT_CAPABILITIES = (
    META_GET,
    META_QUERY,  # the dataset with its counters
    META_CONDITION,  # chunks count only while their generation is live; upserts unless a replace began
    ROWS_GET,  # upserts: the row a uniqueness item names
    ROWS_UPDATE,  # upserts: matching rows updated in place
    ROWS_QUERY,  # a redelivered chunk: what the change log says since the import began
    ROWS_BATCH_GET,  # a redelivered chunk: which of its rows are there
    META_INDEX,  # the dataset's imports
    META_PUT,  # import records; a dataset created by its first dropped file
    META_UPDATE,  # leases, checkpoints, the completion set, counters, generation swaps
    META_DELETE,  # the dataset a failed file created is removed
    ROWS_PUT,  # upserts; the change log
    ROWS_INDEX,  # upserts find their rows by index
    ROWS_BATCH_WRITE,  # chunks; the rows of a failed import are deleted by key
    DROP_READ,  # the dropped file, exactly the object the S3 event names
    REPLICA_GET,  # staging parts; a snapshot's parts copied into the import's version
    REPLICA_PUT,  # staging parts, the import's snapshot parts
    REPLICA_DELETE,  # staging parts once written; a failed import's snapshot parts
    REPLICA_LIST,  # ... found by listing their folder
    IMPORT_SEND,  # one message per chunk; continuations of validation
    MAINTENANCE_SEND,  # purges: a replaced generation, a dataset a failed file created
)
MAINTENANCE_CAPABILITIES = (
    META_QUERY,  # the dataset with its counters, its versions
    META_INDEX,  # a deleted dataset's import records
    META_PUT,  # version records
    META_UPDATE,  # leases, checkpoints, index states, the replica pointer
    META_DELETE,  # versions past retention, a deleted dataset's import records
    ROWS_QUERY,  # walks a dataset's partitions, its change log
    ROWS_UPDATE,  # index entries of a backfill
    ROWS_BATCH_GET,  # rows changed since a snapshot (compaction)
    ROWS_BATCH_WRITE,  # purges, folded change-log items
    REPLICA_GET,  # the snapshot a compaction starts from
    REPLICA_PUT,  # the new snapshot's files
    REPLICA_DELETE,  # versions past retention, a deleted dataset's files
    REPLICA_LIST,  # ... found by listing their folder
    MAINTENANCE_SEND,  # a job's continuation
)

IMPORT_TIMEOUT = Duration.minutes(15)
# At most this many imports run at once, whatever is dropped: the import function holds this
# much of the account's Lambda concurrency for itself and can never take more, so a burst of
# dropped files queues up instead of starving the API functions (and DynamoDB's capacity).
# The SQS event source is capped to the same number, so it does not poll messages it would
# only see throttled. Deploying needs an account concurrency quota of at least 100 + this.
#
# Chunks of one big file are written by up to this many invocations at once, each one writer
# (BatchWriteItem, 25 rows a request, ~1,500-2,500 rows/s): the setting ties the import's write
# rate to the rows table's capacity. With on-demand capacity a new table absorbs ~4,000 write
# units/s at once (more after it grew); 5 writers of 1 KB rows with 2 indexes stay below it.
# Raise it together with the table's capacity (and the account's concurrency quota).
IMPORT_CONCURRENCY = 5
IMPORT_MEMORY_MB = 2048
# One message per invocation: a chunk message is a chunk's worth of work, so a batch of them
# would be written one after the other instead of side by side.
IMPORT_BATCH_SIZE = 1
IMPORT_TMP_MB = 10240  # Lambda's maximum ephemeral storage
# Long enough for a compaction chunk (250,000 rows) with room to spare; jobs continue in a new
# invocation well before it.
MAINTENANCE_TIMEOUT = Duration.minutes(15)
MAINTENANCE_MEMORY_MB = 3008
# One job per invocation: a job runs until close to the timeout, then re-enqueues its continuation.
MAINTENANCE_BATCH_SIZE = 1

VISIBILITY_FACTOR = 6
MAX_RECEIVE_COUNT = 5
RETENTION = Duration.days(14)  # the SQS maximum, for work and dead letters alike


def queue_with_dlq(
    scope: Construct, construct_id: str, *, consumer_timeout: Duration
) -> tuple[sqs.Queue, sqs.Queue]:
    """An SSE, SSL-only queue (visibility = 6 x ``consumer_timeout``) and its dead-letter queue."""
    dlq = sqs.Queue(
        scope,
        f"{construct_id}Dlq",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=RETENTION,
    )
    queue = sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        visibility_timeout=Duration.seconds(consumer_timeout.to_seconds() * VISIBILITY_FACTOR),
        retention_period=RETENTION,
        dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=MAX_RECEIVE_COUNT),
    )
    return queue, dlq


class Imports(Construct):
    """Import and maintenance queues (with DLQs), the S3 notification and both worker functions."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: Storage,
        code: lambda_.Code,
        core_layer: lambda_.ILayerVersion,
        imports_layer: lambda_.ILayerVersion,
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.queue, self.dlq = queue_with_dlq(self, "ImportQueue", consumer_timeout=IMPORT_TIMEOUT)
        self.maintenance_queue, self.maintenance_dlq = queue_with_dlq(
            self, "MaintenanceQueue", consumer_timeout=MAINTENANCE_TIMEOUT
        )
        storage.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.queue),
            s3.NotificationKeyFilter(prefix=storage.drop_prefix),
        )
        self.targets = grants.Targets(storage, self.queue, self.maintenance_queue)
        # Every function's environment: what it was given plus the two queue URLs.
        self.environment = {
            **environment,
            "IMPORT_QUEUE_URL": self.queue.queue_url,
            "MAINTENANCE_QUEUE_URL": self.maintenance_queue.queue_url,
        }

        fn = python_function(
            self,
            "ImportFile",
            function=IMPORT_FUNCTION,
            code=code,
            layers=[core_layer, imports_layer],
            environment=self.environment,
            memory_size=IMPORT_MEMORY_MB,
            timeout=IMPORT_TIMEOUT,
            description="Imports files dropped into the drop folder (S3 -> SQS)",
            reserved_concurrency=IMPORT_CONCURRENCY,
        )
        # A dropped file is copied to /tmp (Parquet needs random access); allow files up to ~10 GB.
        cfn_function = fn.node.default_child
        assert isinstance(cfn_function, lambda_.CfnFunction)
        cfn_function.ephemeral_storage = lambda_.CfnFunction.EphemeralStorageProperty(size=IMPORT_TMP_MB)
        grants.grant(fn, IMPORT_CAPABILITIES, self.targets, authenticated=False)
        # Lets S3 answer 404 (not 403) for a dropped file deleted before its import ran, which
        # the pipeline reports as "file gone" instead of retrying it into the dead-letter queue.
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[storage.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{storage.drop_prefix}*"]}},
            )
        )
        fn.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=IMPORT_BATCH_SIZE,
                report_batch_item_failures=True,
                max_concurrency=IMPORT_CONCURRENCY,
            )
        )
        self.import_function = fn

        fn = python_function(
            self,
            "Maintenance",
            function=MAINTENANCE_FUNCTION,
            code=code,
            layers=[core_layer, imports_layer],
            environment=self.environment,
            memory_size=MAINTENANCE_MEMORY_MB,
            timeout=MAINTENANCE_TIMEOUT,
            description="Background jobs: purges, index backfills, compaction of the replica",
        )
        grants.grant(fn, MAINTENANCE_CAPABILITIES, self.targets, authenticated=False)
        fn.add_event_source(
            sources.SqsEventSource(
                self.maintenance_queue, batch_size=MAINTENANCE_BATCH_SIZE, report_batch_item_failures=True
            )
        )
        self.maintenance_function = fn
