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

Extra cases at the end send what generators rarely produce, to every operation of the
document that takes a body (derived from it, so new endpoints are covered): bodies that are
not UTF-8 (one byte ``\x80``), JSON nested past the parser's limit, and each documented example
body with extreme values at each leaf (numbers past any range, 39-digit integers, ``-0``,
``1e-400``, nesting of 990 levels, a lone surrogate); and ``offset`` of 20 digits on every
operation. None may be a 5xx; every answer is in the envelope.
"""

from __future__ import annotations

import json
import re
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
# Every operation of the document that takes a body (a new endpoint is covered by appearing
# there), with its path parameters pointed at the target's dataset and rows.
BODY_OPERATIONS = [
    (method.upper(), path, operation["operationId"])
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
    if "requestBody" in operation
]
# Answers that are documents, not envelopes: the OpenAPI document, Swagger UI's page and files.
NOT_ENVELOPED = {"openapi", "docs", "docs_asset"}
ALL_OPERATIONS = [
    (method.upper(), path, operation["operationId"])
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
]


def _url(target: Target, path: str, operation: str) -> str:
    """``path`` with its parameters filled: the target's dataset and first row; ids that exist
    nowhere for operations that would delete the target, and for keys and imports."""
    keep = operation in KEEP_GENERATED_IDS
    values = {
        "dataset_id": "ds_00000000000000000000" if keep else target.dataset_id,
        "row_id": target.row_ids[0],
        "key_id": "k" * 16,
        "import_id": "imp_" + "0" * 20,
        "asset": "swagger-ui.css",
    }
    return re.sub(r"\{(\w+)\}", lambda match: values.get(match.group(1), "x"), path)


def _examples(path: str, method: str) -> list[Any]:
    content = DOCUMENT["paths"][path][method.lower()]["requestBody"]["content"]["application/json"]
    return [example["value"] for example in content.get("examples", {}).values()] or [{}]


def _in_the_envelope(answer: requests.Response) -> None:
    assert answer.status_code < 500, answer.text[:500]
    assert answer.headers["Content-Type"].startswith("application/json"), answer.headers
    body = answer.json()
    assert isinstance(body, dict) and ({"data"} <= body.keys() or {"error"} <= body.keys()), body


DEEP = "[" * 1000 + "]" * 1000
BODIES = {
    "not UTF-8": b'{"name": "\xff\xfe bad"}',
    "one byte 0x80": b"\x80",
    "0x80 inside a string": b'{"name": "a\x80b", "rows": [{"name": "a\x80b"}], "set": {"name": "a\x80b"}}',
    "UTF-16": json.dumps({"name": "utf16"}).encode("utf-16"),
    "nested 1,000 levels": ('{"rows": [{"deep": ' + DEEP + "}]}").encode(),
    "nested 100,000 levels": b"[" * 100_000,
    "number 1e400": b'{"rows": [{"amount": 1e400}], "name": 1e400, "set": {"amount": 1e400}}',
    "number of 5,000 digits": b'{"name": ' + b"9" * 5000 + b', "rows": [{"amount": ' + b"9" * 5000 + b"}]}",
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
@pytest.mark.parametrize(
    ("method", "path", "operation"), BODY_OPERATIONS, ids=[o for _, _, o in BODY_OPERATIONS]
)
def test_unreadable_bodies_are_400_invalid_body(
    target: Target, method: str, path: str, operation: str, body: bytes
) -> None:
    url = _url(target, path, operation)
    answer = target.call(method, url, data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_body"


# JSON values placed at every leaf of every documented example body: numbers past DynamoDB's
# range and precision (and past a float's), negative zero, nesting just under the parser's
# limit (990 levels, in arrays and in objects), a lone surrogate (valid JSON, not Unicode).
EXTREMES = {
    "1e400": "1e400",
    "-1e400": "-1e400",
    "1e-400": "1e-400",
    "39 digits": "9" * 39,
    "-0": "-0",
    "-0.0": "-0.0",
    "990 arrays": "[" * 990 + "]" * 990,
    "990 objects": '{"a":' * 990 + "null" + "}" * 990,
    "lone surrogate": '"\\ud800"',
}
_HOLE = "\u0000extreme\u0000"


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _leaves(item, (*path, index))]
    return [path]


def _with(value: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    if not path:
        return replacement
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _with(value[path[0]], path[1:], replacement)  # type: ignore[index]
    return copy


def _bodies(example: Any, extreme: str) -> list[bytes]:
    """``example`` with each leaf in turn, then every leaf at once, replaced by ``extreme``."""
    paths = _leaves(example)
    texts = [json.dumps(_with(example, path, _HOLE)) for path in paths]
    everywhere = example
    for path in paths:
        everywhere = _with(everywhere, path, _HOLE)
    texts.append(json.dumps(everywhere))
    hole = json.dumps(_HOLE)
    return [text.replace(hole, extreme).encode() for text in dict.fromkeys(texts)]


@pytest.fixture(scope="module")
def scratch(target: Target) -> Target:
    """A second dataset of the contract workspace for writes that change rows (a bulk delete
    of ``where amount = -0`` must not empty the dataset the generated cases read)."""
    scratch = Target.__new__(Target)
    scratch.stack, scratch.key = target.stack, target.key
    created = target.call("POST", "/datasets", json={"name": "contract scratch " + uuid.uuid4().hex[:8]})
    assert created.status_code == 201, created.text
    scratch.dataset_id = created.json()["data"]["id"]
    rows = [{"email": f"s{i}@acme.io", "amount": i, "name": "s", "status": "active"} for i in range(20)]
    inserted = target.call("POST", f"/datasets/{scratch.dataset_id}/rows", json={"rows": rows})
    assert inserted.status_code == 201, inserted.text
    scratch.row_ids = [row["id"] for row in inserted.json()["data"]["rows"]]
    return scratch


@pytest.mark.parametrize("extreme", EXTREMES.values(), ids=EXTREMES.keys())
@pytest.mark.parametrize(
    ("method", "path", "operation"), BODY_OPERATIONS, ids=[o for _, _, o in BODY_OPERATIONS]
)
def test_extreme_values_anywhere_in_a_body_are_never_a_server_error(
    scratch: Target, method: str, path: str, operation: str, extreme: str
) -> None:
    url = _url(scratch, path, operation)
    for example in _examples(path, method):
        for body in _bodies(example, extreme):
            answer = scratch.call(method, url, data=body, headers={"Content-Type": "application/json"})
            _in_the_envelope(answer)


@pytest.mark.parametrize(
    ("method", "path", "operation"), ALL_OPERATIONS, ids=[o for _, _, o in ALL_OPERATIONS]
)
def test_an_offset_of_20_digits_is_never_a_server_error(
    scratch: Target, method: str, path: str, operation: str
) -> None:
    # On every operation: refused where offset pages, ignored or refused elsewhere, never a 5xx.
    url = _url(scratch, path, operation) + "?offset=99999999999999999999"
    body = (
        json.dumps(_examples(path, method)[0]).encode()
        if (method, path, operation) in BODY_OPERATIONS
        else None
    )
    answer = scratch.call(method, url, data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code < 500, answer.text[:500]
    if operation not in NOT_ENVELOPED:
        _in_the_envelope(answer)


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
