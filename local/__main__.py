"""``python -m local`` (``make run``): the whole stack in one process, in the foreground (SPEC §9).

- moto on ``127.0.0.1:$AWS_PORT`` (default 4566) with the tables, drop bucket and queues;
- the HTTP API on ``127.0.0.1:$PORT`` (default 3000), each request handed to its real handler;
- queue workers feeding the import and maintenance handlers as the SQS event source would;
- ``BOOTSTRAP_API_KEY`` (or a generated key) with every scope in workspace ``default``.

Ctrl-C (SIGINT) or SIGTERM stops everything; data lives in memory only.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

from . import stack

WORKSPACE = "default"


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"{name} must be a TCP port number, got {raw!r}")
    return int(raw)


def _bootstrap_key() -> str:
    """Register ``BOOTSTRAP_API_KEY`` (or issue a new key) with every scope in ``default``."""
    from datasets_core import auth
    from datasets_core.logic import keys

    token = os.environ.get("BOOTSTRAP_API_KEY", "").strip()
    scopes = list(auth.SCOPES)
    if not token:
        return str(keys.issue_key(WORKSPACE, "generated at start", scopes)["key"])
    try:
        keys.register_key(WORKSPACE, "BOOTSTRAP_API_KEY", scopes, token)
    except ValueError as exc:
        raise SystemExit(f"BOOTSTRAP_API_KEY is not usable: {exc}") from exc
    return token


def _banner(base_url: str, key: str, resources: stack.Resources, aws_port: int) -> str:
    drop = f"s3://{resources.bucket}/{resources.drop_prefix}{WORKSPACE}/"
    aws_env = "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=" + resources.region
    port_env = "" if aws_port == 4566 else f"AWS_PORT={aws_port} "
    return "\n".join(
        [
            "",
            "Datasets API local stack is up (Ctrl-C to stop; data lives in memory).",
            f"  API base URL   {base_url}",
            f"  API docs       {base_url}/docs  (Swagger UI; {base_url}/openapi.json)",
            f"  API key        {key}",
            f"                 (workspace '{WORKSPACE}', scopes: every scope)",
            f"  AWS endpoint   {resources.endpoint}",
            f"  Drop bucket    {resources.bucket}",
            f"  Drop prefix    {drop}<dataset name>/",
            f"  Import queue   {resources.import_queue.url}",
            "",
            "Try:",
            f'  curl -H "Authorization: Bearer {key}" {base_url}/datasets',
            f"  {aws_env} aws --endpoint-url {resources.endpoint} s3 cp people.csv {drop}people/people.csv",
            f"  {port_env}.venv/bin/datasets-admin create-key --workspace {WORKSPACE} --scopes datasets:read",
            "",
        ]
    )


def main() -> int:
    port = _port("PORT", 3000)
    aws_port = _port("AWS_PORT", 4566)
    for name, number in (("PORT", port), ("AWS_PORT", aws_port)):
        if not stack.port_is_free(number):
            print(f"{name}={number} is already in use; set {name} to a free port.", file=sys.stderr)
            return 1
    endpoint = stack.configure_environment(aws_port)  # before anything reads settings()

    from datasets_core.config import settings

    from .server import make_server
    from .worker import QueueWorker

    moto = stack.start_moto(aws_port)
    resources = stack.create_resources(endpoint)
    key = _bootstrap_key()
    server = make_server(stack.HOST, port, settings().max_body_bytes)
    base_url = f"http://{stack.HOST}:{port}/v1"

    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # a second Ctrl-C: do not wait for a slow handler
            os._exit(130)
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    # Batch sizes of the CDK event sources (infra/imports.py): 10 files, one maintenance job.
    workers = [
        QueueWorker(resources.import_queue, "import_file", resources.region, stop, batch_size=10),
        QueueWorker(resources.maintenance_queue, "maintenance", resources.region, stop, batch_size=1),
    ]
    for worker in workers:
        worker.start()
    http_thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True
    )
    http_thread.start()
    print(_banner(base_url, key, resources, aws_port), flush=True)

    while not stop.wait(0.2):
        pass
    print("Stopping the local stack…", flush=True)
    server.shutdown()
    server.server_close()
    for worker in workers:
        worker.join(timeout=10)
    moto.stop()
    print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
