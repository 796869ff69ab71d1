"""The OpenAPI document: valid 3.1, complete, and true to the route table and the contracts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from contracts import CONTRACTS
from openapi.document import build, error_statuses
from routes import IDEMPOTENCY, ROUTES

ROOT = Path(__file__).resolve().parents[2]
WRITE_METHODS = {"post", "patch", "put", "delete"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def schema_validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of ``schema`` whose ``#/components/...`` references resolve in ``document``."""
    registry: Registry = Registry().with_resource("urn:api", DRAFT202012.create_resource(document))
    rebased = json.loads(json.dumps(schema).replace('"#/components/', '"urn:api#/components/'))
    return Draft202012Validator(rebased, registry=registry)


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on any violation of the OpenAPI 3.1 schema


def test_every_route_has_exactly_one_contract_and_one_operation(document: dict[str, Any]) -> None:
    assert set(CONTRACTS) == set(ROUTES)
    found = {operation["operationId"]: (path, method) for path, method, operation in operations(document)}
    assert found == {name: (route.path, route.method.lower()) for name, route in ROUTES.items()}


def test_a_route_without_a_contract_is_refused() -> None:
    contracts = {name: c for name, c in CONTRACTS.items() if name != "get_row"}
    with pytest.raises(LookupError, match="get_row"):
        build(contracts=contracts)


def test_no_operation_answers_422_and_every_error_uses_the_envelope(document: dict[str, Any]) -> None:
    statuses = set(error_statuses().values())
    for path, method, operation in operations(document):
        responses = operation["responses"]
        assert "422" not in responses, (path, method)
        successes = [s for s in responses if s.startswith("2")]
        assert len(successes) == 1, (path, method)
        for status, response in responses.items():
            if status.startswith("2"):
                continue
            assert int(status) in statuses
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (path, method, status)
        assert {"429", "500"} <= set(responses), (path, method)


def test_creates_answer_201_and_other_operations_200(document: dict[str, Any]) -> None:
    created = {"create_key", "create_dataset", "insert_rows", "create_upload"}
    for _path, _method, operation in operations(document):
        success = next(s for s in operation["responses"] if s.startswith("2"))
        accepted = operation["operationId"] == "commit_import"  # the import goes on in the background
        expected = "201" if operation["operationId"] in created else "202" if accepted else "200"
        assert success == expected, operation["operationId"]


def test_security_public_routes_have_none_others_take_either_header(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearer"]["description"],
    }
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-Api-Key")
    for _path, _method, operation in operations(document):
        route = ROUTES[operation["operationId"]]
        if route.scope is None:
            assert operation["security"] == [], route
            assert "401" not in operation["responses"]
        else:
            assert operation["security"] == [{"bearer": []}, {"apiKey": []}], route
            assert {"401", "403"} <= set(operation["responses"])
            assert route.scope in operation["description"]


def test_writes_take_an_idempotency_key_and_may_answer_409(document: dict[str, Any]) -> None:
    for _path, method, operation in operations(document):
        route = ROUTES[operation["operationId"]]
        headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
        if IDEMPOTENCY in route.grants:
            assert method in WRITE_METHODS
            assert headers == ["Idempotency-Key"], route
            assert "409" in operation["responses"]
        else:
            assert headers == [], route


def test_every_operation_has_a_tag_and_the_tags_are_declared(document: dict[str, Any]) -> None:
    declared = {tag["name"] for tag in document["tags"]}
    assert declared == {"keys", "datasets", "rows", "imports", "meta"}
    for _path, _method, operation in operations(document):
        assert len(operation["tags"]) == 1 and operation["tags"][0] in declared


def test_every_write_with_a_body_has_examples_that_fit_its_schema(document: dict[str, Any]) -> None:
    with_body = set()
    for path, method, operation in operations(document):
        body = operation.get("requestBody")
        if body is None:
            continue
        with_body.add(operation["operationId"])
        media = body["content"]["application/json"]
        assert media["examples"], (path, method)
        validator = schema_validator(document, media["schema"])
        for name, example in media["examples"].items():
            errors = list(validator.iter_errors(example["value"]))
            assert not errors, (operation["operationId"], name, errors[0].message)
    assert with_body == {
        "create_key",
        "create_dataset",
        "update_dataset",
        "insert_rows",
        "update_rows",
        "delete_rows",
        "update_row",
        "replace_row",
        "create_upload",
        "commit_import",
    }


