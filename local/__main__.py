"""``python -m local`` (``make run``): the whole stack, in the foreground (SPEC §9).

- moto on ``127.0.0.1:$AWS_PORT`` (default 4566) with the tables, drop bucket and queues;
- the HTTP API on ``127.0.0.1:$PORT`` (default 3000), each request run by its real handler in
  a worker process of its function (``local/lambdas.py``);
- a Lambda Invoke endpoint on ``127.0.0.1:$LAMBDA_PORT`` (default ``AWS_PORT`` + 1, or a free
  port when that one is taken) for functions that invoke functions;
- queue pollers feeding the import and maintenance functions as the SQS event source would;
- ``BOOTSTRAP_API_KEY`` (or a generated key) with every scope in workspace ``default``.

The first Ctrl-C (SIGINT) or SIGTERM stops everything (servers, pollers, worker processes,
moto) within two seconds, also with requests in flight; data lives in memory only.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from functools import partial
from types import FrameType

from . import stack

WORKSPACE = "default"
ANALYTICS_FUNCTION = "analytics"
# Everything must be down by then; whatever is not is cut short (the process exits).
STOP_DEADLINE_SECONDS = 1.8


def _port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip() or str(default)
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"{name} must be a TCP port number, got {raw!r}")
    return int(raw)


def _lambda_port(aws_port: int) -> int:
    """``LAMBDA_PORT``, else ``AWS_PORT`` + 1 when free, else any free port."""
    if os.environ.get("LAMBDA_PORT", "").strip():
        return _port("LAMBDA_PORT", 0)
    if aws_port < 65535 and stack.port_is_free(aws_port + 1):
        return aws_port + 1
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((stack.HOST, 0))
        return int(sock.getsockname()[1])


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


def _banner(base_url: str, key: str, resources: stack.Resources, aws_port: int, lambda_url: str) -> str:
    drop = f"s3://{resources.bucket}/{resources.drop_prefix}{WORKSPACE}/"
    aws_env = "AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=" + resources.region
    port_env = "" if aws_port == 4566 else f"AWS_PORT={aws_port} "
    return "\n".join(
        [
            "",
            "Datasets API local stack is up (Ctrl-C to stop; data lives in memory).",
            f"  API base URL    {base_url}",
            f"  API docs        {base_url}/docs  (Swagger UI; {base_url}/openapi.json)",
            f"  API key         {key}",
            f"                  (workspace '{WORKSPACE}', scopes: every scope)",
            f"  AWS endpoint    {resources.endpoint}",
            f"  Lambda endpoint {lambda_url}",
            f"  Drop bucket     {resources.bucket}",
            f"  Drop prefix     {drop}<dataset name>/",
            f"  Import queue    {resources.import_queue.url}",
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
    lambda_port = _lambda_port(aws_port)
    if lambda_port in (port, aws_port) or not stack.port_is_free(lambda_port):
        print(
            f"LAMBDA_PORT={lambda_port} is already in use; set LAMBDA_PORT to a free port.", file=sys.stderr
        )
        return 1
    endpoint = stack.configure_environment(aws_port)  # before anything reads settings()
    lambda_url = f"http://{stack.HOST}:{lambda_port}"
    # Every worker process's boto3 Lambda client goes to the local Invoke endpoint.
    os.environ["AWS_ENDPOINT_URL_LAMBDA"] = lambda_url
    os.environ.setdefault("ANALYTICS_FUNCTION_NAME", ANALYTICS_FUNCTION)

    from datasets_core.config import settings

    from .invoke import make_invoke_server
    from .lambdas import IMPORT_FUNCTION, MAINTENANCE_FUNCTION, Lambdas, LambdaSettings
    from .server import make_server
    from .worker import QueueWorker

    try:
        lambda_settings = LambdaSettings.from_env()
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    moto = stack.start_moto(aws_port)
    resources = stack.create_resources(endpoint)
    key = _bootstrap_key()
    lambdas = Lambdas(os.environ, lambda_settings)  # workers get the stack's environment, queue URLs included
    server = make_server(stack.HOST, port, settings().max_body_bytes, lambdas)
    invoke_server = make_invoke_server(stack.HOST, lambda_port, lambdas, resources.region)
    base_url = f"http://{stack.HOST}:{port}/v1"

    stop = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # a second signal while stopping: leave at once
            os._exit(130)
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    # Batch sizes of the CDK event sources (infra/imports.py): one import message (a file, or
    # one chunk of a file) and one maintenance job per invocation.
    pollers = [
        QueueWorker(
            resources.import_queue,
            IMPORT_FUNCTION,
            resources.region,
            stop,
            invoke=partial(lambdas.invoke, IMPORT_FUNCTION),
            available=partial(lambdas.exists, IMPORT_FUNCTION),
            batch_size=1,
            concurrency=lambda_settings.import_concurrency,
        ),
        QueueWorker(
            resources.maintenance_queue,
            MAINTENANCE_FUNCTION,
            resources.region,
            stop,
            invoke=partial(lambdas.invoke, MAINTENANCE_FUNCTION),
            available=partial(lambdas.exists, MAINTENANCE_FUNCTION),
            batch_size=1,
            concurrency=lambda_settings.maintenance_concurrency,
        ),
    ]
    for poller in pollers:
        poller.start()
    for name, http in (("http", server), ("lambda-invoke", invoke_server)):
        threading.Thread(
            target=http.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True
        ).start()
    print(_banner(base_url, key, resources, aws_port, lambda_url), flush=True)

    while not stop.wait(0.2):
        pass
    print("Stopping the local stack…", flush=True)
    # Whatever is still running by the deadline (a request stuck in moto, say) is cut short.
    watchdog = threading.Timer(STOP_DEADLINE_SECONDS, lambda: os._exit(0))
    watchdog.daemon = True
    watchdog.start()
    lambdas.stop()  # in-flight requests end now (503), pollers' invocations too
    for http in (server, invoke_server):
        http.shutdown()
        http.server_close()
    moto.stop()
    print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip the interpreter's teardown: freeing a large in-memory dataset object by object
    # would hold the exit up for seconds, and nothing is left to flush.
    os._exit(code)
