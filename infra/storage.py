"""Storage: the three DynamoDB tables (built from ``infra/tables.py``), the drop bucket and the
replica bucket (Parquet snapshots of every dataset, and exports)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import tables

DROP_PREFIX = "drop/"
DROP_BUCKET_ID = "DropBucket"
REPLICA_BUCKET_ID = "ReplicaBucket"
REPLICA_PREFIX = "replica/"
ACCESS_LOGS_BUCKET_ID = "AccessLogsBucket"
EXPORT_PREFIX = "exports/"
# Validated rows of imports waiting to be written (removed when the import ends).
STAGING_RETENTION = Duration.days(7)
# Dropped files are imported within minutes; after this they are expired (on the versioned
# bucket expiry makes them noncurrent, and noncurrent versions are removed 30 days later).
DROP_RETENTION = Duration.days(30)
EXPORT_RETENTION = Duration.days(7)
NONCURRENT_RETENTION = Duration.days(30)

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
# Tables whose data is the product: never deleted with the stack.
_RETAINED = {tables.META.logical_id, tables.ROWS.logical_id}


def _attribute(key: tuple[str, str]) -> dynamodb.Attribute:
    name, kind = key
    return dynamodb.Attribute(name=name, type=_ATTRIBUTE_TYPES[kind])


def table_from_spec(scope: Construct, spec: tables.TableSpec) -> dynamodb.Table:
    """An on-demand table with point-in-time recovery, keys, GSIs and TTL from ``spec``."""
    table = dynamodb.Table(
        scope,
        spec.logical_id,
        partition_key=_attribute(spec.partition_key),
        sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        time_to_live_attribute=spec.ttl_attribute,
        removal_policy=RemovalPolicy.RETAIN if spec.logical_id in _RETAINED else RemovalPolicy.DESTROY,
    )
    for gsi in spec.gsis:
        table.add_global_secondary_index(
            index_name=gsi.name,
            partition_key=_attribute(gsi.partition_key),
            sort_key=_attribute(gsi.sort_key) if gsi.sort_key else None,
            projection_type=dynamodb.ProjectionType(gsi.projection),
        )
    # Stable logical ids for stateful resources: refactoring constructs must never replace a table.
    table.node.default_child.override_logical_id(spec.logical_id)  # type: ignore[union-attr]
    return table


class Storage(Construct):
    """Tables ``meta``, ``rows``, ``idempotency`` and the S3 drop bucket (+ its access-log bucket)."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.tables = {spec.logical_id: table_from_spec(self, spec) for spec in tables.ALL_TABLES}
        self.meta = self.tables[tables.META.logical_id]
        self.rows = self.tables[tables.ROWS.logical_id]
        self.idempotency = self.tables[tables.IDEMPOTENCY.logical_id]
        self.drop_prefix = DROP_PREFIX
        self.export_prefix = EXPORT_PREFIX

        self.access_logs = s3.Bucket(
            self,
            "AccessLogsBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            # SSE-S3 is the only encryption a server-access-log target bucket supports.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.bucket = s3.Bucket(
            self,
            "DropBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="drop-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=NONCURRENT_RETENTION,
                    expired_object_delete_marker=True,
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                s3.LifecycleRule(id="expire-dropped-files", prefix=DROP_PREFIX, expiration=DROP_RETENTION),
            ],
            # Browsers upload straight into the drop folder with the presigned PUT URLs.
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.PUT],
                    allowed_origins=["*"],
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=3600,
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        # Snapshots are immutable files under replica/ (their versions expire by the product's
        # own retention, README "Versions"); exports are presigned downloads that expire here.
        self.replica = s3.Bucket(
            self,
            "ReplicaBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="replica-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-exports", prefix=EXPORT_PREFIX, expiration=EXPORT_RETENTION),
                # An import removes its staging parts when it ends; a crash's leftovers go here.
                s3.LifecycleRule(
                    id="expire-import-staging",
                    prefix=f"{REPLICA_PREFIX}_staging/",
                    expiration=STAGING_RETENTION,
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)
                ),
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.replica_prefix = REPLICA_PREFIX
        # Stable logical ids: the buckets hold data and are retained; never replace them by refactoring.
        for bucket, logical_id in (
            (self.access_logs, ACCESS_LOGS_BUCKET_ID),
            (self.bucket, DROP_BUCKET_ID),
            (self.replica, REPLICA_BUCKET_ID),
        ):
            bucket.node.default_child.override_logical_id(logical_id)  # type: ignore[union-attr]
