"""Alarms and a small dashboard; every alarm notifies one SNS topic (output ``AlarmTopicArn``).

Alarms: messages in a dead-letter queue, API 5XX answers, API 429 answers (a log metric on the
access logs: API Gateway publishes no throttle metric), failed imports (a log metric on the
import function's "import failed" log line), and per function errors + Lambda throttles (one
alarm each, on their sum). The operator subscribes to the topic; ``alarmEmail`` (CDK context)
or ``ALARM_EMAIL`` (environment) adds an e-mail subscription at deploy time.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

PERIOD = Duration.minutes(5)
NAMESPACE = "DatasetsApi"
IMPORT_FAILED_MESSAGE = "import failed"  # datasets_core.imports.pipeline logs it for every failed import


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rest_api: apigw.RestApi,
        access_logs: logs.ILogGroup,
        functions: Mapping[str, lambda_.Function],
        import_function: lambda_.Function,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        work_queues: Mapping[str, sqs.IQueue],
        alarm_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cloudwatch.Alarm] = []
        # CloudWatch cannot publish to a topic under the AWS managed SNS key, and alarm messages
        # carry no user data: the topic stays unencrypted at rest (SSL-only in transit).
        self.topic = sns.Topic(self, "AlarmTopic", display_name="Datasets API alarms", enforce_ssl=True)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

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
        throttled = self._log_metric(
            "Api429",
            access_logs,
            logs.FilterPattern.string_value("$.status", "=", "429"),
            "The API answered 429 rate_limited (stage throttle or a caller's own limit).",
        )
        failed_imports = self._log_metric(
            "ImportsFailed",
            import_function.log_group,
            logs.FilterPattern.string_value("$.message", "=", IMPORT_FAILED_MESSAGE),
            "An import ended as failed (a bad file, or an internal error 5 times): its report "
            "(GET /v1/imports/{id}) says why.",
        )

        for name, fn in functions.items():
            errors = fn.metric_errors(period=PERIOD, statistic=cloudwatch.Stats.SUM)
            throttles = fn.metric_throttles(period=PERIOD, statistic=cloudwatch.Stats.SUM)
            self._alarm(
                f"{_pascal(name)}ErrorsOrThrottles",
                cloudwatch.MathExpression(
                    expression="FILL(errors, 0) + FILL(throttles, 0)",
                    using_metrics={"errors": errors, "throttles": throttles},
                    label=f"{name} errors + throttles",
                    period=PERIOD,
                ),
                f"Function {name} raised errors (unhandled exceptions, timeouts, out of memory) or "
                "was throttled by Lambda (concurrency exhausted).",
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
                    throttled,
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
                right=[failed_imports],
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

    def _log_metric(
        self, name: str, log_group: logs.ILogGroup, pattern: logs.IFilterPattern, description: str
    ) -> cloudwatch.Metric:
        """A count of the log events matching ``pattern`` (namespace DatasetsApi), with its alarm."""
        metric_filter = logs.MetricFilter(
            self,
            f"{name}Filter",
            log_group=log_group,
            filter_pattern=pattern,
            metric_namespace=NAMESPACE,
            metric_name=name,
            metric_value="1",
        )
        metric = metric_filter.metric(period=PERIOD, statistic=cloudwatch.Stats.SUM)
        self._alarm(name, metric, description)
        return metric

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.alarms.append(alarm)
