"""Route an HTTP request to the real handler of its route, as API Gateway would.

``resolve`` finds the route and builds its proxy event, ``to_http`` turns the function's
result into the HTTP answer; ``dispatch`` does both around an in-process call.

Unknown paths get API Gateway's 404 and known paths with another method its 405 with an
``Allow`` header (the deployed stack answers both with gateway/mock responses in the same
envelope).
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .events import STAGE, LambdaContext, match_path, proxy_event

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))

from routes import ROUTES, Route  # noqa: E402  (needs FUNCTIONS_DIR on sys.path)


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def envelope(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    """An answer in the SPEC §2 error envelope."""
    body = json.dumps({"error": {"code": code, "message": message, "details": details or {}}}).encode()
    return HttpResponse(status, {"Content-Type": "application/json", **(headers or {})}, body)


def find_route(method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
    """(route, path parameters, the methods the path has: empty when no route has the path)."""
    found: tuple[Route | None, dict[str, str]] = (None, {})
    methods: list[str] = []
    for route in ROUTES.values():
        params = match_path(route.path, path)
        if params is None:
            continue
        methods.append(route.method)
        if route.method == method:
            found = (route, params)
    return found[0], found[1], sorted(methods)


def handler_for(route: Route) -> Any:
    return importlib.import_module(f"{route.function}.handler").handler


def resolve(
    method: str,
    full_path: str,
    *,
    query_string: str = "",
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
) -> tuple[Route, dict[str, Any]] | HttpResponse:
    """API Gateway's part: the route and its proxy event, or the gateway's own 404/405 answer."""
    prefix = f"/{STAGE}"
    if not (full_path == prefix or full_path.startswith(prefix + "/")):
        return envelope(404, "not_found", "No such endpoint.")
    path = full_path[len(prefix) :] or "/"
    route, params, methods = find_route(method.upper(), path)
    if route is None:
        if methods:
            allowed = ", ".join(methods)
            return envelope(
                405,
                "method_not_allowed",
                f"{method.upper()} is not allowed on {full_path}; allowed: {allowed}.",
                {"allowed": methods},
                {"Allow": allowed},
            )
        return envelope(404, "not_found", "No such endpoint.")
    event = proxy_event(
        method=method.upper(),
        resource=route.path,
        path=path,
        path_parameters=params,
        query_string=query_string,
        headers=headers,
        body=body,
    )
    return route, event


def to_http(result: Any) -> HttpResponse:
    """The HTTP answer API Gateway makes of a function's proxy result (``ValueError``: malformed)."""
    if not isinstance(result, dict):
        raise ValueError(f"malformed Lambda proxy response: {type(result).__name__}")
    out_headers = {k: v for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        out_headers[name] = ", ".join(values)
    raw = result.get("body") or ""
    payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
    return HttpResponse(int(result.get("statusCode", 200)), out_headers, payload)


def dispatch(
    method: str,
    full_path: str,
    *,
    query_string: str = "",
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
) -> HttpResponse:
    """Serve one request whose ``full_path`` includes the stage (``/v1/datasets``) in this process.

    The integration tests call handlers this way; the local server runs them in worker
    processes instead (``local/lambdas.py``).
    """
    resolved = resolve(method, full_path, query_string=query_string, headers=headers, body=body)
    if isinstance(resolved, HttpResponse):
        return resolved
    route, event = resolved
    return to_http(handler_for(route)(event, LambdaContext(route.function)))
