"""A minimal Lambda Invoke API for the local stack (``POST /2015-03-31/functions/{name}/invocations``).

Functions call each other with boto3 (``lambda_client.invoke``): every worker process gets
``AWS_ENDPOINT_URL_LAMBDA`` pointing here (botocore honours service-specific endpoints), and
the invocation runs in the named function's worker pool (``local/lambdas.py``), as any other.

As Lambda answers: 200 with the handler's JSON result as the body; 200 with
``X-Amz-Function-Error: Unhandled`` and the error payload when the handler raises, crashes
or times out; 404 ``ResourceNotFoundException`` for an unknown function; 429
``TooManyRequestsException`` when its workers stay busy. ``FunctionName`` may be a name, a
partial or full ARN, with or without a qualifier. ``InvocationType`` ``Event`` answers 202 at
once and runs in the background; ``DryRun`` answers 204.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from .lambdas import Lambdas

_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")
ACCOUNT = "123456789012"


def function_name(identifier: str) -> str:
    """``name``, ``name:qualifier``, ``<account>:function:name[:q]`` or a full ARN → ``name``."""
    parts = identifier.split(":")
    if "function" in parts[:-1]:
        return parts[parts.index("function") + 1]
    return parts[0]


class InvokeRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "datasets-local-lambda"
    # Headers and body go out as two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK of the headers (40 ms on Linux), on every keep-alive response.
    disable_nagle_algorithm = True
    lambdas: Lambdas
    region = "us-east-1"

    def do_POST(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        match = _PATH.match(urlsplit(self.path).path)
        if match is None:
            self._error(404, "UnknownOperationException", f"Unknown operation: POST {self.path}")
            return
        name = function_name(unquote(match.group(1)))
        if not self.lambdas.exists(name):
            arn = f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{name}"
            self._error(404, "ResourceNotFoundException", f"Function not found: {arn}")
            return
        try:
            event = json.loads(body) if body.strip() else {}
        except ValueError as exc:
            self._error(
                400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
            )
            return
        invocation_type = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type == "DryRun":
            self._send(204, b"", {})
            return
        if invocation_type == "Event":
            threading.Thread(target=self.lambdas.invoke, args=(name, event), daemon=True).start()
            self._send(202, b"", {})
            return
        outcome = self.lambdas.invoke(name, event)
        headers = {"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": outcome.request_id}
        if outcome.ok:
            self._send(200, json.dumps(outcome.result).encode(), headers)
        elif outcome.kind == "throttled":
            payload = {"Reason": "ReservedFunctionConcurrentInvocationLimitExceeded", "Type": "User"}
            self._error(429, "TooManyRequestsException", "Rate Exceeded.", payload)
        elif outcome.kind == "stopped":
            self._error(503, "ServiceException", "The local stack is stopping.")
        else:
            error = dict(outcome.error or {})
            error.setdefault("requestId", outcome.request_id)
            self._send(200, json.dumps(error).encode(), {**headers, "X-Amz-Function-Error": "Unhandled"})

    def _error(self, status: int, error_type: str, message: str, extra: dict[str, Any] | None = None) -> None:
        payload = {"Type": "User", "Message": message, "message": message, **(extra or {})}
        self._send(status, json.dumps(payload).encode(), {"x-amzn-ErrorType": error_type})

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stdout.write(f"[lambda] {self.address_string()} {format % args}\n")
        sys.stdout.flush()


def make_invoke_server(host: str, port: int, lambdas: Lambdas, region: str) -> ThreadingHTTPServer:
    """A bound (listening) Invoke endpoint; call ``serve_forever`` to start answering."""
    handler = type("Handler", (InvokeRequestHandler,), {"lambdas": lambdas, "region": region})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.block_on_close = False
    return server
