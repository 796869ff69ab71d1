"""The local stack as a user meets it: banner, public endpoints, API Gateway's edge behaviour."""

from __future__ import annotations

import re

import requests

from routes import ROUTES

from .conftest import Stack, wait_for

BANNER_FIELDS = ("API base URL", "API key", "AWS endpoint", "Lambda endpoint", "Drop bucket", "Drop prefix")


def banner(stack: Stack) -> dict[str, str]:
    pattern = re.compile(rf"^\s+({'|'.join(BANNER_FIELDS)})\s+(\S+)")
    fields = {}
    for line in stack.output:
        match = pattern.match(line)
        if match:
            fields[match.group(1)] = match.group(2)
    return fields if len(fields) == len(BANNER_FIELDS) else {}


def test_health_needs_no_key(stack: Stack) -> None:
    response = stack.request("GET", "/health", key=None)
    assert response.status_code == 200
    assert response.json() == {"data": {"status": "ok"}}


def test_banner_tells_how_to_reach_everything(stack: Stack) -> None:
    fields = wait_for(lambda: banner(stack), 10, "the banner")
    assert fields == {
        "API base URL": stack.base_url,
        "API key": stack.api_key,
        "AWS endpoint": stack.aws_endpoint,
        "Lambda endpoint": stack.lambda_endpoint,
        "Drop bucket": "datasets-drop-local",
        "Drop prefix": "s3://datasets-drop-local/drop/default/<dataset",
    }
    assert any(line.strip().startswith("curl ") and stack.api_key in line for line in stack.output)
    assert any(f"aws --endpoint-url {stack.aws_endpoint} s3 cp" in line for line in stack.output)


def test_bootstrap_key_has_every_scope_in_default(stack: Stack) -> None:
    keys = stack.request("GET", "/keys").json()["data"]
    bootstrap = [key for key in keys if key["name"] == "BOOTSTRAP_API_KEY"]
    assert len(bootstrap) == 1
    assert sorted(bootstrap[0]["scopes"]) == [
        "datasets:admin",
        "datasets:read",
        "datasets:write",
        "keys:admin",
    ]


def test_unknown_route_is_404_in_the_envelope(stack: Stack) -> None:
    for path in ("/v1/nothing-here", "/elsewhere"):
        response = requests.get(f"http://127.0.0.1:{stack.port}{path}", timeout=10)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_is_405_with_allow(stack: Stack) -> None:
    response = stack.request("PUT", "/datasets", json={"name": "x"})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET, POST"


def test_every_method_http_server_does_not_know_is_answered_in_the_envelope(stack: Stack) -> None:
    # TRACE, WebDAV's PROPFIND, a method made up: 405 with Allow where the path exists, else 404.
    for method in ("TRACE", "PROPFIND", "QUERY", "BREW"):
        on_route = stack.request(method, "/datasets/abc/rows")
        assert on_route.status_code == 405, (method, on_route.text)
        assert on_route.headers["Content-Type"] == "application/json"
        assert on_route.json()["error"]["code"] == "method_not_allowed"
        assert on_route.headers["Allow"] == "DELETE, GET, PATCH, POST"
        elsewhere = stack.request(method, "/nowhere")
        assert elsewhere.status_code == 404 and elsewhere.json()["error"]["code"] == "not_found"


def test_a_url_over_64_kb_is_414_in_the_envelope(stack: Stack) -> None:
    response = stack.request("GET", "/datasets?q=" + "a" * 70_000)
    assert response.status_code == 414
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "uri_too_long" and error["details"] == {"limit_bytes": 65_536}
    # A long URL under the limit still reaches its function.
    long_enough = stack.request("GET", "/datasets", params={"q": "a" * 60_000})
    assert long_enough.status_code == 200, long_enough.text[:300]


def test_too_many_headers_is_431_in_the_envelope(stack: Stack) -> None:
    headers = {f"X-Extra-{n}": "1" for n in range(120)}
    response = stack.request("GET", "/datasets", headers=headers)
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "headers_too_large"
    assert stack.request("GET", "/health").status_code == 200


def test_a_malformed_request_line_is_400_in_the_envelope(stack: Stack) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", stack.port), timeout=10) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1 extra\r\nHost: x\r\n\r\n")
        received = b""
        while True:  # the head and the body may arrive in separate reads
            head_end = received.find(b"\r\n\r\n")
            if head_end >= 0:
                length = re.search(rb"(?i)content-length:\s*(\d+)", received[:head_end])
                if length is None or len(received) >= head_end + 4 + int(length.group(1)):
                    break
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        answer = received.decode()
    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 400") and "application/json" in head
    assert '"code": "bad_request"' in body


def test_body_over_6_mb_is_413_before_any_handler(stack: Stack) -> None:
    body = b"x" * (6 * 1024 * 1024 + 1)
    response = stack.request("POST", "/datasets", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert error["details"]["limit_bytes"] == 6 * 1024 * 1024
    # The server is still fine afterwards.
    assert stack.request("GET", "/health", key=None).status_code == 200


def test_openapi_describes_every_route(stack: Stack) -> None:
    response = stack.request("GET", "/openapi.json", key=None)
    assert response.status_code == 200
    paths = response.json()["paths"]
    for route in ROUTES.values():
        assert route.path in paths, route
        assert route.method.lower() in paths[route.path], route


def test_docs_serve_swagger_ui(stack: Stack) -> None:
    response = stack.request("GET", "/docs", key=None)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html" in response.text and "swagger-ui" in response.text
