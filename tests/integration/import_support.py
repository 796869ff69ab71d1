"""Helpers for import tests: drop a file into the (moto) drop bucket and feed the import handler
the SQS event Lambda would send for S3's notification, or for a message on the import queue."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

import boto3

from datasets_core.config import settings
from tests.iam import recorder


@dataclass
class FakeContext:
    """A Lambda context whose remaining time the test controls (``remaining`` per call)."""

    remaining: list[int] = field(default_factory=list)
    function_name: str = "import_file"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:import_file"
    aws_request_id: str = "request"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining.pop(0) if len(self.remaining) > 1 else (self.remaining or [900_000])[0]


def s3_notification(
    bucket: str, key: str, size: int, etag: str, version: str | None = None
) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag, "sequencer": "0A1B"}
    if version:
        obj["versionId"] = version
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2024-05-01T12:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:TEST"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": "REQ", "x-amz-id-2": "ID2"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "drop",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "OWNER"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


def sqs_event(*bodies: str, receive_count: int = 1, queue: str = "datasets-import") -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1714564800000",
                    "SenderId": "S3",
                    "ApproximateFirstReceiveTimestamp": "1714564800000",
                },
                "messageAttributes": {},
                "md5OfBody": "0",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{queue}",
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


def drop(key: str, data: bytes, metadata: dict[str, str] | None = None, workspace: str = "default") -> str:
    """Put a file at ``drop/<workspace>/<key>``; the S3 notification body S3 would send for it."""
    bucket = settings().drop_bucket
    full_key = f"{settings().drop_prefix}{workspace}/{key}"
    response = boto3.client("s3").put_object(Bucket=bucket, Key=full_key, Body=data, Metadata=metadata or {})
    return json.dumps(
        s3_notification(bucket, full_key, len(data), response["ETag"].strip('"'), response.get("VersionId"))
    )


def run_handler(*bodies: str, context: FakeContext | None = None, receive_count: int = 1) -> dict[str, Any]:
    event = sqs_event(*bodies, receive_count=receive_count)
    return recorder.invoke("import_file", event, context or FakeContext())  # type: ignore[no-any-return]


def queued_messages() -> list[str]:
    """Bodies waiting on the import queue (continuations), removed from it."""
    sqs = boto3.client("sqs")
    bodies = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=settings().import_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=settings().import_queue_url, ReceiptHandle=message["ReceiptHandle"])
