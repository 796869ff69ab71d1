"""Lambda for the local stack: a pool of worker processes per function, as Lambda isolates invocations.

Every function (any ``functions/<name>/handler.py``: the route functions, the queue consumers,
``analytics``) gets worker processes (``local/runtime.py``) started on demand. A worker serves
one event at a time, like a Lambda execution environment, and is reused while warm; a function
runs at most its concurrency of events at once (more wait for a free worker, then are
throttled). The API server, the queue pollers and the Lambda Invoke endpoint all invoke
through here, so no state of one invocation (Powertools keeps the current event on its router
*class*) is ever visible to another.

Workers are started as fresh interpreters (``subprocess``), never forked from this process,
whose moto threads hold locks a fork would copy. A worker that crashes or outlives its
function's timeout (``timeouts_of``) is discarded and replaced by the next invocation; one
idle for ``LAMBDA_IDLE_SECONDS`` exits; beyond ``LAMBDA_MAX_WORKERS`` live workers, starting
one first retires the least recently used idle worker (of any function), so memory stays
bounded.

Settings (environment of ``python -m local``):

- ``LAMBDA_CONCURRENCY`` (default 4): events one function runs at once;
- ``IMPORT_CONCURRENCY`` (default 4): the same for ``import_file``, also how many batches the
  import queue poller hands out at once (imports fan out into parallel chunks);
- ``MAINTENANCE_CONCURRENCY`` (default 2): the same for ``maintenance``;
- ``MAINTENANCE_TIMEOUT_SECONDS`` (default 30, at most 30): the timeout the maintenance
  function's context reports (``get_remaining_time_in_millis``), so background jobs stop and
  continue in a fresh invocation that much sooner (a run is still only stopped after the
  deployed timeout);
- ``LAMBDA_IDLE_SECONDS`` (default 300), ``LAMBDA_MAX_WORKERS`` (default 32).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runtime import FUNCTIONS_DIR, HEADER, encode
from .stack import VISIBILITY_TIMEOUT_SECONDS

REPO = Path(__file__).resolve().parent.parent
FUNCTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
IMPORT_FUNCTION = "import_file"
MAINTENANCE_FUNCTION = "maintenance"
# The deployed API functions' timeout (infra/api.py): what their context reports and when
# they are stopped.
API_TIMEOUT_SECONDS = 29.0
QUEUE_FUNCTIONS = (IMPORT_FUNCTION, MAINTENANCE_FUNCTION)
# Queue consumers' contexts report the local visibility timeout (30 s), so imports and jobs
# continue in fresh invocations locally as they do on AWS after 15 minutes; they are only
# stopped after their deployed timeouts (infra/imports.py), so a run that overshoots its
# short local deadline (one large validation, say) still finishes.
QUEUE_LIMIT_SECONDS = {IMPORT_FUNCTION: 15 * 60.0, MAINTENANCE_FUNCTION: 5 * 60.0}
MEMORY_MB = 512
INIT_TIMEOUT_SECONDS = 60.0  # a cold start on a busy laptop; Lambda allows 10 s
STOP_GRACE_SECONDS = 0.5


@dataclass(frozen=True)
class LambdaSettings:
    concurrency: int = 4
    import_concurrency: int = 4
    maintenance_concurrency: int = 2
    maintenance_timeout_seconds: int = VISIBILITY_TIMEOUT_SECONDS
    idle_seconds: float = 300.0
    max_workers: int = 32
    # Print Lambda's REPORT line (duration, peak memory of the worker) after every invocation.
    reports: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LambdaSettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, attr in (
            ("LAMBDA_CONCURRENCY", "concurrency"),
            ("IMPORT_CONCURRENCY", "import_concurrency"),
            ("MAINTENANCE_CONCURRENCY", "maintenance_concurrency"),
            ("MAINTENANCE_TIMEOUT_SECONDS", "maintenance_timeout_seconds"),
            ("LAMBDA_IDLE_SECONDS", "idle_seconds"),
            ("LAMBDA_MAX_WORKERS", "max_workers"),
        ):
            raw = env.get(name, "").strip()
            if not raw:
                continue
            if not raw.isdigit() or int(raw) < 1:
                raise ValueError(f"{name} must be a whole number of at least 1, got {raw!r}")
            values[attr] = int(raw)
        values["reports"] = env.get("LAMBDA_REPORTS", "").strip().lower() in ("1", "true", "yes")
        if values.get("maintenance_timeout_seconds", 0) > VISIBILITY_TIMEOUT_SECONDS:
            # SQS hands a message out again after its visibility timeout: a longer run would
            # see its own job redelivered while it still holds it.
            raise ValueError(
                f"MAINTENANCE_TIMEOUT_SECONDS must be at most the queues' visibility timeout "
                f"({VISIBILITY_TIMEOUT_SECONDS} s)"
            )
        return cls(**values)

    def reported_timeout(self, function: str, default: float) -> float:
        """The timeout ``function``'s context reports."""
        if function == MAINTENANCE_FUNCTION:
            return float(self.maintenance_timeout_seconds)
        return default

    def concurrency_of(self, function: str) -> int:
        if function == IMPORT_FUNCTION:
            return self.import_concurrency
        if function == MAINTENANCE_FUNCTION:
            return self.maintenance_concurrency
        return self.concurrency


