"""Contract test: schemathesis drives every operation of /v1/openapi.json against the local stack.

Valid and invalid inputs (schemathesis' examples, coverage and fuzzing phases, positive and
negative data) must get answers the document allows: never a 5xx, only documented statuses,
bodies matching the documented schemas, the documented content types. Bounded and
deterministic: a fixed seed and a fixed number of examples per operation.

The calls use a key with every scope in a workspace of their own (made with
``datasets-admin``), so the datasets and keys they create do not collide with the other e2e
tests sharing the stack. Path parameters naming a dataset or row are pointed at a real
dataset of that workspace, so the generated queries and writes reach the real logic instead
of stopping at ``dataset_not_found``.

Extra cases at the end send what generators rarely produce: bodies that are not UTF-8, JSON
nested 1,000 levels deep, numbers past any range.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from datasets_core.auth import SCOPES
from openapi.document import build as build_document
from tests.e2e.conftest import Stack

SEED = 20261125
MAX_EXAMPLES = 100
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
WORKSPACE = "contract"
# Operations that must not be pointed at the shared dataset: deleting it would leave every
# later case with nothing but 404s.
KEEP_GENERATED_IDS = {"delete_dataset"}


class Target:
    """The contract workspace: its key and one dataset with typed, indexed columns and rows."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        created = stack.admin("create-key", "--workspace", WORKSPACE, "--scopes", ",".join(SCOPES))
        assert created.returncode == 0, created.stderr
        self.key = created.stdout.strip().splitlines()[-1]
        planned = stack.admin("set-plan", "--workspace", WORKSPACE, "--max-datasets", "1000")
        assert planned.returncode == 0, planned.stderr
        dataset = self.call(
            "POST",
            "/datasets",
            json={
                "name": "contract target",
                "columns": [
                    {"name": "email", "type": "string", "indexed": True},
                    {"name": "amount", "type": "number", "indexed": True},
                    {"name": "signed", "type": "date"},
                    {"name": "vip", "type": "boolean"},
                    {"name": "meta", "type": "json"},
                ],
            },
        )
        assert dataset.status_code == 201, dataset.text
        self.dataset_id = dataset.json()["data"]["id"]
        rows = [
            {"email": f"u{i}@acme.io", "amount": i * 10, "signed": f"2024-01-{i + 1:02d}", "vip": i % 2 == 0}
            for i in range(20)
        ]
        inserted = self.call("POST", f"/datasets/{self.dataset_id}/rows", json={"rows": rows})
        assert inserted.status_code == 201, inserted.text
        self.row_ids = [row["id"] for row in inserted.json()["data"]["rows"]]

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.stack.request(method, path, key=self.key, **kwargs)


@pytest.fixture(scope="module")
def target(stack: Stack) -> Target:
    return Target(stack)


# The document the stack serves is built from the route table and the contracts alone, so it is
# built here at collection time (schemathesis parametrizes per operation before any stack runs);
# test_the_stack_serves_this_document checks that the stack serves exactly this document.
DOCUMENT = build_document()
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
        },
    }
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


def test_the_stack_serves_this_document(stack: Stack) -> None:
    assert stack.request("GET", "/openapi.json", key=None).json() == json.loads(json.dumps(DOCUMENT))


@schema.parametrize()
def test_every_operation_keeps_its_contract(case: Any, stack: Stack, target: Target) -> None:
    operation = case.operation.definition.raw.get("operationId")
    if operation not in KEEP_GENERATED_IDS and case.path_parameters:
        if "dataset_id" in case.path_parameters:
            case.path_parameters["dataset_id"] = target.dataset_id
        if "row_id" in case.path_parameters and _is_uuid(case.path_parameters["row_id"]):
            # A well-formed id reaches a real row; a malformed one still tests invalid_row_id.
            case.path_parameters["row_id"] = target.row_ids[len(str(case.path_parameters["row_id"])) % 20]
    case.call_and_validate(
        base_url=stack.base_url, headers={"Authorization": f"Bearer {target.key}"}, checks=CHECKS
    )


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# --- inputs generators rarely produce --------------------------------------------------------
DEEP = "[" * 1000 + "]" * 1000
BODIES = {
    "not UTF-8": b'{"name": "\xff\xfe bad"}',
    "UTF-16": json.dumps({"name": "utf16"}).encode("utf-16"),
    "nested 1,000 levels": ('{"rows": [{"deep": ' + DEEP + "}]}").encode(),
    "nested 100,000 levels": b"[" * 100_000,
    "number 1e400": b'{"rows": [{"amount": 1e400}], "name": 1e400, "set": {"amount": 1e400}}',
    "number of 5,000 digits": b'{"name": ' + b"9" * 5000 + b', "rows": [{"amount": ' + b"9" * 5000 + b"}]}",
}
WRITES = [
    ("POST", "/datasets"),
    ("PATCH", "/datasets/{dataset}"),
    ("POST", "/keys"),
    ("POST", "/datasets/{dataset}/rows"),
    ("PATCH", "/datasets/{dataset}/rows"),
    ("DELETE", "/datasets/{dataset}/rows"),
    ("PATCH", "/datasets/{dataset}/rows/{row}"),
    ("PUT", "/datasets/{dataset}/rows/{row}"),
    ("POST", "/datasets/{dataset}/uploads"),
]


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize(("method", "path"), WRITES, ids=[f"{m} {p}" for m, p in WRITES])
def test_unreadable_bodies_are_400_invalid_body(target: Target, method: str, path: str, body: bytes) -> None:
    url = path.format(dataset=target.dataset_id, row=target.row_ids[0])
    answer = target.call(method, url, data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_body"


QUERIES = {
    "offset of 20 digits": ("/datasets/{dataset}/rows", "offset=99999999999999999999"),
    "offset of 5,000 digits": ("/datasets/{dataset}/rows", "offset=" + "9" * 5000),
    "limit of 39 digits": ("/datasets/{dataset}/rows", "limit=" + "9" * 39),
    "ordered deep offset": ("/datasets/{dataset}/rows", "order=amount.desc&offset=99999999999999999999"),
    "count=none deep offset": ("/datasets/{dataset}/rows", "count=none&offset=99999999999999999999"),
    "filter 1e400": ("/datasets/{dataset}/rows", "amount=gt.1e400"),
    "filter 1e-400": ("/datasets/{dataset}/rows", "amount=lt.1e-400"),
    "datasets offset": ("/datasets", "offset=99999999999999999999"),
    "imports offset": ("/datasets/{dataset}/imports", "offset=99999999999999999999"),
    "changes offset": ("/datasets/{dataset}/rows/{row}/changes", "offset=99999999999999999999"),
}


@pytest.mark.parametrize(("path", "query"), QUERIES.values(), ids=QUERIES.keys())
def test_out_of_range_query_values_are_400_invalid_query(target: Target, path: str, query: str) -> None:
    url = path.format(dataset=target.dataset_id, row=target.row_ids[0]) + "?" + query
    answer = target.call("GET", url)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_query"


def test_a_39_digit_filter_value_is_answered_not_a_server_error(target: Target) -> None:
    answer = target.call("GET", f"/datasets/{target.dataset_id}/rows?amount=eq.{'9' * 39}")
    assert answer.status_code in (200, 400), answer.text
