"""The local stack, started as the README says (``make run`` = ``.venv/bin/python -m local``).

One stack per test session, on free ports, driven over HTTP (requests), through its AWS
endpoint and its Lambda Invoke endpoint (boto3). It runs with ``KEY_CACHE_SECONDS=0``: each
function's worker processes keep their own key cache, which keeps a revoked key valid for up
to 30 s by design (SPEC §3: "effective within 60 s"); the setting makes revocation observable
at once without sleeping. Its default per-key rate limit is raised out of the way of tests that
drive many concurrent requests with one key (``DEFAULT_RATE_LIMIT``); the rate-limit test sets
a plan of its own.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0
# Settings the tests rely on being the defaults (see datasets_core/config.py).
SETTINGS_ENV = {
    "META_TABLE",
    "ROWS_TABLE",
    "IDEMPOTENCY_TABLE",
    "DROP_BUCKET",
    "DROP_PREFIX",
    "KEY_CACHE_SECONDS",
    "DEFAULT_RATE_LIMIT",
    "DEFAULT_RATE_WINDOW_SECONDS",
    "LAMBDA_CONCURRENCY",
    "IMPORT_CONCURRENCY",
    "MAINTENANCE_CONCURRENCY",
    "LAMBDA_IDLE_SECONDS",
    "LAMBDA_MAX_WORKERS",
    "IMPORT_PART_ROWS",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy (its value) or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Stack:
    process: subprocess.Popen[str]
    port: int
    aws_port: int
    lambda_port: int
    api_key: str
    output: list[str] = field(default_factory=list, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    @property
    def lambda_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.lambda_port}"

    def request(self, method: str, path: str, key: str | None = "", **kwargs: Any) -> requests.Response:
        """``path`` below ``/v1``; ``key`` defaults to the bootstrap key, ``None`` sends no key."""
        headers = dict(kwargs.pop("headers", {}))
        use_key = self.api_key if key == "" else key
        if use_key:
            headers["Authorization"] = f"Bearer {use_key}"
        return requests.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)

    def client(self, service: str) -> Any:
        return boto3.session.Session().client(
            service,
            endpoint_url=self.lambda_endpoint if service == "lambda" else self.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def aws_env(self) -> dict[str, str]:
        """Environment of a process that should reach this stack's AWS endpoint."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in SETTINGS_ENV}
        env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
        return env

    def admin(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``datasets-admin ARGS`` as an operator runs it next to ``make run`` (same AWS_PORT)."""
        run_env = env or {**self.aws_env(), "AWS_PORT": str(self.aws_port)}
        return subprocess.run(
            [sys.executable, "-m", "datasets_core.admin", *args],
            cwd=REPO,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=60,
        )


def _healthy(stack: Stack) -> bool:
    if stack.process.poll() is not None:
        raise AssertionError(
            f"the local stack exited with {stack.process.returncode}:\n" + "\n".join(stack.output)
        )
    try:
        # The first request starts the health function's worker: on a busy machine that can
        # take longer than one poll's timeout, which is then only another poll.
        return requests.get(stack.base_url + "/health", timeout=1).status_code == 200
    except (requests.ConnectionError, requests.Timeout):
        return False


@contextmanager
def local_stack(log_dir: Path, **extra_env: str) -> Iterator[Stack]:
    """``python -m local`` on free ports, as ``make run`` starts it; stopped (SIGTERM) on exit."""
    port, aws_port, lambda_port = free_port(), free_port(), free_port()
    api_key = "e2e-bootstrap-" + secrets.token_urlsafe(16)
    # Hermetic: no AWS settings or table/bucket overrides leak in from the developer's shell.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in SETTINGS_ENV}
    env.update(
        PORT=str(port),
        AWS_PORT=str(aws_port),
        LAMBDA_PORT=str(lambda_port),
        BOOTSTRAP_API_KEY=api_key,
        KEY_CACHE_SECONDS="0",
        DEFAULT_RATE_LIMIT="100000",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra_env)
    process = subprocess.Popen(
        [sys.executable, "-m", "local"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a Ctrl-C on pytest must not reach the stack before teardown
    )
    running = Stack(process, port, aws_port, lambda_port, api_key)
    log = log_dir / "output.log"

    def drain() -> None:
        assert process.stdout is not None
        with log.open("w") as sink:
            for line in process.stdout:
                running.output.append(line.rstrip("\n"))
                sink.write(line)
                sink.flush()

    reader = threading.Thread(target=drain, name="stack-output", daemon=True)
    reader.start()
    try:
        wait_for(lambda: _healthy(running), START_TIMEOUT, f"{running.base_url}/health")
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=5)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Import chunks of 2,000 rows (100,000 by default), so a test file of thousands of rows is
    # written by concurrent invocations as a big file is.
    with local_stack(tmp_path_factory.mktemp("local-stack"), IMPORT_PART_ROWS="2000") as running:
        yield running


def process_tree(root: int) -> dict[int, int]:
    """``root`` and every process below it: pid → resident memory in KiB (``ps``, Linux and macOS)."""
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid=,rss="], capture_output=True, text=True, check=True
    )
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for line in listing.stdout.splitlines():
        pid, ppid, kib = (int(field) for field in line.split())
        children.setdefault(ppid, []).append(pid)
        rss[pid] = kib
    tree: dict[int, int] = {}
    pending = [root] if root in rss else []
    while pending:
        pid = pending.pop()
        tree[pid] = rss[pid]
        pending.extend(children.get(pid, []))
    return tree