def timeouts_of(function: str) -> tuple[float, float]:
    """(seconds the context reports, seconds after which the invocation is stopped)."""
    if function in QUEUE_FUNCTIONS:
        return float(VISIBILITY_TIMEOUT_SECONDS), QUEUE_LIMIT_SECONDS[function]
    return API_TIMEOUT_SECONDS, API_TIMEOUT_SECONDS


@dataclass
class Outcome:
    """What an invocation came to. ``kind``: ok, error (the handler raised), crashed, timeout,
    throttled (every worker stayed busy), stopped (the stack is stopping), missing (no such function).
    """

    request_id: str
    kind: str = "ok"
    result: Any = None
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


class _Crashed(Exception):
    pass


class _TimedOut(Exception):
    pass


class _Unavailable(Exception):
    def __init__(self, kind: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.error = error


class _Worker:
    """One worker process and its two pipes."""

    def __init__(self, function: str, env: Mapping[str, str], functions_dir: Path) -> None:
        self.function = function
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.runtime", function, str(functions_dir)],
            cwd=REPO,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self.last_used = time.monotonic()

    def _read(self, size: int, deadline: float) -> bytes:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        data = bytearray()
        while len(data) < size:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                    raise _TimedOut
                chunk = os.read(fd, min(size - len(data), 1 << 20))
            except (OSError, ValueError) as exc:
                raise _Crashed from exc
            if not chunk:
                raise _Crashed
            data += chunk
        return bytes(data)

    def receive(self, deadline: float) -> Any:
        (size,) = HEADER.unpack(self._read(HEADER.size, deadline))
        return json.loads(self._read(size, deadline))

    def send(self, frame: bytes) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(frame)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise _Crashed from exc

    def exit_description(self) -> str:
        code = self.process.poll()
        if code is None:
            return "no answer"
        return f"signal: {-code}" if code < 0 else f"exit status {code}"

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def reap(self, timeout: float, close: bool = True) -> None:
        """Wait for the process (killing it after ``timeout``) and release its pipes.

        Only the thread using the worker closes its pipes (``close``): another thread may be
        reading them, and a closed descriptor number can be reused at once.
        """
        try:
            self.process.wait(timeout=max(timeout, 0))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if not close:
            return
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def stop(self) -> None:
        self.terminate()
        self.reap(STOP_GRACE_SECONDS)


@dataclass
class _Pool:
    concurrency: int
    idle: list[_Worker] = field(default_factory=list)  # most recently used last
    busy: int = 0  # workers running an event or starting


class Lambdas:
    """Every function's pool; ``invoke`` is safe from any thread."""

    def __init__(
        self,
        env: Mapping[str, str],
        settings: LambdaSettings | None = None,
        functions_dir: Path = FUNCTIONS_DIR,
        timeouts: Mapping[str, float] | None = None,
    ) -> None:
        self.settings = settings or LambdaSettings()
        self.functions_dir = functions_dir
        self._timeouts = dict(timeouts or {})
        self._env = dict(env)
        self._cond = threading.Condition()
        self._pools: dict[str, _Pool] = {}
        self._live: set[_Worker] = set()
        self._stopping = False
        self._reaper = threading.Thread(target=self._reap_idle, name="lambda-reaper", daemon=True)
        self._reaper.start()

    # --- what exists -------------------------------------------------------------------------
    def exists(self, function: str) -> bool:
        return (
            bool(FUNCTION_NAME.match(function)) and (self.functions_dir / function / "handler.py").is_file()
        )

    def live_workers(self) -> int:
        with self._cond:
            return len(self._live)

    def worker_env(self, function: str) -> dict[str, str]:
        env = dict(self._env)
        env.update(
            AWS_LAMBDA_FUNCTION_NAME=function,
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(MEMORY_MB),
            AWS_REGION=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        )
        return env

    # --- invoking ----------------------------------------------------------------------------
    def invoke(self, function: str, event: Any, *, request_id: str | None = None) -> Outcome:
        """Run ``event`` through ``function`` in one of its workers (RequestResponse)."""
        request_id = request_id or str(uuid.uuid4())
        if not self.exists(function):
            message = f"Function not found: {function}"
            return Outcome(
                request_id,
                "missing",
                error={"errorType": "ResourceNotFoundException", "errorMessage": message},
            )
        reported, timeout = timeouts_of(function)
        reported = self.settings.reported_timeout(function, reported)
        if function in self._timeouts:
            reported = timeout = self._timeouts[function]
        try:
            worker = self._acquire(function, time.monotonic() + reported)
        except _Unavailable as exc:
            return Outcome(request_id, exc.kind, error=exc.error)
        healthy = False
        try:
            context = {"request_id": request_id, "memory_mb": MEMORY_MB, "deadline": time.time() + reported}
            worker.send(encode({"event": event, "context": context}))
            frame = worker.receive(time.monotonic() + timeout)
            healthy = True
        except _TimedOut:
            message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
            return Outcome(
                request_id, "timeout", error={"errorType": "Sandbox.Timedout", "errorMessage": message}
            )
        except _Crashed:
            if self._stopping:
                return Outcome(request_id, "stopped")
            worker.reap(STOP_GRACE_SECONDS)
            message = f"RequestId: {request_id} Error: Runtime exited with error: {worker.exit_description()}"
            return Outcome(
                request_id, "crashed", error={"errorType": "Runtime.ExitError", "errorMessage": message}
            )
        finally:
            self._release(function, worker, healthy)
        report = frame.get("report")
        if self.settings.reports and report:
            # As Lambda's REPORT log line: peak memory is the worker process's, since it started.
            print(
                f"REPORT RequestId: {request_id} Function: {function} "
                f"Duration: {report['duration_ms']:.2f} ms Max Memory Used: {report['max_memory_mb']} MB",
                file=sys.stderr,
                flush=True,
            )
        if "error" in frame:
            return Outcome(request_id, "error", error=frame["error"])
        return Outcome(request_id, result=frame.get("result"))

    def _acquire(self, function: str, wait_until: float) -> _Worker:
        victim = None
        with self._cond:
            while True:
                if self._stopping:
                    raise _Unavailable("stopped")
                pool = self._pools.get(function)
                if pool is None:
                    pool = self._pools[function] = _Pool(self.settings.concurrency_of(function))
                if pool.idle:
                    pool.busy += 1
                    return pool.idle.pop()
                if pool.busy < pool.concurrency:
                    pool.busy += 1
                    if len(self._live) >= self.settings.max_workers:
                        victim = self._least_recently_used_idle()
                    break
                remaining = wait_until - time.monotonic()
                if remaining <= 0:
                    message = f"Rate exceeded: {function} is running {pool.concurrency} invocation(s)"
                    raise _Unavailable(
                        "throttled", {"errorType": "TooManyRequestsException", "errorMessage": message}
                    )
                self._cond.wait(remaining)
        if victim is not None:
            victim.stop()
        worker = None
        try:
            worker = _Worker(function, self.worker_env(function), self.functions_dir)
            with self._cond:
                self._live.add(worker)
                stopping = self._stopping
            if stopping:
                raise _Unavailable("stopped")
            ready = worker.receive(time.monotonic() + INIT_TIMEOUT_SECONDS)
            if not ready.get("ready"):
                raise _Unavailable("error", ready.get("error"))
            return worker
        except (_Crashed, _TimedOut) as exc:
            kind = "stopped" if self._stopping else "error"
            message = f"the worker of {function} did not start ({type(exc).__name__.strip('_').lower()})"
            self._discard(function, worker)
            raise _Unavailable(kind, {"errorType": "Runtime.ExitError", "errorMessage": message}) from None
        except BaseException:
            self._discard(function, worker)
            raise

    def _discard(self, function: str, worker: _Worker | None) -> None:
        with self._cond:
            self._pools[function].busy -= 1
            if worker is not None:
                self._live.discard(worker)
            self._cond.notify_all()
        if worker is not None:
            worker.stop()

    def _release(self, function: str, worker: _Worker, healthy: bool) -> None:
        with self._cond:
            pool = self._pools[function]
            pool.busy -= 1
            keep = healthy and not self._stopping and worker.process.poll() is None
            if keep:
                worker.last_used = time.monotonic()
                pool.idle.append(worker)
            else:
                self._live.discard(worker)
            self._cond.notify_all()
        if not keep:
            worker.stop()

    def _least_recently_used_idle(self) -> _Worker | None:
        """Take the idle worker (any function) unused the longest out of its pool (lock held)."""
        candidates = [(w.last_used, name, w) for name, pool in self._pools.items() for w in pool.idle]
        if not candidates:
            return None
        _, name, worker = min(candidates, key=lambda c: c[0])
        self._pools[name].idle.remove(worker)
        self._live.discard(worker)
        return worker

    def _reap_idle(self) -> None:
        interval = min(5.0, self.settings.idle_seconds / 4)
        while True:
            time.sleep(interval)
            retired: list[_Worker] = []
            with self._cond:
                if self._stopping:
                    return
                cutoff = time.monotonic() - self.settings.idle_seconds
                for pool in self._pools.values():
                    stale = [w for w in pool.idle if w.last_used < cutoff]
                    for worker in stale:
                        pool.idle.remove(worker)
                        self._live.discard(worker)
                    retired += stale
            for worker in retired:
                worker.stop()

    # --- stopping ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every worker now, idle or busy (a busy invocation ends as ``stopped``)."""
        with self._cond:
            self._stopping = True
            workers = list(self._live)
            idle = {worker for pool in self._pools.values() for worker in pool.idle}
            self._live.clear()
            for pool in self._pools.values():
                pool.idle.clear()
            self._cond.notify_all()
        for worker in workers:
            worker.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for worker in workers:
            # A busy worker's pipes are closed by the thread waiting on it (it sees the exit).
            worker.reap(deadline - time.monotonic(), close=worker in idle)
