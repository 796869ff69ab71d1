"""Where snapshots live and what each version records (no pyarrow here).

S3, Hive-style, one folder per version so other engines read a version by its folder::

    <replica prefix>ws=<workspace>/ds=<dataset id>/v=<version>/part-00000.parquet

Parquet columns are ``row_index``, ``id``, ``created_at``, ``updated_at`` and the user
columns under their own names (types: string, number → int64 or decimal128, boolean, date32,
datetime → timestamp[us, UTC], json → its text). Parts are sorted by ``row_index`` and hold
disjoint ranges.

The meta table keeps one item per kept version (``WS#<ws>`` / ``DSVER#<id>#<version>``) with
what ``GET .../versions`` shows and what ``as_of`` reads; the dataset item points at the
current one (``replica``).
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from .. import aws
from ..config import settings
from ..errors import VersionNotFound
from ..jsonutil import to_native
from ..records import Dataset, ReplicaPointer
from ..store.datasets import dataset_key
from ..store.tables import error_code, meta, query_all, ws_pk


def dataset_prefix(workspace: str, dataset_id: str) -> str:
    return f"{settings().replica_prefix}ws={workspace}/ds={dataset_id}/"


def version_prefix(dataset: Dataset, version: int) -> str:
    return f"{dataset_prefix(dataset.workspace, dataset.id)}v={version}/"


def part_key(dataset: Dataset, version: int, number: int) -> str:
    return f"{version_prefix(dataset, version)}part-{number:05d}.parquet"


def _version_key(workspace: str, dataset_id: str, version: int) -> dict[str, str]:
    return {"pk": ws_pk(workspace), "sk": f"DSVER#{dataset_id}#{version:012d}"}


def allocate_version(dataset: Dataset) -> int:
    """A version number no other snapshot of the dataset will use."""
    response = meta().update_item(
        Key=dataset_key(dataset.workspace, dataset.id),
        UpdateExpression="ADD versions_allocated :one",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeValues={":one": 1},
        ReturnValues="UPDATED_NEW",
    )
    return int(response["Attributes"]["versions_allocated"])


def record_version(dataset: Dataset, pointer: ReplicaPointer) -> None:
    """Keep a version's description (before the dataset points at it)."""
    meta().put_item(
        Item={**_version_key(dataset.workspace, dataset.id, pointer.version), **pointer.to_item()}
    )


def published(dataset: Dataset) -> list[ReplicaPointer]:
    """Versions the dataset has pointed at and still keeps, newest first: a version numbered
    after the current one is a compaction or import still publishing (or about to be removed)."""
    current = dataset.replica.version if dataset.replica else 0
    return [pointer for pointer in versions(dataset.workspace, dataset.id) if pointer.version <= current]


def versions(workspace: str, dataset_id: str) -> list[ReplicaPointer]:
    """Kept versions, newest first."""
    items = query_all(
        meta(),
        KeyConditionExpression=Key("pk").eq(ws_pk(workspace)) & Key("sk").begins_with(f"DSVER#{dataset_id}#"),
        ScanIndexForward=False,
        ConsistentRead=True,
    )
    return [pointer for item in items if (pointer := ReplicaPointer.from_item(to_native(item))) is not None]


def version(workspace: str, dataset_id: str, number: int) -> ReplicaPointer:
    """One kept version (``VersionNotFound``)."""
    item = meta().get_item(Key=_version_key(workspace, dataset_id, number), ConsistentRead=True).get("Item")
    pointer = ReplicaPointer.from_item(to_native(item) if item else None)
    if pointer is None:
        raise VersionNotFound(number)
    return pointer


def forget_version(dataset: Dataset, version: int) -> None:
    """Remove a version's files and its description (retention, abandoned compactions)."""
    delete_prefix(version_prefix(dataset, version))
    meta().delete_item(Key=_version_key(dataset.workspace, dataset.id, version))


def forget_description(dataset: Dataset, version: int) -> None:
    """Remove a version's description only (a version that was never published; its files stay)."""
    meta().delete_item(Key=_version_key(dataset.workspace, dataset.id, version))


def forget_all(workspace: str, dataset_id: str) -> None:
    """Remove every version of a deleted dataset (files and descriptions)."""
    delete_prefix(dataset_prefix(workspace, dataset_id))
    for pointer in versions(workspace, dataset_id):
        meta().delete_item(Key=_version_key(workspace, dataset_id, pointer.version))


def delete_prefix(prefix: str) -> int:
    """Delete every object under ``prefix`` of the replica bucket; how many."""
    s3 = aws.client("s3")
    bucket = settings().replica_bucket
    removed = 0
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
        removed += len(keys)
    return removed


def public(pointer: ReplicaPointer, current: int | None) -> dict[str, Any]:
    """A version as ``GET .../versions`` shows it."""
    return {
        "version": pointer.version,
        "created_at": pointer.created_at,
        "row_count": pointer.rows,
        "cause": pointer.cause,
        "current": pointer.version == current,
        "bytes": pointer.bytes,
    }


def object_exists(key: str) -> bool:
    try:
        aws.client("s3").head_object(Bucket=settings().replica_bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True
