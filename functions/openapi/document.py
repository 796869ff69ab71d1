"""The OpenAPI 3.1 document, built from the route table and the contracts (nothing else).

Schemas come from the pydantic models named in ``contracts.py`` (one set of component
schemas for every body and answer); error responses from each route's scope, body,
parameters and the codes its contract adds, with the HTTP status of each code taken from
``datasets_core.errors``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import TypeAdapter

from contracts import CONTRACTS, IDEMPOTENCY_KEY, PATH_PARAMS, TAGS, Answer, Contract, Param
from datasets_core import api_models, errors
from routes import IDEMPOTENCY, ROUTES, Route

TITLE = "Datasets API"
VERSION = "1.0.0"
DESCRIPTION = """Tabular datasets over HTTPS with scoped API keys and a PostgREST-style query string.

Authenticate with `Authorization: Bearer <key>` (or `X-Api-Key: <key>`); keys in the query
string are refused. Every answer is `{"data": ...}` (lists add `"meta"`); every error is
`{"error": {"code", "message", "details"}}` with the HTTP status of its code."""
REF = "#/components/schemas/{model}"
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <key>`"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key", "description": "`X-Api-Key: <key>`"},
}
_ERROR_REF = {"$ref": REF.format(model="ErrorResponse")}


def error_statuses() -> dict[str, int]:
    """Every error code the API answers with, and its HTTP status."""
    found: dict[str, int] = {"internal_error": 500}
    pending: list[type[errors.ApiError]] = [errors.ApiError]
    while pending:
        cls = pending.pop()
        found[cls.code] = cls.status
        pending.extend(cls.__subclasses__())
    return found


def error_codes(route: Route, contract: Contract) -> list[str]:
    """The codes ``route`` can answer with, derived from its shape plus its contract's own."""
    codes = ["rate_limited", "internal_error"]
    if route.scope is not None:
        codes += ["unauthorized", "insufficient_scope"]
    if contract.body is not None:
        codes += ["invalid_body", "payload_too_large"]
    if IDEMPOTENCY in route.grants:
        codes += ["invalid_body", "conflict"]
    if contract.query:
        codes.append("invalid_query")
    for name in path_parameter_names(route.path):
        codes += PATH_PARAMS[name].errors
    codes += contract.errors
    return list(dict.fromkeys(codes))


