"""The local stack's Lambda (``local/lambdas.py``): one event per worker process, pools, failures.

The functions here live in a temporary ``functions`` directory, so crashes, errors and slow
handlers can be asked for.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.invoke import function_name
from local.lambdas import Lambdas, LambdaSettings, Outcome
from local.server import answer

ECHO = """
import os, time
from decimal import Decimal
from pathlib import Path

served = 0  # module state: one per worker process, as in a Lambda execution environment


def handler(event, context):
    global served
    served += 1
    if event.get("crash"):
        os._exit(3)
    if "raise" in event:
        raise ValueError(event["raise"])
    if "sleep" in event:
        time.sleep(event["sleep"])
    if "rendezvous" in event:  # wait until this many invocations are running at once
        folder = Path(event["folder"])
        (folder / str(os.getpid())).touch()
        deadline = time.time() + 30
        while len(list(folder.iterdir())) < event["rendezvous"] and time.time() < deadline:
            time.sleep(0.01)
    return {
        "event": event,
        "pid": os.getpid(),
        "served": served,
        "request_id": context.aws_request_id,
        "time_left": context.get_remaining_time_in_millis() > 0,
        "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
        "mark": os.environ.get("MARK"),
        "exact": Decimal("1.5"),
    }
"""


def wait_for(condition: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def functions(tmp_path: Path) -> Path:
    for name, source in (("echo", ECHO), ("echo2", ECHO), ("broken", "raise ImportError('no such layer')\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
        (tmp_path / name / "handler.py").write_text(source)
    return tmp_path


@pytest.fixture
def make(functions: Path) -> Iterator[Callable[..., Lambdas]]:
    made: list[Lambdas] = []

    def build(settings: LambdaSettings | None = None, **timeouts: float) -> Lambdas:
        lambdas = Lambdas({**os.environ, "MARK": "from-the-stack"}, settings, functions, timeouts)
        made.append(lambdas)
        return lambdas

    yield build
    for lambdas in made:
        lambdas.stop()


def test_an_invocation_runs_in_a_worker_with_the_stack_environment(make: Callable[..., Lambdas]) -> None:
    outcome = make().invoke("echo", {"hello": "world"}, request_id="req-1")
    assert outcome.ok, outcome
    result = outcome.result
    assert result["event"] == {"hello": "world"} and result["request_id"] == "req-1"
    assert result["pid"] != os.getpid() and result["time_left"]
    assert result["function"] == "echo" and result["mark"] == "from-the-stack"
    assert result["exact"] == 1.5  # Lambda's runtime serialises a Decimal as a float


def test_the_report_line_gives_the_workers_own_peak_memory_not_the_stacks(
    make: Callable[..., Lambdas], capfd: pytest.CaptureFixture[str]
) -> None:
    """A worker is started from the stack's process, which holds moto's tables: its REPORT line
    must show what the function itself used (as Lambda's does), not the stack's size."""
    held = bytearray(400 * 1024 * 1024)
    held[::4096] = b"\x01" * len(range(0, len(held), 4096))  # resident, not just reserved
    outcome = make(LambdaSettings(reports=True)).invoke("echo", {})
    assert outcome.ok, outcome
    del held
    reports = [line for line in capfd.readouterr().err.splitlines() if line.startswith("REPORT")]
    assert len(reports) == 1 and "Function: echo" in reports[0]
    peak_mb = int(reports[0].split("Max Memory Used: ")[1].split()[0])
    assert 0 < peak_mb < 200, reports[0]


def test_a_warm_worker_is_reused_one_event_at_a_time(make: Callable[..., Lambdas]) -> None:
    lambdas = make()
    first, second = lambdas.invoke("echo", {}), lambdas.invoke("echo", {})
    assert first.result["pid"] == second.result["pid"]
    assert [first.result["served"], second.result["served"]] == [1, 2]
    assert lambdas.live_workers() == 1


def test_concurrent_events_run_in_separate_processes(make: Callable[..., Lambdas], tmp_path: Path) -> None:
    lambdas = make(LambdaSettings(concurrency=3))
    folder = tmp_path / "rendezvous"
    folder.mkdir()
    outcomes: list[Outcome] = []
    threads = [
        threading.Thread(
            target=lambda: outcomes.append(lambdas.invoke("echo", {"rendezvous": 3, "folder": str(folder)}))
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(outcome.ok for outcome in outcomes)
    assert len({outcome.result["pid"] for outcome in outcomes}) == 3  # all three ran at once
    assert len(list(folder.iterdir())) == 3


def test_a_function_never_runs_more_than_its_concurrency(make: Callable[..., Lambdas]) -> None:
    lambdas = make(LambdaSettings(concurrency=1))
    outcomes: list[Outcome] = []
    threads = [
        threading.Thread(target=lambda: outcomes.append(lambdas.invoke("echo", {"sleep": 0.2})))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(outcome.ok for outcome in outcomes)
    assert len({outcome.result["pid"] for outcome in outcomes}) == 1
    assert sorted(outcome.result["served"] for outcome in outcomes) == [1, 2, 3]


def test_a_crashed_worker_is_an_error_and_is_replaced(make: Callable[..., Lambdas]) -> None:
    lambdas = make()
    before = lambdas.invoke("echo", {}).result["pid"]
    crashed = lambdas.invoke("echo", {"crash": True})
    assert crashed.kind == "crashed" and crashed.error is not None
    assert (
        crashed.error["errorType"] == "Runtime.ExitError" and "exit status 3" in crashed.error["errorMessage"]
    )
    after = lambdas.invoke("echo", {})
    assert after.ok and after.result["pid"] != before and after.result["served"] == 1
    assert not alive(before)


def test_a_handler_error_is_lambdas_error_payload_and_the_worker_stays(make: Callable[..., Lambdas]) -> None:
    lambdas = make()
    failed = lambdas.invoke("echo", {"raise": "bad input"})
    assert failed.kind == "error" and failed.error is not None
    assert failed.error["errorType"] == "ValueError" and failed.error["errorMessage"] == "bad input"
    assert any("handler.py" in frame for frame in failed.error["stackTrace"])
    assert lambdas.invoke("echo", {}).result["served"] == 2


def test_a_function_that_cannot_be_imported_or_does_not_exist(make: Callable[..., Lambdas]) -> None:
    lambdas = make()
    broken = lambdas.invoke("broken", {})
    assert broken.kind == "error" and broken.error is not None
    assert broken.error["errorType"] == "Runtime.ImportModuleError"
    assert lambdas.invoke("nosuch", {}).kind == "missing"
    assert lambdas.invoke("../echo", {}).kind == "missing"
    assert lambdas.live_workers() == 0


def test_an_invocation_past_its_timeout_is_stopped(make: Callable[..., Lambdas]) -> None:
    lambdas = make(echo=1.0)
    first = lambdas.invoke("echo", {}).result["pid"]
    slow = lambdas.invoke("echo", {"sleep": 60})
    assert slow.kind == "timeout" and slow.error is not None
    assert slow.error["errorType"] == "Sandbox.Timedout"
    assert not alive(first)
    assert lambdas.invoke("echo", {}).result["pid"] != first


def test_stop_ends_running_invocations_and_every_worker(make: Callable[..., Lambdas]) -> None:
    lambdas = make()
    pids = [lambdas.invoke(name, {}).result["pid"] for name in ("echo", "echo2")]
    running: list[Outcome] = []
    thread = threading.Thread(target=lambda: running.append(lambdas.invoke("echo2", {"sleep": 60})))
    thread.start()
    wait_for(lambda: lambdas.live_workers() == 2 and not lambdas._pools["echo2"].idle)
    lambdas.stop()
    thread.join(timeout=10)
    assert [outcome.kind for outcome in running] == ["stopped"]
    assert not any(alive(pid) for pid in pids)
    assert lambdas.invoke("echo", {}).kind == "stopped"


def test_idle_workers_retire_and_the_worker_cap_retires_the_least_recently_used(
    make: Callable[..., Lambdas],
) -> None:
    capped = make(LambdaSettings(max_workers=1))
    echo = capped.invoke("echo", {}).result["pid"]
    assert capped.invoke("echo2", {}).ok
    assert capped.live_workers() == 1 and not alive(echo)

    idle = make(LambdaSettings(idle_seconds=1))
    pid = idle.invoke("echo", {}).result["pid"]
    wait_for(lambda: idle.live_workers() == 0)
    assert not alive(pid)


@pytest.mark.parametrize(
    ("outcome", "status", "code"),
    [
        (Outcome("r1", "error", error={"errorType": "KeyError", "errorMessage": "x"}), 500, "internal_error"),
        (
            Outcome("r1", "crashed", error={"errorType": "Runtime.ExitError", "errorMessage": "x"}),
            500,
            "internal_error",
        ),
        (Outcome("r1", result="not a proxy result"), 500, "internal_error"),
        (Outcome("r1", "timeout"), 504, "timeout"),
        (Outcome("r1", "throttled"), 429, "rate_limited"),
        (Outcome("r1", "stopped"), 503, "unavailable"),
    ],
)
def test_failed_invocations_are_answers_in_the_error_envelope(
    outcome: Outcome, status: int, code: str
) -> None:
    response = answer("GET", "/v1/health", outcome)
    assert response.status == status
    error = json.loads(response.body)["error"]
    assert error["code"] == code
    if status in (500, 504):
        assert error["details"] == {"request_id": "r1"}


def test_a_proxy_result_is_the_http_answer() -> None:
    result = {"statusCode": 201, "headers": {"X-A": "1"}, "body": '{"data": 1}', "isBase64Encoded": False}
    response = answer("POST", "/v1/x", Outcome("r1", result=result))
    assert (response.status, response.headers, response.body) == (201, {"X-A": "1"}, b'{"data": 1}')


@pytest.mark.parametrize(
    ("identifier", "name"),
    [
        ("analytics", "analytics"),
        ("analytics:$LATEST", "analytics"),
        ("123456789012:function:analytics", "analytics"),
        ("arn:aws:lambda:us-east-1:123456789012:function:analytics", "analytics"),
        ("arn:aws:lambda:us-east-1:123456789012:function:analytics:live", "analytics"),
    ],
)
def test_function_names_and_arns(identifier: str, name: str) -> None:
    assert function_name(identifier) == name


def test_the_maintenance_context_reports_the_configured_timeout(
    make: Callable[..., Lambdas], functions: Path
) -> None:
    # MAINTENANCE_TIMEOUT_SECONDS: background jobs see a short deadline and continue sooner.
    remaining = "def handler(event, context):\n    return context.get_remaining_time_in_millis()\n"
    for name in ("maintenance", "import_file"):
        (functions / name).mkdir()
        (functions / name / "__init__.py").write_text("")
        (functions / name / "handler.py").write_text(remaining)
    lambdas = make(LambdaSettings.from_env({"MAINTENANCE_TIMEOUT_SECONDS": "6"}))
    short, other = lambdas.invoke("maintenance", {}), lambdas.invoke("import_file", {})
    assert 0 < short.result <= 6_000 < other.result <= 30_000
    assert LambdaSettings().maintenance_timeout_seconds == 30
    with pytest.raises(ValueError, match="visibility timeout"):
        LambdaSettings.from_env({"MAINTENANCE_TIMEOUT_SECONDS": "31"})


def test_a_result_past_lambdas_6_mb_is_an_error_as_on_lambda(
    make: Callable[..., Lambdas], functions: Path
) -> None:
    # Lambda weighs the result as JSON: 4 MB of double quotes is 8 MB there.
    (functions / "big").mkdir()
    (functions / "big" / "__init__.py").write_text("")
    (functions / "big" / "handler.py").write_text(
        "def handler(event, context):\n    return {'body': event['char'] * event['count']}\n"
    )
    lambdas = make()
    fits = lambdas.invoke("big", {"char": "x", "count": 6 * 1024 * 1024 - 100})
    assert fits.ok and len(fits.result["body"]) == 6 * 1024 * 1024 - 100
    for char, count in (("x", 6 * 1024 * 1024), ('"', 4 * 1024 * 1024)):
        refused = lambdas.invoke("big", {"char": char, "count": count})
        assert refused.kind == "error" and refused.error is not None
        assert refused.error["errorType"] == "Function.ResponseSizeTooLarge"
