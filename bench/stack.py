"""The local stack as a child process (``python -m local``), and an HTTP client for its API.

Started the way ``make run`` starts it, on free ports, with a bootstrap key chosen here and
no AWS settings inherited from the caller's shell, so the bench measures a fresh, empty
stack whatever the environment.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
_REPORT = re.compile(r"^REPORT RequestId: \S+ Function: (\S+) .* Max Memory Used: (\d+) MB")
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 120.0
# Settings the bench relies on being the defaults (see datasets_core/config.py).
SETTINGS_ENV = {
    "META_TABLE",
    "ROWS_TABLE",
    "IDEMPOTENCY_TABLE",
    "DROP_BUCKET",
    "DROP_PREFIX",
    "ROW_SHARDS",
    "LAMBDA_PORT",
    "LAMBDA_CONCURRENCY",
    "IMPORT_CONCURRENCY",
    "MAINTENANCE_CONCURRENCY",
    "LAMBDA_IDLE_SECONDS",
    "LAMBDA_MAX_WORKERS",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env() -> dict[str, str]:
    """This process's environment without AWS settings or table overrides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in SETTINGS_ENV}


class ApiError(RuntimeError):
    pass


class LocalStack:
    """A running ``python -m local``; use as a context manager (stops it on exit)."""

    def __init__(self) -> None:
        self.port, self.aws_port = free_port(), free_port()
        self.api_key = "bench-" + secrets.token_urlsafe(16)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.aws_endpoint = f"http://127.0.0.1:{self.aws_port}"
        self.output: deque[str] = deque(maxlen=200)  # the tail, shown if the stack dies
        self.peak_memory_mb: dict[str, int] = {}  # per function, from the workers' REPORT lines
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._local = threading.local()  # one requests.Session per thread (they are not thread-safe)

    def __enter__(self) -> LocalStack:
        env = clean_env()
        env.update(
            PORT=str(self.port),
            AWS_PORT=str(self.aws_port),
            BOOTSTRAP_API_KEY=self.api_key,
            PYTHONUNBUFFERED="1",
            LAMBDA_REPORTS="1",
        )
        self._process = subprocess.Popen(
            [sys.executable, "-m", "local"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # a Ctrl-C on the bench reaches the stack only through stop()
        )
        self._reader = threading.Thread(target=self._drain, name="stack-output", daemon=True)
        self._reader.start()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _drain(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for text in self._process.stdout:
            found = _REPORT.search(text)
            if found:
                function, peak = found.group(1), int(found.group(2))
                self.peak_memory_mb[function] = max(peak, self.peak_memory_mb.get(function, 0))
                continue
            self.output.append(text.rstrip("\n"))

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if requests.get(self.base_url + "/health", timeout=5).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or its first worker starting
                pass
            time.sleep(0.1)
        raise ApiError(f"the local stack did not answer /health within {START_TIMEOUT:.0f} s")

    def _check_alive(self) -> None:
        if self._process is not None and self._process.poll() is not None:
            tail = "\n".join(self.output)
            raise ApiError(f"the local stack exited with {self._process.returncode}:\n{tail}")

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # the stack's own clean shutdown
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    # --- HTTP -------------------------------------------------------------------------------
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {self.api_key}"
            self._local.session = session
        return session

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """The JSON body of a 2xx answer to ``method`` ``/v1<path>``; ``ApiError`` otherwise."""
        response = self._session().request(method, self.base_url + path, timeout=REQUEST_TIMEOUT, **kwargs)
        if not response.ok:
            self._check_alive()
            raise ApiError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
        body: dict[str, Any] = response.json()
        return body