def path_parameter_names(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


class _Schemas:
    """Collects every type the document names and renders them in one pass (shared $defs)."""

    def __init__(self) -> None:
        self._inputs: list[tuple[tuple[str, int], str, TypeAdapter[Any]]] = []

    def add(self, annotation: Any, mode: str) -> tuple[str, int]:
        key = (mode, len(self._inputs))
        self._inputs.append((key, mode, TypeAdapter(annotation)))
        return key

    def render(self) -> tuple[dict[tuple[str, int], dict[str, Any]], dict[str, Any]]:
        by_key, defs = TypeAdapter.json_schemas(
            [(key, mode, adapter) for key, mode, adapter in self._inputs],  # type: ignore[misc]
            ref_template=REF,
        )
        return {key: schema for (key, _mode), schema in by_key.items()}, defs.get("$defs", {})


def _parameter(param: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": param.location, "schema": dict(param.schema)}
    if param.description:
        out["description"] = param.description
    if param.required or param.location == "path":
        out["required"] = True
    if param.example is not None:
        out["example"] = param.example
    if param.style is not None:
        out["style"] = param.style
    if param.explode is not None:
        out["explode"] = param.explode
    return out


def _envelope(data: dict[str, Any] | None, meta: dict[str, Any] | None) -> dict[str, Any]:
    properties: dict[str, Any] = {"data": data if data is not None else {}}
    required = ["data"]
    if meta is not None:
        properties["meta"] = meta
        required.append("meta")
    return {"type": "object", "properties": properties, "required": required}


def _error_responses(codes: Iterable[str]) -> dict[str, Any]:
    statuses = error_statuses()
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(statuses[code], []).append(code)
    responses: dict[str, Any] = {}
    for status in sorted(by_status):
        listed = by_status[status]
        example = {"error": {"code": listed[0], "message": "…", "details": {}}}
        responses[str(status)] = {
            "description": "Error codes: " + ", ".join(f"`{code}`" for code in listed) + ".",
            "content": {"application/json": {"schema": _ERROR_REF, "example": example}},
        }
        if status == 429:
            responses[str(status)]["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before retrying (the key's rate window ends then).",
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                }
            }
    return responses


def _operation(route: Route, contract: Contract, schemas: _Schemas) -> dict[str, Any]:
    """The operation object; its schemas are placeholders (``_Schemas`` keys) ``build`` resolves."""
    answer: Answer = contract.answer
    operation: dict[str, Any] = {
        "operationId": route.function,
        "summary": route.summary,
        "tags": [contract.tag],
    }
    description = contract.description
    if route.scope is not None:
        description = (description + "\n\n" if description else "") + f"Requires the `{route.scope}` scope."
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
        operation["x-required-scope"] = route.scope
    else:
        operation["security"] = []
    if description:
        operation["description"] = description

    params = [PATH_PARAMS[name] for name in path_parameter_names(route.path)] + list(contract.query)
    if IDEMPOTENCY in route.grants:
        params.append(IDEMPOTENCY_KEY)
    if params:
        operation["parameters"] = [_parameter(param) for param in params]

    if contract.body is not None:
        key = schemas.add(contract.body.type, "validation")
        media: dict[str, Any] = {
            "schema": key,
            "examples": {
                name: {"summary": summary, "value": value}
                for name, (summary, value) in contract.body.examples.items()
            },
        }
        body: dict[str, Any] = {"required": True, "content": {"application/json": media}}
        if contract.body.description:
            body["description"] = contract.body.description
        operation["requestBody"] = body

    if answer.raw is not None:
        success_schema: Any = dict(answer.raw)
    else:
        data_key = schemas.add(answer.data, "serialization") if answer.data is not None else None
        meta_key = schemas.add(answer.meta, "serialization") if answer.meta is not None else None
        success_schema = ("envelope", data_key, meta_key)
    success: dict[str, Any] = {
        "description": answer.description or "OK",
        "content": {media_type: {"schema": success_schema} for media_type in answer.media_types},
    }
    if IDEMPOTENCY in route.grants:
        success["headers"] = {
            "Idempotent-Replayed": {
                "description": "`true` when this is the stored answer of an earlier request with the "
                "same Idempotency-Key.",
                "schema": {"type": "string", "enum": ["true"]},
            }
        }
    operation["responses"] = {str(answer.status): success, **_error_responses(error_codes(route, contract))}
    return operation


def build(
    routes: Mapping[str, Route] = ROUTES, contracts: Mapping[str, Contract] = CONTRACTS
) -> dict[str, Any]:
    missing = sorted(set(routes) - set(contracts))
    if missing:
        raise LookupError(f"routes without a contract in functions/contracts.py: {missing}")
    schemas = _Schemas()
    schemas.add(api_models.ErrorResponse, "serialization")  # every error response's $ref
    paths: dict[str, dict[str, Any]] = {}
    for name, route in routes.items():
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, contracts[name], schemas)
    rendered, defs = schemas.render()

    def resolve(value: Any) -> Any:
        if isinstance(value, tuple) and len(value) == 2 and value[0] in ("validation", "serialization"):
            return rendered[value]
        if isinstance(value, tuple) and value and value[0] == "envelope":
            _, data_key, meta_key = value
            return _envelope(
                rendered[data_key] if data_key else None, rendered[meta_key] if meta_key else None
            )
        if isinstance(value, dict):
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "servers": [{"url": "/v1"}],
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "paths": resolve(paths),
        "components": {"schemas": dict(sorted(defs.items())), "securitySchemes": SECURITY_SCHEMES},
    }
