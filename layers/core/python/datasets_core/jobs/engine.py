"""One mechanism for background work (SPEC §11): purges, index backfills, compaction, retention.

A job is a record in the meta table (``WS#<ws>`` / ``JOB#<id>``) and a message on the
maintenance queue naming it. A run takes the job's lease (only one invocation works on a
job at a time; a crashed run's lease lapses at its deadline), then does bounded steps, each
committing the job's checkpoint conditioned on still holding the lease, until the job is done
or the Lambda deadline nears; then it releases the lease and queues a continuation. A step
is idempotent (deletes of what is gone, overwrites of the same values), so a step redone
after a crash changes nothing twice, and no step moves a counter — counters are exact by
construction (a dataset's delete gives its rows back to the plan in the same transaction).

Each kind of job is a ``Kind``: ``step(job, checkpoint) -> (checkpoint, done)``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from botocore.exceptions import ClientError
from msgspec import Struct

from .. import aws
from ..config import settings
from ..deadline import Deadline
from ..jsonutil import to_native
from ..observability import logger
from ..store import leases
from ..store.tables import error_code, meta, ws_pk
from ..timeutil import now_iso

TERMINAL = ("succeeded", "failed")
# A finished job's record stays readable this long, then the meta table's TTL removes it (also
# the records of a deleted dataset's jobs: nothing of it is kept for good).
FINISHED_JOB_DAYS = 30
MAX_RECEIVES = 5


class Job(Struct, frozen=True):
    workspace: str
    id: str
    kind: str
    dataset_id: str
    params: dict[str, Any]
    checkpoint: dict[str, Any]
    status: str


class Kind(Struct, frozen=True):
    step: Callable[[Job, dict[str, Any]], tuple[dict[str, Any], bool]]


KINDS: dict[str, Kind] = {}


def kind(name: str) -> Callable[[Callable[[Job, dict[str, Any]], tuple[dict[str, Any], bool]]], Any]:
    """Register a job kind's step function."""

    def register(step: Callable[[Job, dict[str, Any]], tuple[dict[str, Any], bool]]) -> Any:
        KINDS[name] = Kind(step)
        return step

    return register


def job_key(workspace: str, job_id: str) -> dict[str, str]:
    return {"pk": ws_pk(workspace), "sk": f"JOB#{job_id}"}


def job_item(
    workspace: str, job_id: str, kind_name: str, dataset_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    """The record of a new job (to write alone or inside another transaction)."""
    return {
        **job_key(workspace, job_id),
        "id": job_id,
        "kind": kind_name,
        "dataset_id": dataset_id,
        "params": params,
        "status": "queued",
        "checkpoint": {},
        "created_at": now_iso(),
    }


def submit(
    workspace: str,
    job_id: str,
    kind_name: str,
    dataset_id: str,
    params: dict[str, Any],
    *,
    delay_seconds: int = 0,
) -> bool:
    """Create a job unless one of that id is queued or running, and queue it; whether created."""
    item = job_item(workspace, job_id, kind_name, dataset_id, params)
    try:
        meta().put_item(
            Item=item,
            ConditionExpression="attribute_not_exists(pk) OR #status IN (:succeeded, :failed)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":succeeded": "succeeded", ":failed": "failed"},
        )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise
        return False
    enqueue(workspace, job_id, delay_seconds=delay_seconds)
    return True


def enqueue(workspace: str, job_id: str, *, delay_seconds: int = 0) -> None:
    queue_url = settings().maintenance_queue_url
    if not queue_url:
        logger.warning("no maintenance queue configured; job left queued", extra={"job_id": job_id})
        return
    aws.client("sqs").send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps({"job": {"workspace": workspace, "id": job_id}}),
        DelaySeconds=max(0, min(int(delay_seconds), 900)),
    )


def get(workspace: str, job_id: str) -> dict[str, Any] | None:
    item = meta().get_item(Key=job_key(workspace, job_id), ConsistentRead=True).get("Item")
    return to_native(item) if item else None


class Later(Exception):
    """A step that cannot advance yet (a compaction whose changes are newer than its cut may
    be): the run lets the job go and it runs again in ``seconds``."""

    def __init__(self, seconds: int) -> None:
        super().__init__(f"again in {seconds} s")
        self.seconds = seconds


class LostLease(Exception):
    """Another run owns the job now (or it ended); this one stops."""


