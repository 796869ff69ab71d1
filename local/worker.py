"""Queue workers: drain an SQS queue into a real handler as the Lambda SQS event source would.

Each worker long-polls its queue for up to 10 messages, hands them to the handler as one
SQS event (the exact record shape Lambda sends), and deletes every message the response
does not list in ``batchItemFailures`` (ReportBatchItemFailures). Failed messages become
visible again after the queue's visibility timeout and reach the dead-letter queue after
``maxReceiveCount`` receives. A handler that raises fails the whole batch, as in Lambda.
"""

from __future__ import annotations

import base64
import importlib
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

import boto3

from . import dispatch  # noqa: F401 - puts functions/ on sys.path, where handlers live
from .events import LambdaContext
from .stack import VISIBILITY_TIMEOUT_SECONDS, Queue

Handler = Callable[[dict[str, Any], Any], Any]

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
    """One poller per queue, calling ``function``'s handler (imported lazily).

    One poller means one invocation at a time, so a message is never handed out twice while a
    run still holds it, even if that run outlasts the (short, local) visibility timeout.
    """

    def __init__(
        self, queue: Queue, function: str, region: str, stop: threading.Event, batch_size: int = BATCH_SIZE
    ) -> None:
        super().__init__(name=f"worker-{function}", daemon=True)
        self.queue = queue
        self.function = function
        self.batch_size = batch_size
        self.region = region
        self.stop_event = stop
        self._handler: Handler | None = None
        self._missing_reported: str | None = None
        self._sqs = boto3.session.Session().client("sqs")

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - the worker outlives any single failure
                _log(f"{self.function}: poll failed\n{traceback.format_exc()}")
                self.stop_event.wait(WAIT_SECONDS)

    def handler(self) -> Handler | None:
        """The function's handler, or None (logged once) while it does not exist or fails to import."""
        if self._handler is not None:
            return self._handler
        module = f"{self.function}.handler"
        importlib.invalidate_caches()
        try:
            self._handler = importlib.import_module(module).handler
        except ModuleNotFoundError as exc:
            reason = f"{module} does not exist yet" if exc.name in (self.function, module) else repr(exc)
            self._report_missing(f"{reason}; messages stay in {self.queue.name}")
        except Exception:  # noqa: BLE001 - a broken handler module must not stop the worker
            self._report_missing(f"{module} failed to import\n{traceback.format_exc()}")
        return self._handler

    def _report_missing(self, message: str) -> None:
        if self._missing_reported != message:
            _log(f"{self.function}: {message}")
            self._missing_reported = message

    def poll_once(self) -> None:
        handler = self.handler()
        if handler is None:
            self.stop_event.wait(2)
            return
        messages: list[Any] = self._sqs.receive_message(
            QueueUrl=self.queue.url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=WAIT_SECONDS,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if messages:
            self.deliver(handler, messages)

    def deliver(self, handler: Handler, messages: list[dict[str, Any]]) -> None:
        event = sqs_event(messages, self.queue.arn, self.region)
        batch_ids = {message["MessageId"] for message in messages}
        try:
            response = handler(event, LambdaContext(self.function, VISIBILITY_TIMEOUT_SECONDS))
            keep = failed_ids(response, batch_ids)
        except Exception:  # noqa: BLE001 - as in Lambda: the batch fails, messages come back later
            _log(
                f"{self.function}: handler raised; batch of {len(messages)} retried\n{traceback.format_exc()}"
            )
            return
        done = [m for m in messages if m["MessageId"] not in keep]
        if keep:
            _log(f"{self.function}: {len(keep)} of {len(messages)} message(s) failed; retried later")
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
