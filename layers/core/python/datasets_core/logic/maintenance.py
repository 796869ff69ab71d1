"""Background work the API hands off: purging a deleted dataset's rows."""

from __future__ import annotations

import json

from .. import aws
from ..config import settings
from ..observability import logger


def request_purge(workspace: str, dataset_id: str) -> None:
    """Queue the removal of a deleted dataset's rows.

    The dataset is already gone for readers and a ``PURGE#`` marker records the work, so a
    failed send is logged rather than failing the request; the marker is re-queued by the
    maintenance sweep.
    """
    queue_url = settings().maintenance_queue_url
    if not queue_url:
        logger.warning(
            "no maintenance queue configured; purge left pending", extra={"dataset_id": dataset_id}
        )
        return
    try:
        aws.client("sqs").send_message(
            QueueUrl=queue_url,
            MessageBody=json.dumps(
                {"task": "purge_dataset", "workspace": workspace, "dataset_id": dataset_id}
            ),
        )
    except Exception:  # noqa: BLE001 - the PURGE marker keeps the work; see docstring
        logger.exception("could not queue dataset purge", extra={"dataset_id": dataset_id})
