"""Cold start: how long importing an API handler module takes, against boto3 + the Powertools resolver.

Each import runs in a fresh interpreter (as a new Lambda execution environment does) that
times only the import statement, with the code laid out as Lambda lays it out: the
``functions`` folder as the code root and the core layer's ``python`` folder on the path.
Runs alternate between the two so load on the shared machine affects both alike; the
figure is the ratio of medians.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from . import report
from .report import Figure
from .stack import ROOT, clean_env

RUNS = 9
TARGET = 1.3
HANDLER = "query_rows.handler"  # functions/query_rows/handler.py: GET .../rows
BASELINE = "import boto3\nfrom aws_lambda_powertools.event_handler import APIGatewayRestResolver"

_TIMED = """
import time
began = time.perf_counter()
{statement}
print(time.perf_counter() - began)
"""


def _seconds(statement: str) -> float:
    env = clean_env()
    env.update(
        PYTHONPATH=f"{ROOT / 'functions'}:{ROOT / 'layers' / 'core' / 'python'}",
        AWS_DEFAULT_REGION="us-east-1",
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # after the warm-up, imports load compiled files
    done = subprocess.run(
        [sys.executable, "-c", _TIMED.format(statement=statement)],
        cwd=ROOT / "functions",
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return float(done.stdout.strip().splitlines()[-1])


def figures() -> list[Figure]:
    handler_statement = f"import {HANDLER}"
    _seconds(handler_statement)  # warm-up: writes .pyc files and fills the OS file cache
    _seconds(BASELINE)
    handler_runs, baseline_runs = [], []
    for _ in range(RUNS):
        handler_runs.append(_seconds(handler_statement))
        baseline_runs.append(_seconds(BASELINE))
    handler, baseline = statistics.median(handler_runs), statistics.median(baseline_runs)
    return [
        report.at_most(
            f"cold start: import {HANDLER} ÷ import boto3 + Powertools resolver",
            round(handler / baseline, 2),
            TARGET,
            unit="×",
            note=f"medians of {RUNS} fresh interpreters: {handler * 1000:.0f} ms vs {baseline * 1000:.0f} ms",
        )
    ]