def test_insert_rows_documents_its_three_shapes_and_upsert(document: dict[str, Any]) -> None:
    media = document["paths"]["/datasets/{dataset_id}/rows"]["post"]["requestBody"]["content"]
    examples = media["application/json"]["examples"]
    assert isinstance(examples["array"]["value"], list)
    assert "rows" in examples["wrapped"]["value"] and "rows" not in examples["object"]["value"]
    assert examples["upsert"]["value"]["upsert_on"] == "email"
    validator = schema_validator(document, media["application/json"]["schema"])
    assert not validator.is_valid(42) and not validator.is_valid({"rows": [], "upsert_on": "x"})


def test_rows_query_parameters_describe_filters_and_every_reserved_parameter(
    document: dict[str, Any],
) -> None:
    params = {p["name"]: p for p in document["paths"]["/datasets/{dataset_id}/rows"]["get"]["parameters"]}
    assert set(params) == {
        "dataset_id",
        "filters",
        "select",
        "order",
        "limit",
        "offset",
        "cursor",
        "count",
        "distinct",
        "search",
    }
    filters = params["filters"]
    assert (filters["in"], filters["style"], filters["explode"]) == ("query", "form", True)
    assert filters["schema"]["type"] == "object"
    assert "{column}=[not.]{op}.{value}" in filters["description"] and "%2B" in filters["description"]
    values = schema_validator(document, filters["schema"])
    assert values.is_valid({"status": "eq.active", "amount": "not.gte.100", "tag": "in.(a,b)"})
    assert not values.is_valid({"status": "equals.active"})
    assert not values.is_valid({"limit": "eq.5"})  # reserved names are not filters
    assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
    listing = {p["name"] for p in document["paths"]["/datasets"]["get"]["parameters"]}
    assert listing == {"limit", "offset", "q", "sort"}


def test_success_schemas_accept_what_the_api_answers(document: dict[str, Any]) -> None:
    # Answers shaped as logic/ builds them (the e2e contract test checks the real ones).
    row = {
        "id": "00000000-0001-83c6-b750-7fb93a3ea614",
        "row_index": 1,
        "created_at": "2026-01-01T00:00:00.000Z",
    }
    row |= {"updated_at": "2026-01-01T00:00:00.000Z", "email": "a@acme.io", "amount": 12.5, "tags": ["x"]}
    page = {
        "data": {"rows": [row, {"id": row["id"], "email": None}], "total": None, "columns": ["email"]},
        "meta": {"plan": "scan", "items_read": 2, "limit": 100, "offset": 0, "next_cursor": None},
    }
    distinct = {
        "data": {"column": "email", "values": [{"value": "a@acme.io", "count": 2}], "total_unique": 1},
        "meta": page["meta"],
    }
    rows_get = document["paths"]["/datasets/{dataset_id}/rows"]["get"]["responses"]["200"]
    validator = schema_validator(document, rows_get["content"]["application/json"]["schema"])
    assert validator.is_valid(page) and validator.is_valid(distinct)
    assert not validator.is_valid({"data": {"rows": [{"email": "no id"}], "total": 1, "columns": []}})


def test_handlers_without_a_request_model_do_not_import_pydantic() -> None:
    # Cold start (SPEC §10): only the OpenAPI function and the endpoints Powertools validates
    # a body model for may load pydantic while their module is imported (each in a fresh
    # interpreter, laid out as on Lambda: functions/ and the core package on the path).
    may_load = {"openapi", "create_dataset", "update_dataset", "create_key", "create_upload"}
    path = f"{ROOT / 'functions'}:{ROOT / 'layers' / 'core' / 'python'}"
    for name in sorted(set(ROUTES) - may_load):
        done = subprocess.run(
            [sys.executable, "-c", f"import sys, {name}.handler; print('pydantic' in sys.modules)"],
            cwd=ROOT / "functions",
            env={"PYTHONPATH": path, "AWS_DEFAULT_REGION": "us-east-1"},
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.strip() == "False", f"{name}.handler imports pydantic at cold start"
