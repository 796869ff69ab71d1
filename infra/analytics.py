"""The analytics function: answers from the columnar replica (SPEC §6b), invoked by the API
functions whose query no index serves. It has pyarrow (the columnar layer) and the memory to
hold a dataset's snapshot; warm instances keep snapshots in memory between requests."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import grants
from infra.api import python_function
from infra.sizes import ANALYTICS_MEMORY_MB
from routes import (
    MAINTENANCE_SEND,
    META_GET,
    META_PUT,
    META_QUERY,
    REPLICA_GET,
    REPLICA_PUT,
    ROWS_BATCH_GET,
    ROWS_QUERY,
)

ANALYTICS_FUNCTION = "analytics"
# Called synchronously by API functions, which API Gateway gives 29 s.
ANALYTICS_TIMEOUT = Duration.seconds(28)

ANALYTICS_CAPABILITIES = (
    META_QUERY,  # the dataset with its counters
    META_GET,  # kept versions (as_of)
    META_PUT,  # a compaction job, when the change log grew past the threshold
    MAINTENANCE_SEND,  # ... and its message
    ROWS_QUERY,  # the change log; ranges of rows an import wrote
    ROWS_BATCH_GET,  # rows changed since the snapshot
    REPLICA_GET,  # snapshot files
    REPLICA_PUT,  # exports
)


class Analytics(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        targets: grants.Targets,
        code: lambda_.Code,
        layers: list[lambda_.ILayerVersion],
        environment: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = python_function(
            self,
            "Analytics",
            function=ANALYTICS_FUNCTION,
            code=code,
            layers=layers,
            environment=environment,
            memory_size=ANALYTICS_MEMORY_MB,
            timeout=ANALYTICS_TIMEOUT,
            description="Answers from the columnar replica: scans, aggregates, profile, export",
        )
        grants.grant(self.function, ANALYTICS_CAPABILITIES, targets, authenticated=False)
