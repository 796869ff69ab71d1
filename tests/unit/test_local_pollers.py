"""The local stack's queue pollers (``local/worker.py``): concurrent invocations, each message held once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import boto3
import pytest

from local.lambdas import Outcome
from local.stack import Queue
from local.worker import QueueWorker


@pytest.fixture
def sqs(mocked_aws: None) -> Any:
    return boto3.client("sqs")


class Function:
    """A stand-in function: records what each invocation got and how many ran at once."""

    def __init__(self, hold: threading.Event) -> None:
        self.hold = hold
        self.lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.delivered: Counter[str] = Counter()

    def invoke(self, event: dict[str, Any]) -> Outcome:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.delivered.update(record["body"] for record in event["Records"])
        self.hold.wait(30)
        with self.lock:
            self.running -= 1
        return Outcome("request", result={"batchItemFailures": []})


def start(sqs: Any, name: str, visibility: int, bodies: list[str], function: Function, concurrency: int):
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(visibility)})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    stop = threading.Event()
    poller = QueueWorker(
        Queue(name, url, arn, ""),
        "import_file",
        "us-east-1",
        stop,
        invoke=function.invoke,
        concurrency=concurrency,
    )
    poller.start()
    return url, stop, poller


def wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)


def drained(sqs: Any, url: str) -> bool:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_one_receive_is_dealt_over_the_free_invocations(sqs: Any) -> None:
    hold = threading.Event()
    function = Function(hold)
    url, stop, poller = start(sqs, "parallel", 30, [f"m{n}" for n in range(6)], function, concurrency=3)
    try:
        wait_for(lambda: function.running == 3)
        hold.set()
        wait_for(lambda: drained(sqs, url))
    finally:
        stop.set()
        poller.join(timeout=10)
    assert function.most_at_once == 3
    assert function.delivered == Counter({f"m{n}": 1 for n in range(6)})


def test_a_message_back_while_still_held_is_not_handed_out_again(sqs: Any) -> None:
    # Given invocations that outlast the queue's visibility timeout (1 s), and free slots
    hold = threading.Event()
    function = Function(hold)
    url, stop, poller = start(sqs, "held", 1, ["a", "b"], function, concurrency=4)
    try:
        wait_for(lambda: function.running == 2)
        # When the messages have come back meanwhile (the poller receives them again)
        time.sleep(2.5)
        # Then no second invocation got them, and finishing deletes them for good
        assert function.running == 2 and sum(function.delivered.values()) == 2
        hold.set()
        wait_for(lambda: drained(sqs, url))
    finally:
        stop.set()
        poller.join(timeout=10)
    assert function.delivered == Counter({"a": 1, "b": 1})
