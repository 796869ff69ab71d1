"""Every route that takes an Idempotency-Key: a failed request is forgotten, a success replays.

Data-driven from the route table: a new route with the idempotency capability fails here until
it has a request below, so its idempotency records (and the grants they need) are exercised.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from routes import IDEMPOTENCY, ROUTES

from .conftest import Client
from .import_support import run_handler, s3_notification

IDEMPOTENT_ROUTES = sorted(name for name, route in ROUTES.items() if IDEMPOTENCY in route.grants)

# function -> body of a valid request against a dataset holding rows {"n": 1} and {"n": 2}
BODIES: dict[str, Callable[[str], Any]] = {
    "insert_rows": lambda _row: {"rows": [{"n": 3}]},
    "update_rows": lambda _row: {"where": {"n": 1}, "set": {"tag": "x"}},
    "delete_rows": lambda row: {"row_ids": [row]},
    "update_row": lambda _row: {"set": {"tag": "y"}},
    "replace_row": lambda _row: {"n": 5},
    "delete_row": lambda _row: None,
    "create_upload": lambda _row: {"filename": "more.csv"},
    "commit_import": lambda _row: {},
}


def _previewed_import(client: Client, dataset_id: str) -> str:
    """An upload made with ``preview``, its file arrived and validated: the import waits for a commit."""
    answer = client.post(f"/datasets/{dataset_id}/uploads", {"filename": "p.csv", "preview": True}).json()[
        "data"
    ]
    metadata = {name.removeprefix("x-amz-meta-"): value for name, value in answer["headers"].items()}
    put = boto3.client("s3").put_object(
        Bucket=answer["bucket"], Key=answer["key"], Body=b"n\n9\n", Metadata=metadata
    )
    run_handler(
        json.dumps(
            s3_notification(answer["bucket"], answer["key"], 4, put["ETag"].strip('"'), put["VersionId"])
        )
    )
    return str(answer["import_id"])


def test_every_idempotent_route_has_a_request_here() -> None:
    assert sorted(BODIES) == IDEMPOTENT_ROUTES


def _path(function: str, dataset_id: str, row_id: str, import_id: str = "imp_" + "0" * 24) -> str:
    return ROUTES[function].path.format(dataset_id=dataset_id, row_id=row_id, import_id=import_id)


@pytest.mark.parametrize("function", IDEMPOTENT_ROUTES)
def test_a_failed_request_is_forgotten_and_a_success_is_replayed(client: Client, function: str) -> None:
    method = ROUTES[function].method
    headers = {"Idempotency-Key": f"key-{function}"}
    # Given a dataset with two rows,
    dataset_id = client.post("/datasets", {"name": "idem"}).json()["data"]["id"]
    inserted = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"n": 1}, {"n": 2}]}).json()["data"]
    row_id = inserted["rows"][0]["id"]
    body = BODIES[function](row_id)

    # When the request first fails (no such dataset), then the same key may be used again,
    missing = _path(function, "ds_" + "0" * 20, str(uuid.uuid4()))
    for _ in range(2):
        failed = client.request(method, missing, json_body=body, headers=headers)
        assert failed.status == 404, failed.body

    # and a success with that key is answered again, unchanged, on a retry.
    import_id = _previewed_import(client, dataset_id) if "{import_id}" in ROUTES[function].path else ""
    path = _path(function, dataset_id, row_id, import_id)
    first = client.request(method, path, json_body=body, headers=headers)
    assert 200 <= first.status < 300, first.body
    replay = client.request(method, path, json_body=body, headers=headers)
    assert (replay.status, replay.json()) == (first.status, first.json())
    assert replay.headers.get("Idempotent-Replayed") == "true"
