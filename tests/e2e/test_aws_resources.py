"""The AWS side of the local stack: resources as the CDK stack defines them, and the queue worker."""

from __future__ import annotations

import json
import threading
from urllib.parse import unquote_plus

import pytest
from aws_lambda_powertools.utilities.parser.models import S3Model

from local.lambdas import Outcome
from local.stack import Queue
from local.worker import QueueWorker

from .conftest import Stack, wait_for


def queue_attributes(stack: Stack, name: str) -> dict[str, str]:
    sqs = stack.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_tables_exist(stack: Stack) -> None:
    tables = set(stack.client("dynamodb").list_tables()["TableNames"])
    assert {"datasets-meta", "datasets-rows", "datasets-idempotency"} <= tables


def test_drop_bucket_is_versioned_and_notifies_the_import_queue(stack: Stack) -> None:
    s3 = stack.client("s3")
    assert s3.get_bucket_versioning(Bucket="datasets-drop-local")["Status"] == "Enabled"
    config = s3.get_bucket_notification_configuration(Bucket="datasets-drop-local")
    [notification] = config["QueueConfigurations"]
    assert notification["QueueArn"] == queue_attributes(stack, "datasets-import")["QueueArn"]
    assert notification["Events"] == ["s3:ObjectCreated:*"]
    rules = notification["Filter"]["Key"]["FilterRules"]
    assert [(rule["Name"].lower(), rule["Value"]) for rule in rules] == [("prefix", "drop/")]


@pytest.mark.parametrize("queue", ["datasets-import", "datasets-maintenance"])
def test_queues_send_to_a_dead_letter_queue_after_5_receives(stack: Stack, queue: str) -> None:
    redrive = json.loads(queue_attributes(stack, queue)["RedrivePolicy"])
    assert int(redrive["maxReceiveCount"]) == 5
    assert redrive["deadLetterTargetArn"] == queue_attributes(stack, f"{queue}-dlq")["QueueArn"]


def test_worker_acts_as_the_sqs_event_source(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a queue (visibility 0, so retries come at once) with a DLQ, and three messages
    for name, value in {
        "AWS_ENDPOINT_URL": stack.aws_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)  # the worker's client is built from the environment
    sqs = stack.client("sqs")
    dlq_url = sqs.create_queue(QueueName="worker-test-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName="worker-test",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {"mode": {"DataType": "String", "StringValue": "replace"}}
    for body in ("ok", "fails", "raises-once"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)

    events: list[dict] = []

    def handler(event: dict, context: object) -> dict:
        events.append(event)
        records = event["Records"]
        if any(
            r["body"] == "raises-once" and r["attributes"]["ApproximateReceiveCount"] == "1" for r in records
        ):
            raise RuntimeError("a crash fails the whole batch")
        return {
            "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records if r["body"] == "fails"]
        }

    def invoke(event: dict) -> Outcome:  # the stack invokes a worker process of the function
        try:
            return Outcome("request-id", result=handler(event, None))
        except RuntimeError as exc:
            return Outcome(
                "request-id", "error", error={"errorType": "RuntimeError", "errorMessage": str(exc)}
            )

    # When the poller drains the queue into the function
    stop = threading.Event()
    worker = QueueWorker(
        Queue("worker-test", url, arn, dlq_url), "worker_test", "us-east-1", stop, invoke=invoke
    )
    worker.start()
    try:
        dead = wait_for(lambda: sqs.receive_message(QueueUrl=dlq_url).get("Messages"), 20, "the DLQ")
    finally:
        stop.set()
        worker.join(timeout=10)

    # Then each event has the Lambda SQS record shape
    record = events[0]["Records"][0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn
    assert record["awsRegion"] == "us-east-1" and record["md5OfBody"]
    assert {"messageId", "receiptHandle", "body", "attributes", "messageAttributes"} <= set(record)
    assert record["messageAttributes"]["mode"]["stringValue"] == "replace"
    assert record["messageAttributes"]["mode"]["dataType"] == "String"
    # ... a crash retried the whole batch, successes were deleted, the failing one went to the DLQ
    bodies = [sorted(r["body"] for r in event["Records"]) for event in events]
    assert bodies[0] == bodies[1] == ["fails", "ok", "raises-once"]
    assert all(b == ["fails"] for b in bodies[2:]) and len(bodies) == 5
    assert [m["Body"] for m in dead] == ["fails"]
    remaining = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert remaining == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_s3_event_notifications_have_the_shape_s3_sends(stack: Stack) -> None:
    # Given a bucket of its own notifying a queue of its own (the drop bucket's queue has a consumer)
    s3, sqs = stack.client("s3"), stack.client("sqs")
    url = sqs.create_queue(QueueName="shape-test")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket="shape-test")
    s3.put_bucket_versioning(Bucket="shape-test", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket="shape-test",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    sqs.purge_queue(QueueUrl=url)  # S3's s3:TestEvent, sent when notifications are configured

    # When an object is written
    version = s3.put_object(Bucket="shape-test", Key="drop/ws/my data/a b.csv", Body=b"a\n1\n")["VersionId"]
    [message] = wait_for(lambda: sqs.receive_message(QueueUrl=url).get("Messages"), 10, "the S3 event")

    # Then the message parses as an S3 event notification, key encoded as S3 does it
    event = S3Model.model_validate_json(message["Body"])
    [record] = event.Records
    assert record.eventName == "ObjectCreated:Put"
    assert record.s3.bucket.name == "shape-test"
    assert record.s3.object.key == "drop/ws/my+data/a+b.csv"
    assert unquote_plus(record.s3.object.key) == "drop/ws/my data/a b.csv"
    assert record.s3.object.versionId == version and record.s3.object.sequencer
