"""DatasetsApiStack: a thin composition of one construct per concern.

storage (tables + drop bucket) -> imports (queues, S3 notification, import and maintenance
workers) -> api (one function + method per route) -> monitoring (alarms, dashboard).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from aws_cdk import Acknowledgment, Aws, CfnOutput, Fn, Stack, Validations
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IConstruct

from infra import tables
from infra.analytics import Analytics
from infra.api import ARCHITECTURE, RUNTIME, THROTTLE_BURST, THROTTLE_RATE, Api, shared_code
from infra.imports import Imports
from infra.monitoring import Monitoring
from infra.storage import DROP_BUCKET_ID, REPLICA_BUCKET_ID, Storage
from routes import DOCS_LAYER

ROOT = Path(__file__).resolve().parents[1]
SERVICE_NAME = "datasets-api"
METRICS_NAMESPACE = "DatasetsApi"


def cdk_context() -> dict[str, Any]:
    """The ``context`` of cdk.json (feature flags), so ``python app.py`` and tests match ``cdk synth``."""
    path = ROOT / "cdk.json"
    if not path.exists():
        return {}
    return dict(json.loads(path.read_text()).get("context", {}))


class DatasetsApiStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, layer_dirs: Mapping[str, Path], **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        code = shared_code()
        self.core_layer = core_layer = self._layer(
            "CoreLayer", layer_dirs["core"], "datasets_core + Powertools + pydantic"
        )
        self.imports_layer = imports_layer = self._layer(
            "ImportsLayer", layer_dirs["imports"], "pyarrow (import, analytics and maintenance functions)"
        )
        self.docs_layer = self._layer(
            "DocsLayer", layer_dirs["docs"], "Swagger UI's script and stylesheet (docs_asset function only)"
        )

        self.storage = storage = Storage(self, "Storage")
        environment = {
            **{spec.settings_env: storage.tables[spec.logical_id].table_name for spec in tables.ALL_TABLES},
            "DROP_BUCKET": storage.bucket.bucket_name,
            "DROP_PREFIX": storage.drop_prefix,
            "EXPORT_PREFIX": storage.export_prefix,
            "REPLICA_BUCKET": storage.replica.bucket_name,
            "REPLICA_PREFIX": storage.replica_prefix,
            "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            # Signs pagination cursors. The stack's id carries a UUID CloudFormation draws at
            # creation: unknown to API callers (cursors only need to be tamper-evident to
            # them), shared by every function, and with no secret store on the cold path.
            "CURSOR_SECRET": Fn.select(2, Fn.split("/", Aws.STACK_ID)),
        }
        self.imports = imports = Imports(
            self,
            "Imports",
            storage=storage,
            code=code,
            core_layer=core_layer,
            imports_layer=imports_layer,
            environment=environment,
        )
        self.analytics = analytics = Analytics(
            self,
            "Analytics",
            targets=imports.targets,
            code=code,
            layers=[core_layer, imports_layer],
            environment=imports.environment,
        )
        self.api = api = Api(
            self,
            "Api",
            targets=replace(imports.targets, analytics=analytics.function),
            code=code,
            core_layer=core_layer,
            environment={**imports.environment, "ANALYTICS_FUNCTION_NAME": analytics.function.function_name},
            extra_layers={DOCS_LAYER: self.docs_layer},
        )
        self.functions: dict[str, lambda_.Function] = {
            **api.functions,
            "import_file": imports.import_function,
            "maintenance": imports.maintenance_function,
            "analytics": analytics.function,
        }
        self.monitoring = monitoring = Monitoring(
            self,
            "Monitoring",
            rest_api=api.rest_api,
            access_logs=api.access_logs,
            functions=self.functions,
            import_function=imports.import_function,
            alarm_email=self.node.try_get_context("alarmEmail") or os.environ.get("ALARM_EMAIL") or None,
            dead_letter_queues={"Import": imports.dlq, "Maintenance": imports.maintenance_dlq},
            work_queues={"Import": imports.queue, "Maintenance": imports.maintenance_queue},
        )

        outputs = {
            "ApiUrl": api.url,
            "DropBucketName": storage.bucket.bucket_name,
            "DropPrefix": storage.drop_prefix,
            "MetaTableName": storage.meta.table_name,
            "RowsTableName": storage.rows.table_name,
            "IdempotencyTableName": storage.idempotency.table_name,
            "ImportQueueUrl": imports.queue.queue_url,
            "AlarmTopicArn": monitoring.topic.topic_arn,
            "StackRegion": Aws.REGION,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)

        self._acknowledge_nag_findings()

    def _layer(self, construct_id: str, folder: Path, description: str) -> lambda_.LayerVersion:
        return lambda_.LayerVersion(
            self,
            construct_id,
            code=lambda_.Code.from_asset(str(folder)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description=description,
        )

    def _acknowledge_nag_findings(self) -> None:
        """cdk-nag (AwsSolutions) findings accepted on purpose, each with its reason.

        cdk-nag v3 acknowledges exact finding ids (``Rule[Finding]``) on a construct and its
        children, so each wildcard is accepted by name, on the construct that owns the grant.
        """
        for fn in self.functions.values():
            for rule_id, reason in FUNCTION_FINDINGS.items():
                acknowledge(fn, rule_id, reason)
            if fn.role is not None:  # a sibling of the function (infra/api.py python_function)
                acknowledge(
                    fn.role,
                    "AwsSolutions-IAM5[Resource::*]",
                    FUNCTION_FINDINGS["AwsSolutions-IAM5[Resource::*]"],
                )
        for scope in (self.api, self.imports, self.analytics):
            for rule_id, reason in grant_findings(self.storage.drop_prefix).items():
                acknowledge(scope, rule_id, reason)
        for rule_id, reason in API_FINDINGS.items():
            acknowledge(self.api.rest_api, rule_id, reason)
        acknowledge(
            self.api.rest_api.deployment_stage,
            "AwsSolutions-APIG3",
            "WAF is left out of the base stack (cost, account-specific rules); stage throttling "
            f"({THROTTLE_RATE} req/s, burst {THROTTLE_BURST}) bounds abuse. Attach a WebACL per deployment.",
        )
        acknowledge(
            self.monitoring.topic,
            "AwsSolutions-SNS2",
            "The alarm topic is not encrypted at rest: CloudWatch alarms cannot publish to a topic "
            "under the AWS managed SNS key, and alarm messages carry no user data (SSL-only in transit).",
        )
        for child in self.node.children:
            # CDK's singleton custom-resource handler that writes the bucket's notification config.
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    LAMBDA_BASIC_EXECUTION,
                    "CDK's bucket-notification custom resource (runs only during deployments) gets "
                    "AWSLambdaBasicExecutionRole: logs:CreateLogGroup, CreateLogStream and PutLogEvents "
                    "on every log group of the account. CDK creates this role; the stack cannot narrow "
                    "it. Our own functions have roles scoped to their own log group.",
                )


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Accept one cdk-nag finding on ``scope`` and everything under it."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


LAMBDA_BASIC_EXECUTION = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
)
FUNCTION_FINDINGS = {
    "AwsSolutions-IAM5[Resource::*]": (
        "Active X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords support no "
        "resource-level permissions (tests assert '*' is used for nothing else)."
    ),
    "AwsSolutions-L1": (
        "Runtime pinned to python3.13 on purpose: the layers are built from cp313 wheels; moving to "
        "a newer runtime is a deliberate upgrade (rebuild layers, rerun the suites)."
    ),
}


def grant_findings(drop_prefix: str) -> dict[str, str]:
    """Wildcards that come with the capabilities of ``infra/grants.py``."""
    findings = {
        f"AwsSolutions-IAM5[Resource::<{spec.logical_id}.Arn>/index/*]": (
            f"Index queries of the {spec.local_name} table: any of its own GSIs (index/*), none of "
            "another table's."
        )
        for spec in tables.ALL_TABLES
        if spec.gsis
    }
    findings[f"AwsSolutions-IAM5[Resource::<{REPLICA_BUCKET_ID}.Arn>/*]"] = (
        "The replica bucket holds only the product's own files: snapshot versions (keys "
        "replica/ws=<workspace>/ds=<dataset>/v=<version>/part-N.parquet) and exports; which "
        "dataset's files a request reads is decided by the function's own workspace check."
    )
    findings[f"AwsSolutions-IAM5[Resource::<{REPLICA_BUCKET_ID}.Arn>/replica/*]"] = (
        "Snapshot files of every dataset live under replica/ (versions past retention and a "
        "deleted dataset's files are deleted there, nowhere else)."
    )
    findings[f"AwsSolutions-IAM5[Resource::<{DROP_BUCKET_ID}.Arn>/{drop_prefix}*]"] = (
        "Dropped files have user-chosen keys (drop/<workspace>/<dataset>/<file>): presigned uploads "
        "(s3:PutObject) and the import function's reads (s3:GetObjectVersion) are limited to the "
        "drop prefix."
    )
    return findings


API_FINDINGS = {
    "AwsSolutions-APIG2": (
        "Requests are validated in each function (Powertools + pydantic) so that errors use the "
        "SPEC's invalid_query/invalid_body envelope; a gateway validator would answer differently."
    ),
    "AwsSolutions-APIG4": (
        "Authentication is done in the functions: API keys (Authorization: Bearer / X-Api-Key) "
        "looked up by hash with per-route scopes (SPEC §3). Unauthenticated routes are health, "
        "openapi.json and docs; the 405 mock methods run no code."
    ),
    "AwsSolutions-COG4": (
        "No Cognito user pool: clients authenticate with the product's own API keys, checked in "
        "the functions."
    ),
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
    "AmazonAPIGatewayPushToCloudWatchLogs]": (
        "AWS's managed policy for API Gateway's account-level CloudWatch role, which access and "
        "execution logs need."
    ),
}
