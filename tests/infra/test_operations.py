"""SPEC §11 operations: alarms to an SNS topic, drop-folder retention, bounded import concurrency."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import aws_cdk as cdk
from aws_cdk.assertions import Match, Template

from infra.imports import IMPORT_CONCURRENCY
from infra.stack import DatasetsApiStack, cdk_context
from tests.infra.cfn import Synth


def _topic_ref(synth: Synth) -> dict[str, str]:
    return {"Ref": synth.logical_id(synth.stack.monitoring.topic)}


def test_every_alarm_notifies_the_alarm_topic_which_is_an_output(synth: Synth) -> None:
    alarms = synth.of_type("AWS::CloudWatch::Alarm")
    assert alarms
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [_topic_ref(synth)]
    synth.template.has_output("AlarmTopicArn", {"Value": _topic_ref(synth)})
    # Publishing to it needs TLS.
    synth.template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "Topics": [_topic_ref(synth)],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            },
        },
    )
    synth.template.resource_count_is("AWS::SNS::Subscription", 0)  # no ALARM_EMAIL given


def test_alarms_cover_dead_letters_5xx_429_failed_imports_and_each_function(synth: Synth) -> None:
    alarms = [a["Properties"] for a in synth.of_type("AWS::CloudWatch::Alarm").values()]
    by_metric = Counter(a.get("MetricName") for a in alarms)
    assert by_metric["ApproximateNumberOfMessagesVisible"] == 2  # the two dead-letter queues
    assert by_metric["5XXError"] == 1
    assert by_metric["Api429"] == 1 and by_metric["ImportsFailed"] == 1
    # One alarm per function on errors + Lambda throttles.
    per_function = {}
    for alarm in alarms:
        if "Metrics" not in alarm:
            continue
        metrics = {m["Id"]: m for m in alarm["Metrics"]}
        assert metrics["expr_1"]["Expression"] == "FILL(errors, 0) + FILL(throttles, 0)"
        assert {metrics[i]["MetricStat"]["Metric"]["MetricName"] for i in ("errors", "throttles")} == {
            "Errors",
            "Throttles",
        }
        [dimension] = metrics["errors"]["MetricStat"]["Metric"]["Dimensions"]
        per_function[dimension["Value"]["Ref"]] = alarm
    assert set(per_function) == {synth.logical_id(fn) for fn in synth.stack.functions.values()}
    for alarm in alarms:
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_log_metrics_count_429_answers_and_failed_imports(synth: Synth) -> None:
    filters = {
        f["Properties"]["MetricTransformations"][0]["MetricName"]: f["Properties"]
        for f in synth.of_type("AWS::Logs::MetricFilter").values()
    }
    assert filters["Api429"]["FilterPattern"] == '{ $.status = "429" }'
    assert filters["Api429"]["LogGroupName"] == {"Ref": synth.logical_id(synth.stack.api.access_logs)}
    assert filters["ImportsFailed"]["FilterPattern"] == '{ $.message = "import failed" }'
    import_logs = synth.function("import_file")["Properties"]["LoggingConfig"]["LogGroup"]
    assert filters["ImportsFailed"]["LogGroupName"] == import_logs


def test_the_import_failure_metric_matches_the_pipelines_log_line() -> None:
    # The filter counts a log message the import pipeline writes: keep the two in step.
    source = Path("layers/core/python/datasets_core/imports/pipeline.py").read_text()
    assert 'logger.warning("import failed", ' in source


def test_alarm_email_subscribes_to_the_topic(synth: Synth) -> None:
    app = cdk.App(context={**cdk_context(), "alarmEmail": "ops@example.com"})
    stack = DatasetsApiStack(app, "AlarmEmailTest", layer_dirs=synth.layer_dirs)
    Template.from_stack(stack).has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


def test_dropped_files_and_exports_expire(synth: Synth) -> None:
    rules = {
        r["Id"]: r for r in synth.resources["DropBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    }
    assert rules["expire-dropped-files"]["Prefix"] == "drop/"
    assert rules["expire-dropped-files"]["ExpirationInDays"] == 30
    assert rules["expire-old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    replica = {
        r["Id"]: r for r in synth.resources["ReplicaBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    }
    assert replica["expire-exports"]["Prefix"] == "exports/"
    assert replica["expire-exports"]["ExpirationInDays"] == 7


def test_the_import_function_has_reserved_concurrency(synth: Synth) -> None:
    import_file = synth.function_id("import_file")
    synth.template.has_resource_properties(
        "AWS::Lambda::Function",
        {"Handler": "import_file.handler.handler", "ReservedConcurrentExecutions": IMPORT_CONCURRENCY},
    )
    synth.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {"FunctionName": {"Ref": import_file}, "ScalingConfig": {"MaximumConcurrency": IMPORT_CONCURRENCY}},
    )
    # Only the import function reserves concurrency: the API functions share the rest.
    reserved = [
        name
        for name in synth.stack.functions
        if "ReservedConcurrentExecutions" in synth.function(name)["Properties"]
    ]
    assert reserved == ["import_file"]
