"""One Lambda execution environment of the local stack: ``python -m local.runtime <function>``.

Started by ``local/lambdas.py`` with the function's environment (and, optionally, the
directory holding ``<function>/handler.py``, ``functions/`` by default). It imports
``functions/<function>/handler.py`` once (the cold start), then serves one event at a time
for as long as it is kept warm, exactly as a Lambda execution environment does: module
state (Powertools' resolver holding the current event, caches) belongs to this process and
to no other request.

It speaks length-prefixed JSON frames (8-byte big-endian length, then UTF-8 JSON) on its
stdin and original stdout: first ``{"ready": true}`` (or ``{"ready": false, "error": ...}``
when the handler cannot be imported), then one reply per request ``{"event", "context"}``:
``{"result": ...}`` or ``{"error": {"errorType", "errorMessage", "stackTrace"}}``, the payload
Lambda returns for an unhandled error (or for a result past its 6 MB response limit). The
handler's own output (print, loggers) goes to stderr, the stack's console. Ctrl-C is left to
the parent (it stops every worker), and a worker whose parent is gone exits.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import signal
import struct
import sys
import threading
import time
import traceback
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from .events import LambdaContext

HEADER = struct.Struct("!Q")
FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
PARENT_CHECK_SECONDS = 0.5


# Lambda's limit on a synchronous invocation's result, as the Python 3.13 runtime writes it
# (JSON, non-ASCII text as is): past it the caller gets this error, not the result (API
# Gateway then answers 502; a function invoking another gets a function error).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
TOO_LARGE = {
    "errorType": "Function.ResponseSizeTooLarge",
    "errorMessage": (
        f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
    ),
}


def payload_size(result: Any) -> int:
    return len(json.dumps(result, default=_lambda_default, ensure_ascii=False).encode("utf-8"))


def encode(payload: Any) -> bytes:
    """A frame. Decimals become floats, as Lambda's Python runtime serialises results."""
    data = json.dumps(payload, default=_lambda_default, separators=(",", ":")).encode("utf-8")
    return HEADER.pack(len(data)) + data


def _lambda_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def read_frame(stream: IO[bytes]) -> Any | None:
    """The next frame's payload, or None at end of input."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return json.loads(data)


def error_payload(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    tb = exc.__traceback__
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next  # from the handler's frame on, as Lambda reports it
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_tb(tb),
    }


def _report(began: float) -> dict[str, Any]:
    """What Lambda's REPORT line says of an invocation: its duration and the execution
    environment's peak memory (this process's maximum resident set, in MB)."""
    return {"duration_ms": (time.perf_counter() - began) * 1000, "max_memory_mb": peak_memory_mb()}


def peak_memory_mb() -> int:
    """This interpreter's own peak resident set. Not ``getrusage``'s ``ru_maxrss``: Linux keeps
    that across ``exec``, so a worker started by the stack (a fork, then exec) reports the
    stack's own size at the fork, moto's tables included. ``VmHWM`` belongs to the process's
    current memory map, which ``exec`` made new."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # kilobytes on Linux


def _exit_with_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(function: str, functions_dir: Path = FUNCTIONS_DIR) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the process group; the stack stops us
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)  # print() and loggers write to stdout: onto the console, not into the frames
    os.close(null)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    _exit_with_parent(os.getppid())

    sys.path.insert(0, str(functions_dir))
    try:
        handler = importlib.import_module(f"{function}.handler").handler
    except Exception as exc:  # noqa: BLE001 - reported to the caller as Lambda reports it
        traceback.print_exc()
        replies.write(encode({"ready": False, "error": error_payload(exc, "Runtime.ImportModuleError")}))
        replies.flush()
        return 1
    replies.write(encode({"ready": True}))
    replies.flush()

    while True:
        request = read_frame(requests)
        if request is None:
            return 0
        described = request["context"]
        context = LambdaContext(
            function,
            request_id=described["request_id"],
            memory_mb=described["memory_mb"],
            deadline=described["deadline"],
        )
        began = time.perf_counter()
        try:
            result = handler(request["event"], context)
        except Exception as exc:  # noqa: BLE001 - an unhandled error is the invocation's answer
            traceback.print_exc()
            frame = encode({"error": error_payload(exc), "report": _report(began)})
        else:
            try:
                frame = encode({"result": result, "report": _report(began)})
                too_large = payload_size(result) > MAX_RESPONSE_BYTES
            except (TypeError, ValueError) as exc:
                failure = error_payload(exc, "Runtime.MarshalError")
                frame = encode({"error": failure, "report": _report(began)})
            else:
                if too_large:  # Lambda refuses the result after the function ran
                    frame = encode({"error": TOO_LARGE, "report": _report(began)})
        replies.write(frame)
        replies.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2]) if len(sys.argv) > 2 else FUNCTIONS_DIR))
