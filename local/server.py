"""The local HTTP front door: what API Gateway does before a request reaches a function.

Every method on every path is resolved against the route table (``local.dispatch.resolve``)
with the raw path (still percent-encoded, as REST APIs pass it), query string, headers and
body bytes; the proxy event then runs in a worker process of the route's function
(``local/lambdas.py``), so concurrent requests are isolated as Lambda isolates them. Bodies
over the limit are refused with 413 in the error envelope from ``Content-Length`` alone,
before the body is read (also before ``100 Continue``), as API Gateway refuses oversized
payloads. A function that raises or crashes is a 500 ``internal_error`` with the
invocation's request id; one that outlives its timeout is API Gateway's 504.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from datasets_core.errors import PayloadTooLarge

from .dispatch import HttpResponse, resolve, to_http
from .lambdas import Lambdas, Outcome

# An oversized body is read and discarded up to this size after the 413, so the client (which
# sends the whole body before reading the answer) sees the 413 rather than a reset connection.
DRAIN_LIMIT = 64 * 1024 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


def _log(message: str) -> None:
    # One write per line: request threads and the workers share stdout.
    sys.stdout.write(f"[http] {message}\n")
    sys.stdout.flush()


def answer(method: str, path: str, outcome: Outcome) -> HttpResponse:
    """The HTTP answer to an invocation, as API Gateway gives it (errors in the envelope)."""
    if outcome.ok:
        try:
            return to_http(outcome.result)
        except (ValueError, TypeError, AttributeError) as exc:
            _log(f"{method} {path}: {exc} ({outcome.request_id})")
    elif outcome.kind == "timeout":
        return _error(504, "timeout", "The request took too long.", {"request_id": outcome.request_id})
    elif outcome.kind == "throttled":
        return _error(429, "rate_limited", "Too many requests at once; retry shortly.", {})
    elif outcome.kind == "stopped":
        return _error(503, "unavailable", "The local stack is stopping.", {})
    else:
        error = outcome.error or {}
        _log(
            f"{method} {path} failed ({outcome.request_id}): {error.get('errorType')}: "
            f"{error.get('errorMessage')}"
        )
    return _error(
        500, "internal_error", "Something went wrong on our side.", {"request_id": outcome.request_id}
    )


def _error(status: int, code: str, message: str, details: dict) -> HttpResponse:
    body = json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()
    return HttpResponse(status, {"Content-Type": "application/json"}, body)


class _TooLarge(Exception):
    pass


class ApiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "datasets-local"
    max_body_bytes = 6 * 1024 * 1024
    lambdas: Lambdas

    # --- one entry point for every method ---------------------------------------------------
    def _serve(self) -> None:
        try:
            body = self._read_body()
        except _TooLarge:
            return
        url = urlsplit(self.path)
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            headers[name] = value  # a repeated header keeps its last value, as in ``headers`` of the event
        resolved = resolve(self.command, url.path, query_string=url.query, headers=headers, body=body)
        if isinstance(resolved, HttpResponse):
            response = resolved
        else:
            route, event = resolved
            response = answer(self.command, url.path, self.lambdas.invoke(route.function, event))
        self.send_response(response.status)
        for name, value in response.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def __getattr__(self, name: str) -> object:
        # Any other method (TRACE, QUERY, ...) gets the envelope (405 on a known path), not a bare 501.
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    # --- body --------------------------------------------------------------------------------
    def handle_expect_100(self) -> bool:
        if self._declared_length() > self.max_body_bytes:
            self._refuse_too_large()
            self.close_connection = True
            return False
        return super().handle_expect_100()

    def _declared_length(self) -> int:
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return 0

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = self._declared_length()
        if length > self.max_body_bytes:
            self._refuse_too_large()
            self._discard(length)
            raise _TooLarge
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            total += size
            if total > DRAIN_LIMIT:
                break
            chunk = self.rfile.read(size)
            self.rfile.readline()
            if total <= self.max_body_bytes:
                parts.append(chunk)
        if total > self.max_body_bytes:
            self._refuse_too_large()
            self.close_connection = True
            raise _TooLarge
        return b"".join(parts)

    def _discard(self, length: int) -> None:
        self.close_connection = True
        if length > DRAIN_LIMIT:
            return
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                return
            remaining -= len(chunk)

    def _refuse_too_large(self) -> None:
        error = PayloadTooLarge(
            f"The request body is larger than {self.max_body_bytes} bytes.",
            {"limit_bytes": self.max_body_bytes},
        )
        self._send_json(error.status, error.code, error.message, error.details, close=True)

    def _send_json(self, status: int, code: str, message: str, details: dict, close: bool = False) -> None:
        payload = json.dumps({"error": {"code": code, "message": message, "details": details}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        _log(f"{self.address_string()} {format % args}")


def make_server(host: str, port: int, max_body_bytes: int, lambdas: Lambdas) -> ThreadingHTTPServer:
    """A bound (listening) server; call ``serve_forever`` to start answering."""
    handler = type("Handler", (ApiRequestHandler,), {"max_body_bytes": max_body_bytes, "lambdas": lambdas})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.block_on_close = False  # an idle keep-alive connection must not hold up Ctrl-C
    return server
