"""Queues, dead-letter queues, event source mappings and the S3 -> SQS notification."""

from __future__ import annotations

from tests.infra.cfn import Synth


def _queue(synth: Synth, construct) -> dict:
    return synth.resources[synth.logical_id(construct)]["Properties"]


def test_import_queue_visibility_is_six_times_the_function_timeout(synth: Synth) -> None:
    timeout = synth.function("import_file")["Properties"]["Timeout"]
    queue = _queue(synth, synth.stack.imports.queue)
    assert queue["VisibilityTimeout"] >= 6 * timeout
    assert queue["VisibilityTimeout"] == 90 * 60


def test_maintenance_queue_visibility_is_six_times_the_function_timeout(synth: Synth) -> None:
    timeout = synth.function("maintenance")["Properties"]["Timeout"]
    assert _queue(synth, synth.stack.imports.maintenance_queue)["VisibilityTimeout"] >= 6 * timeout


def test_queues_have_dead_letter_queues(synth: Synth) -> None:
    imports = synth.stack.imports
    for queue, dlq in ((imports.queue, imports.dlq), (imports.maintenance_queue, imports.maintenance_dlq)):
        redrive = _queue(synth, queue)["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == 5
        assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [synth.logical_id(dlq), "Arn"]}
        assert _queue(synth, dlq)["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_queues_are_encrypted_and_ssl_only(synth: Synth) -> None:
    queues = synth.of_type("AWS::SQS::Queue")
    assert len(queues) == 4
    assert all(q["Properties"]["SqsManagedSseEnabled"] is True for q in queues.values())
    denied = set()
    for policy in synth.of_type("AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement["Condition"] == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                denied |= {q["Ref"] for q in policy["Properties"]["Queues"]}
    assert denied == set(queues)


def test_event_source_mappings_report_batch_item_failures(synth: Synth) -> None:
    mappings = {
        m["Properties"]["FunctionName"]["Ref"]: m["Properties"]
        for m in synth.of_type("AWS::Lambda::EventSourceMapping").values()
    }
    assert set(mappings) == {synth.function_id("import_file"), synth.function_id("maintenance")}
    imports = mappings[synth.function_id("import_file")]
    assert imports["BatchSize"] == 1  # a chunk message is a chunk's work: one per invocation
    assert imports["EventSourceArn"] == {"Fn::GetAtt": [synth.logical_id(synth.stack.imports.queue), "Arn"]}
    for mapping in mappings.values():
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_objects_created_under_drop_are_sent_to_the_import_queue(synth: Synth) -> None:
    [notification] = synth.of_type("Custom::S3BucketNotifications").values()
    props = notification["Properties"]
    assert props["BucketName"] == {"Ref": "DropBucket"}
    [config] = props["NotificationConfiguration"]["QueueConfigurations"]
    assert config["Events"] == ["s3:ObjectCreated:*"]
    assert config["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": "drop/"}]}}
    assert config["QueueArn"] == {"Fn::GetAtt": [synth.logical_id(synth.stack.imports.queue), "Arn"]}


def test_import_function_has_room_in_tmp_for_big_files(synth: Synth) -> None:
    assert synth.function("import_file")["Properties"]["EphemeralStorage"] == {"Size": 10240}
