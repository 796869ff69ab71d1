"""Alarms (dead letters, API 5XX, every function's errors) and a small dashboard.

Alarms have no actions here: wire them to an SNS topic or a chat channel per deployment.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rest_api: apigw.RestApi,
        functions: Mapping[str, lambda_.IFunction],
        dead_letter_queues: Mapping[str, sqs.IQueue],
        work_queues: Mapping[str, sqs.IQueue],
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.Alarm] = []

        for name, dlq in dead_letter_queues.items():
            self._alarm(
                f"{name}DeadLetters",
                dlq.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
                ),
                f"Messages in the {name} dead-letter queue: work that failed {name} 5 times.",
            )

        stage = rest_api.deployment_stage
        server_errors = stage.metric_server_error(period=PERIOD, statistic=cloudwatch.Stats.SUM)
        self._alarm("Api5xx", server_errors, "The API answered 5XX (internal_error).")

        for name, fn in functions.items():
            self._alarm(
                f"{_pascal(name)}Errors",
                fn.metric_errors(period=PERIOD, statistic=cloudwatch.Stats.SUM),
                f"Function {name} raised errors (unhandled exceptions, timeouts, out of memory).",
            )

        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{Stack.of(self).stack_name}-overview",
            default_interval=Duration.hours(3),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests",
                left=[
                    stage.metric_count(period=PERIOD, statistic=cloudwatch.Stats.SUM),
                    stage.metric_client_error(period=PERIOD, statistic=cloudwatch.Stats.SUM),
                    server_errors,
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="API latency",
                left=[
                    stage.metric_latency(period=PERIOD, statistic=cloudwatch.Stats.percentile(50)),
                    stage.metric_latency(period=PERIOD, statistic=cloudwatch.Stats.percentile(99)),
                    stage.metric_integration_latency(
                        period=PERIOD, statistic=cloudwatch.Stats.percentile(99)
                    ),
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Queues: messages visible",
                left=[
                    queue.metric_approximate_number_of_messages_visible(
                        period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM, label=name
                    )
                    for name, queue in {**work_queues, **dead_letter_queues}.items()
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Function errors",
                left=[
                    fn.metric_errors(period=PERIOD, statistic=cloudwatch.Stats.SUM, label=name)
                    for name, fn in functions.items()
                ],
                width=12,
            ),
        )
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=24))
        self.dashboard = dashboard

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        self.alarms.append(
            cloudwatch.Alarm(
                self,
                construct_id,
                metric=metric,
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
        )