def handle(message: dict[str, Any], deadline: Deadline, receive_count: int = 1) -> str:
    """Run the job a message names as far as this invocation can; what became of it."""
    reference = message.get("job")
    if not isinstance(reference, dict) or not isinstance(reference.get("id"), str):
        logger.error("malformed job message; dropped", extra={"message": message})
        return "unreadable"
    workspace, job_id = str(reference.get("workspace")), reference["id"]
    owner = uuid.uuid4().hex
    job = _acquire(workspace, job_id, owner, deadline)
    if job is None:
        return "busy-or-done"
    runner = KINDS.get(job.kind)
    if runner is None:
        _finish(job, owner, "failed", f"unknown job kind {job.kind!r}")
        return "failed"
    checkpoint = dict(job.checkpoint)
    try:
        while True:  # every run does at least one step, so a job always advances
            checkpoint, done = runner.step(job, checkpoint)
            if done:
                _finish(job, owner, "succeeded", None, checkpoint)
                return "succeeded"
            _commit(job, owner, checkpoint, deadline.lease_until())
            if deadline.near():
                _release(job, owner, checkpoint)
                enqueue(workspace, job_id)
                return "continued"
    except LostLease:
        logger.warning("job taken over by another run", extra={"job_id": job_id})
        return "lost"
    except Later as later:
        _release(job, owner, checkpoint)
        enqueue(workspace, job_id, delay_seconds=later.seconds)
        return "later"
    except Exception as exc:
        if receive_count >= MAX_RECEIVES:
            logger.exception("job abandoned after repeated failures", extra={"job_id": job_id})
            _finish(job, owner, "failed", str(exc)[:500], checkpoint)
            return "failed"
        _release(job, owner, checkpoint)
        raise


def _acquire(workspace: str, job_id: str, owner: str, deadline: Deadline) -> Job | None:
    item = leases.take(
        job_key(workspace, job_id),
        owner,
        until=deadline.lease_until(),
        now=int(time.time()),
        # ``runs`` counts the invocations that worked on the job (its continuations + 1).
        also=", updated_at = :at ADD runs :one",
        also_values={":at": now_iso(), ":one": 1},
    )
    if item is None:
        return None
    return Job(
        workspace=workspace,
        id=job_id,
        kind=str(item["kind"]),
        dataset_id=str(item.get("dataset_id", "")),
        params=dict(item.get("params") or {}),
        checkpoint=dict(item.get("checkpoint") or {}),
        status=str(item["status"]),
    )


def _update(job: Job, owner: str, expression: str, values: dict[str, Any]) -> None:
    try:
        meta().update_item(
            Key=job_key(job.workspace, job.id),
            UpdateExpression=expression,
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={
                "#owner": "owner",
                **{f"#{name}": name for name in ("status", "error") if f"#{name}" in expression},
            },
            ExpressionAttributeValues={":owner": owner, **values},
        )
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            raise LostLease from exc
        raise


def _commit(job: Job, owner: str, checkpoint: dict[str, Any], lease_until: int) -> None:
    _update(
        job,
        owner,
        "SET checkpoint = :checkpoint, lease_until = :until, updated_at = :at ADD steps :one",
        {":checkpoint": checkpoint, ":until": lease_until, ":at": now_iso(), ":one": 1},
    )


def _release(job: Job, owner: str, checkpoint: dict[str, Any]) -> None:
    with suppress(LostLease):
        _update(
            job,
            owner,
            "SET checkpoint = :checkpoint, lease_until = :zero REMOVE #owner",
            {":checkpoint": checkpoint, ":zero": 0},
        )


def _finish(
    job: Job, owner: str, status: str, error: str | None, checkpoint: dict[str, Any] | None = None
) -> None:
    values: dict[str, Any] = {
        ":status": status,
        ":at": now_iso(),
        ":checkpoint": checkpoint or {},
        ":expires": int(time.time()) + FINISHED_JOB_DAYS * 86400,
    }
    expression = (
        "SET #status = :status, finished_at = :at, checkpoint = :checkpoint, expires_at_epoch = :expires "
        "REMOVE #owner, lease_until"
    )
    if error:
        expression = expression.replace(" REMOVE", ", #error = :error REMOVE")
        values[":error"] = error
    _update(job, owner, expression, values)
