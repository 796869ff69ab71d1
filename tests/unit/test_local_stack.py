"""Small pieces of the local stack's AWS side (``local/stack.py``)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws
from moto.core.common_models import BaseModel
from moto.dynamodb.models.dynamo_type import Item
from moto.s3.models import FakeKey
from moto.sqs.models import Queue as MotoQueue
from moto.sqs.models import sqs_backends

from local.stack import RecentHandles, bound_sqs_deleted_handles, stop_tracking_instances


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


def test_moto_keeps_no_object_it_no_longer_uses(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BaseModel, "__new__", BaseModel.__dict__["__new__"])  # restored afterwards
    stop_tracking_instances()
    stop_tracking_instances()  # idempotent
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for n in range(3):
            dynamodb.put_item(TableName="t", Item={"pk": {"S": "a"}, "n": {"N": str(n)}})
            assert (
                dynamodb.query(
                    TableName="t",
                    KeyConditionExpression="pk = :a",
                    ExpressionAttributeValues={":a": {"S": "a"}},
                )["Count"]
                == 1
            )
        boto3.client("s3").create_bucket(Bucket="tracked-bucket")
        boto3.client("s3").put_object(Bucket="tracked-bucket", Key="k", Body=b"x" * 1000)
        assert list(Item.instances_tracked) == [] and list(FakeKey.instances_tracked) == []


def test_recent_handles_keep_the_last_ones_added() -> None:
    handles = RecentHandles(limit=3)
    handles.update(["a", "b"], ["c"])
    handles.add("d")
    handles.add("b")  # already there: not added again
    assert handles == {"b", "c", "d"}


def test_deleting_a_deleted_message_again_stays_a_no_op(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MotoQueue, "__init__", MotoQueue.__init__)  # restored afterwards
    bound_sqs_deleted_handles()
    with mock_aws():
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="bounded")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="once")
        [message] = sqs.receive_message(QueueUrl=url)["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        assert "Messages" not in sqs.receive_message(QueueUrl=url)
        queue = sqs_backends["123456789012"]["us-east-1"].queues["bounded"]
        assert isinstance(queue.deleted_messages, RecentHandles) and queue.deleted_messages
