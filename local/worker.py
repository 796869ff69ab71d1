"""Queue pollers: drain an SQS queue into a function as the Lambda SQS event source would.

A poller long-polls its queue for up to ``batch_size`` messages, hands them to the function
as SQS events (the exact record shape Lambda sends) through the function's worker processes
(``local/lambdas.py``), and deletes every message the response does not list in
``batchItemFailures`` (ReportBatchItemFailures). Failed messages become visible again after
the queue's visibility timeout and reach the dead-letter queue after ``maxReceiveCount``
receives. A handler that raises (or crashes, or times out) fails the whole batch, as in Lambda.

Up to ``concurrency`` invocations run at once: when several are free, the messages of one
receive are dealt over them, as several of Lambda's pollers would receive them. A message
is never handed to two invocations at once: one that comes back (its visibility timeout
passed) while still in flight is hidden again and left to the invocation holding it, which
deletes it with the newest receipt handle.
"""

from __future__ import annotations

import base64
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import boto3

from .lambdas import Outcome
from .stack import VISIBILITY_TIMEOUT_SECONDS, Queue

Invoke = Callable[[dict[str, Any]], Outcome]

BATCH_SIZE = 10
WAIT_SECONDS = 1


def _log(message: str) -> None:
    # One write per line: the workers and the HTTP threads share stdout.
    sys.stdout.write(f"[worker] {message}\n")
    sys.stdout.flush()


def _message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """boto3's ``MessageAttributes`` in the Lambda event's shape (camelCase, base64 binaries)."""
    out = {}
    for name, attr in attributes.items():
        binary = attr.get("BinaryValue")
        out[name] = {
            "stringValue": attr.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if binary is not None else None,
            "stringListValues": list(attr.get("StringListValues", [])),
            "binaryListValues": [base64.b64encode(v).decode() for v in attr.get("BinaryListValues", [])],
            "dataType": attr.get("DataType", "String"),
        }
        out[name] = {k: v for k, v in out[name].items() if v is not None}
    return out


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source sends for ``messages`` (boto3 ``receive_message`` items)."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message.get("Body", ""),
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": _message_attributes(message.get("MessageAttributes", {})),
                "md5OfBody": message.get("MD5OfBody"),
                **(
                    {"md5OfMessageAttributes": message["MD5OfMessageAttributes"]}
                    if "MD5OfMessageAttributes" in message
                    else {}
                ),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def failed_ids(response: Any, batch_ids: set[str]) -> set[str]:
    """Message ids to keep: those in ``batchItemFailures``; all of them when the response is malformed.

    Lambda treats an unknown or empty ``itemIdentifier`` as a failure of the whole batch.
    """
    if response is None:
        return set()
    if not isinstance(response, dict):
        return set(batch_ids)
    failures = response.get("batchItemFailures") or []
    ids = set()
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not item or item not in batch_ids:
            return set(batch_ids)
        ids.add(item)
    return ids


class QueueWorker(threading.Thread):
    """One poller per queue, feeding ``invoke`` (an SQS event in, the function's outcome back)."""

    def __init__(
        self,
        queue: Queue,
        function: str,
        region: str,
        stop: threading.Event,
        *,
        invoke: Invoke,
        available: Callable[[], bool] = lambda: True,
        batch_size: int = BATCH_SIZE,
        concurrency: int = 1,
    ) -> None:
        super().__init__(name=f"poller-{function}", daemon=True)
        self.queue = queue
        self.function = function
        self.region = region
        self.stop_event = stop
        self.invoke = invoke
        self.available = available
        self.batch_size = batch_size
        self.concurrency = concurrency
        self._sqs = boto3.session.Session().client("sqs")
        self._slots = threading.Condition()
        self._running = 0
        # message id -> newest receipt handle, for every message an invocation holds
        self._in_flight: dict[str, str] = {}
        self._missing_reported = False

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the poller outlives any single failure
                _log(f"{self.function}: poll failed\n{traceback.format_exc()}")
                self.stop_event.wait(WAIT_SECONDS)

    def _free_slots(self) -> int:
        """Wait (up to a second) for a free invocation slot; how many are free."""
        with self._slots:
            if self._running >= self.concurrency:
                self._slots.wait(WAIT_SECONDS)
            return self.concurrency - self._running

    def poll_once(self) -> None:
        if not self.available():
            if not self._missing_reported:
                _log(
                    f"{self.function}: functions/{self.function}/handler.py does not exist yet; "
                    f"messages stay in {self.queue.name}"
                )
                self._missing_reported = True
            self.stop_event.wait(2)
            return
        self._missing_reported = False
        free = self._free_slots()
        if free <= 0:
            return
        messages: list[dict[str, Any]] = self._sqs.receive_message(
            QueueUrl=self.queue.url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=WAIT_SECONDS,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = self._claim(messages)
        batches = [fresh[i::free] for i in range(min(free, len(fresh)))]
        for batch in batches:
            with self._slots:
                self._running += 1
            threading.Thread(
                target=self._run_batch, args=(batch,), name=f"invoke-{self.function}", daemon=True
            ).start()

    def _claim(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages no invocation holds yet; the others are hidden again for their holder."""
        fresh: list[dict[str, Any]] = []
        held: list[dict[str, Any]] = []
        with self._slots:
            for message in messages:
                (held if message["MessageId"] in self._in_flight else fresh).append(message)
                self._in_flight[message["MessageId"]] = message["ReceiptHandle"]
        for message in held:
            try:
                self._sqs.change_message_visibility(
                    QueueUrl=self.queue.url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=VISIBILITY_TIMEOUT_SECONDS,
                )
            except Exception:  # noqa: BLE001 - it comes back later at worst
                _log(f"{self.function}: could not hide message {message['MessageId']} again")
        return fresh

    def _run_batch(self, messages: list[dict[str, Any]]) -> None:
        try:
            self.deliver(messages)
        except Exception:  # noqa: BLE001 - logged; the messages come back after the visibility timeout
            _log(f"{self.function}: delivery failed\n{traceback.format_exc()}")
        finally:
            with self._slots:
                for message in messages:
                    self._in_flight.pop(message["MessageId"], None)
                self._running -= 1
                self._slots.notify_all()

    def deliver(self, messages: list[dict[str, Any]]) -> None:
        event = sqs_event(messages, self.queue.arn, self.region)
        batch_ids = {message["MessageId"] for message in messages}
        outcome = self.invoke(event)
        if not outcome.ok:
            if outcome.kind != "stopped":
                error = outcome.error or {}
                _log(
                    f"{self.function}: invocation {outcome.request_id} failed ({outcome.kind}: "
                    f"{error.get('errorType')}: {error.get('errorMessage')}); "
                    f"batch of {len(messages)} retried"
                )
            return
        keep = failed_ids(outcome.result, batch_ids)
        if keep:
            _log(f"{self.function}: {len(keep)} of {len(messages)} message(s) failed; retried later")
        with self._slots:
            handles = {
                m["MessageId"]: self._in_flight.get(m["MessageId"], m["ReceiptHandle"]) for m in messages
            }
        done = [m["MessageId"] for m in messages if m["MessageId"] not in keep]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": handles[message_id]} for i, message_id in enumerate(done)
                ],
            )
