"""The local HTTP front door: what API Gateway does before a request reaches a function.

Every method on every path goes to ``local.dispatch.dispatch`` with the raw path (still
percent-encoded, as REST APIs pass it), query string, headers and body bytes. Bodies over the
limit are refused with 413 in the error envelope from ``Content-Length`` alone, before the
body is read (also before ``100 Continue``), as API Gateway refuses oversized payloads.
Requests run concurrently, except that one function serves one request at a time (see
``function_lock``).
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
import uuid
from contextlib import AbstractContextManager, nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from datasets_core.errors import PayloadTooLarge

from .dispatch import dispatch, find_route
from .events import STAGE

# An oversized body is read and discarded up to this size after the 413, so the client (which
# sends the whole body before reading the answer) sees the 413 rather than a reset connection.
DRAIN_LIMIT = 64 * 1024 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


def _log(message: str) -> None:
    # One write per line: request threads and the workers share stdout.
    sys.stdout.write(f"[http] {message}\n")
    sys.stdout.flush()


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def function_lock(method: str, full_path: str) -> AbstractContextManager[object]:
    """The lock of the function serving this request: a Lambda container runs one event at a time.

    Handlers keep per-invocation state on module-level objects (Powertools' resolver holds the
    current event and the caller's principal), so two threads must never run one function at
    once; different functions run concurrently, as separate Lambda functions do.
    """
    prefix = f"/{STAGE}/"
    if not full_path.startswith(prefix):
        return nullcontext()
    route, _, _ = find_route(method.upper(), full_path[len(prefix) - 1 :])
    if route is None:
        return nullcontext()
    with _locks_guard:
        return _locks.setdefault(route.function, threading.Lock())


class _TooLarge(Exception):
    pass


class ApiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "datasets-local"
    max_body_bytes = 6 * 1024 * 1024

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
        try:
            with function_lock(self.command, url.path):
                response = dispatch(
                    self.command, url.path, query_string=url.query, headers=headers, body=body
                )
        except Exception:  # noqa: BLE001 - a crashing function is a 500 in the envelope, never a hang
            request_id = str(uuid.uuid4())
            _log(f"{self.command} {url.path} failed ({request_id})\n{traceback.format_exc()}")
            self._send_json(
                500, "internal_error", "Something went wrong on our side.", {"request_id": request_id}
            )
            return
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


def make_server(host: str, port: int, max_body_bytes: int) -> ThreadingHTTPServer:
    """A bound (listening) server; call ``serve_forever`` to start answering."""
    handler = type("Handler", (ApiRequestHandler,), {"max_body_bytes": max_body_bytes})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.block_on_close = False  # an idle keep-alive connection must not hold up Ctrl-C
    return server
