"""The AWS side of the local stack: a moto server with the resources the CDK stack defines.

Tables come from ``infra/tables.py`` (the same specs the CDK stack synthesizes); the drop
bucket is versioned and notifies the import queue of every object created under the drop
prefix (moto's server delivers S3 event notifications to SQS, as S3 does, and
``complete_s3_events`` gives them the fields S3 sends that moto leaves out); both queues
have a dead-letter queue after 5 receives.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import boto3
from moto.server import ThreadedMotoServer
from werkzeug.serving import WSGIRequestHandler

from infra.tables import ALL_TABLES, create_local_tables

from . import dynamodb

HOST = "127.0.0.1"
IMPORT_QUEUE = "datasets-import"
MAINTENANCE_QUEUE = "datasets-maintenance"
MAX_RECEIVE_COUNT = 5
# Short, so a failed message is retried soon locally; the worker's Lambda context reports
# the same timeout, as SQS requires visibility >= function timeout.
VISIBILITY_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Queue:
    name: str
    url: str
    arn: str
    dlq_url: str


@dataclass(frozen=True)
class Resources:
    endpoint: str
    region: str
    bucket: str
    drop_prefix: str
    import_queue: Queue
    maintenance_queue: Queue


def configure_environment(aws_port: int) -> str:
    """Point every boto3 client of this process at the moto server; the endpoint URL.

    Must run before anything reads ``datasets_core.config.settings()``.
    """
    endpoint = f"http://{HOST}:{aws_port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    # No CloudWatch locally: Powertools would print EMF blobs into the console otherwise.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    # Every function's workers sign and check pagination cursors with the same secret, as the
    # deployed functions share the stack's (a cursor from one worker is read by another).
    os.environ.setdefault("CURSOR_SECRET", secrets.token_urlsafe(32))
    # Local writes run at most the API's 29 s too (the workers enforce it): the replica's cut
    # and the purge delay keep the deployed margins unless set.
    os.environ.setdefault("CUT_MARGIN_SECONDS", "30")
    os.environ.setdefault("PURGE_DELAY_SECONDS", "30")
    # moto serves a Query at about 1 ms an item (AWS: ~1 MB a round trip), so a replica query
    # reads a delta 20 times slower here: compactions keep it 5 times smaller than deployed.
    os.environ.setdefault("COMPACT_AFTER_ROWS", str(LOCAL_COMPACT_AFTER_ROWS))
    return endpoint


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def complete_s3_events() -> None:
    """Make moto's S3 event notifications carry what S3's do (the moto server runs in this process).

    moto 5 leaves out ``userIdentity``, ``requestParameters``, ``responseElements``, the bucket's
    ``ownerIdentity`` and the object's ``versionId`` and ``sequencer`` (so Powertools' S3 parser
    models reject its events), and URL-encodes the ``/`` of object keys, which S3 keeps.
    """
    from moto.s3 import notifications

    original = notifications._get_s3_event
    if getattr(original, "completed_by_local_stack", False):
        return

    def full_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        for record in event["Records"]:
            request_id = uuid.uuid4().hex[:16].upper()
            record.setdefault("userIdentity", {"principalId": "AWS:LOCALUSER"})
            record.setdefault("requestParameters", {"sourceIPAddress": HOST})
            record.setdefault("responseElements", {"x-amz-request-id": request_id, "x-amz-id-2": request_id})
            record["s3"]["bucket"].setdefault("ownerIdentity", {"principalId": "LOCALOWNER"})
            obj = record["s3"]["object"]
            obj["key"] = quote_plus(key.name, safe="/")
            version = getattr(key, "version_id", None)
            if version and version != "null":
                obj.setdefault("versionId", version)
            obj.setdefault("sequencer", f"{time.time_ns():018X}")
        return event

    full_event.completed_by_local_stack = True  # type: ignore[attr-defined]
    notifications._get_s3_event = full_event


class RecentHandles(set[str]):
    """A set that keeps only the last ``limit`` receipt handles added (oldest forgotten first)."""

    def __init__(self, limit: int = 10_000) -> None:
        super().__init__()
        self.limit = limit
        self._order: deque[str] = deque()

    def add(self, handle: str) -> None:
        if handle not in self:
            super().add(handle)
            self._order.append(handle)
            while len(self._order) > self.limit:
                self.discard(self._order.popleft())

    def update(self, *handles: Iterable[str]) -> None:  # type: ignore[override]
        for group in handles:
            for handle in group:
                self.add(handle)


def bound_sqs_deleted_handles() -> None:
    """moto's SQS queues remember every receipt handle of every deleted message, forever.

    The set only makes a repeated delete of a deleted message a no-op (as in SQS); the last
    10,000 handles serve that as well, and the set stops growing with the traffic.
    """
    from moto.sqs.models import Queue as MotoQueue

    original = MotoQueue.__init__
    if getattr(original, "bounded_by_local_stack", False):
        return

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.deleted_messages = RecentHandles()

    init.bounded_by_local_stack = True  # type: ignore[attr-defined]
    MotoQueue.__init__ = init  # type: ignore[method-assign]


class _Untracked(list[Any]):
    """An ``instances_tracked`` list that keeps nothing."""

    def append(self, _instance: Any) -> None:
        pass


def stop_tracking_instances() -> None:
    """Stop moto from keeping every model object it ever creates.

    moto's ``BaseModel`` appends each new instance (every DynamoDB ``Item``, also the copies
    made for each query answer and for each transaction, every S3 key version with its
    buffer, every SQS message) to a per-class list that only a test-mode reset empties; it
    feeds the ``/moto-api/data.json`` dashboard and nothing else. In a long-running server
    that list is a leak proportional to all traffic ever served.
    """
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import model_data

    original = BaseModel.__dict__["__new__"]
    create = original.__func__ if isinstance(original, staticmethod) else original
    if getattr(create, "untracked_by_local_stack", False):
        return

    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(cls.__dict__.get("instances_tracked"), _Untracked):
            cls.instances_tracked = _Untracked()  # type: ignore[attr-defined]
        return create(cls, *args, **kwargs)

    new.untracked_by_local_stack = True  # type: ignore[attr-defined]
    BaseModel.__new__ = staticmethod(new)  # type: ignore[assignment]
    for models in model_data.values():
        for model in models.values():
            model.instances_tracked = _Untracked()  # type: ignore[attr-defined]


def start_moto(aws_port: int) -> ThreadedMotoServer:
    # One access-log line per request (the workers long-poll) would drown the console.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    complete_s3_events()
    stop_tracking_instances()
    bound_sqs_deleted_handles()
    dynamodb.install()  # atomic requests, Queries that cost their page (local/dynamodb.py)
    # werkzeug writes a response's headers and body apart: with Nagle's algorithm the body
    # waits for the client's delayed ACK (40 ms on Linux) whenever it spans more segments.
    WSGIRequestHandler.disable_nagle_algorithm = True
    server = ThreadedMotoServer(ip_address=HOST, port=aws_port, verbose=False)
    server.start()
    return server


LOCAL_COMPACT_AFTER_ROWS = 2_000


def _queue(sqs, name: str) -> Queue:
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    url = sqs.create_queue(
        QueueName=name,
        Attributes={
            "VisibilityTimeout": str(VISIBILITY_TIMEOUT_SECONDS),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(name, url, arn, dlq_url)


def create_resources(endpoint: str) -> Resources:
    """Tables, drop bucket (+ notification) and queues; exports the queue URLs to the handlers."""
    from datasets_core.config import settings  # after configure_environment

    config = settings()
    region = os.environ["AWS_DEFAULT_REGION"]
    session = boto3.session.Session()
    names = {spec.logical_id: getattr(config, spec.settings_env.lower()) for spec in ALL_TABLES}
    create_local_tables(session.client("dynamodb"), names)

    sqs = session.client("sqs")
    import_queue = _queue(sqs, IMPORT_QUEUE)
    maintenance_queue = _queue(sqs, MAINTENANCE_QUEUE)

    s3 = session.client("s3")
    bucket = config.drop_bucket
    bucket_args: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":  # us-east-1 refuses an explicit location constraint
        bucket_args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**bucket_args)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.create_bucket(**{**bucket_args, "Bucket": config.replica_bucket})
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "drop-folder-imports",
                    "QueueArn": import_queue.arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": config.drop_prefix}]}},
                }
            ]
        },
    )

    os.environ["IMPORT_QUEUE_URL"] = import_queue.url
    os.environ["MAINTENANCE_QUEUE_URL"] = maintenance_queue.url
    settings.cache_clear()  # re-read with the queue URLs
    return Resources(endpoint, region, bucket, config.drop_prefix, import_queue, maintenance_queue)
