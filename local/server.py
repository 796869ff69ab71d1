"""The local HTTP front door: what API Gateway does before a request reaches a function.

Every method on every path is resolved against the route table (``local.dispatch.resolve``)
with the raw path (still percent-encoded, as REST APIs pass it), query string, headers and
body bytes; the proxy event then runs in a worker process of the route's function
(``local/lambdas.py``), so concurrent requests are isolated as Lambda isolates them. Bodies
over the limit are refused with 413 in the error envelope from ``Content-Length`` alone,
before the body is read (also before ``100 Continue``), as API Gateway refuses oversized
payloads. A function that raises or crashes is a 500 ``internal_error`` with the
invocation's request id; one that outlives its timeout is API Gateway's 504. What the HTTP
server itself refuses (a request line over 64 KB: 414, oversized headers: 431, any method it
cannot route: 405 with ``Allow``) is answered in the same envelope, never an HTML page.
"""

from __future__ import annotations

import contextlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from datasets_core.errors import PayloadTooLarge

from .dispatch import HttpResponse, envelope, resolve, to_http
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
        return _error(
            429, "rate_limited", "Too many requests at once; retry shortly.", {}, {"Retry-After": "1"}
        )
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


def _error(
    status: int, code: str, message: str, details: dict, headers: dict[str, str] | None = None
) -> HttpResponse:
    return envelope(status, code, message, details, headers)


class _TooLarge(Exception):
    pass


# http.server reads a request line of at most 64 KB (65,536 bytes: method, URL and version).
MAX_REQUEST_LINE_BYTES = 65_536
_PROTOCOL_ERRORS: dict[int, tuple[str, str, dict]] = {
    414: (
        "uri_too_long",
        f"The request line (method, URL and version) is longer than {MAX_REQUEST_LINE_BYTES:,} bytes. "
        "Shorten the query string: fewer or shorter filters, or a bulk write's 'where' in a body.",
        {"limit_bytes": MAX_REQUEST_LINE_BYTES},
    ),
    431: ("headers_too_large", "The request has too many headers, or one too long.", {}),
    505: ("http_version_not_supported", "Send HTTP/1.1 (or HTTP/1.0).", {}),
}


class ApiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "datasets-local"
    # Headers and body go out as two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK of the headers (40 ms on Linux), on every keep-alive response.
    disable_nagle_algorithm = True
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

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """What ``http.server`` refuses before any route is known (a request line over 64 KB,
        too many or too long headers, a malformed request line, an HTTP version it does not
        speak), in the error envelope rather than its HTML page; the connection is closed."""
        status = int(code)
        self.log_error("code %d, message %s", status, message)
        error_code, text, details = _PROTOCOL_ERRORS.get(
            status, ("bad_request" if status < 500 else "internal_error", message or "Bad request.", {})
        )
        self.close_connection = True
        # A request line refused before its version was read leaves http.server assuming
        # HTTP/0.9, which it answers with no status line or headers at all.
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        if status in (414, 431):
            self._drain_head()
        self._send_json(status, error_code, text, details, close=True)

    def _drain_head(self) -> None:
        """Read what is left of a refused request's head, so that closing the connection does
        not reset it under a client still sending (it would see a reset, not our answer)."""
        with contextlib.suppress(OSError, ValueError):
            self.connection.settimeout(2)
            read = 0
            while read < DRAIN_LIMIT:
                line = self.rfile.readline(1 << 16)
                read += len(line)
                if line in (b"", b"\r\n", b"\n"):
                    return

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
