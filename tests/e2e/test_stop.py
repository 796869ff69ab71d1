"""Stopping the local stack: the first Ctrl-C (or SIGTERM) ends everything, requests in flight too."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import local_stack, process_tree, wait_for

STOP_SECONDS = 2.0


def running_functions(tree: dict[int, int]) -> set[str]:
    """Functions with a worker process in ``tree`` (their command line ends with the function name)."""
    names = set()
    for pid in tree:
        listing = subprocess.run(["ps", "-o", "args=", "-p", str(pid)], capture_output=True, text=True)
        words = listing.stdout.split()
        if "local.runtime" in words:
            names.add(words[words.index("local.runtime") + 1])
    return names


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_stops_everything_with_a_request_in_flight(tmp_path: Path, signum: int) -> None:
    with local_stack(tmp_path) as stack:
        # Given worker processes of a few functions, and a large insert under way
        created = stack.request("POST", "/datasets", json={"name": "stopping", "columns": []})
        assert created.status_code == 201
        dataset_id = created.json()["data"]["id"]
        assert stack.request("GET", f"/datasets/{dataset_id}").status_code == 200
        rows = [{"n": n, "text": "x" * 200, "more": n * 2} for n in range(1000)]
        answers: list[Any] = []

        def insert() -> None:
            try:
                answers.append(stack.request("POST", f"/datasets/{dataset_id}/rows", json={"rows": rows}))
            except requests.RequestException as exc:  # the stack went away mid-request: also an answer
                answers.append(exc)

        client = threading.Thread(target=insert)
        client.start()
        wait_for(
            lambda: "insert_rows" in running_functions(process_tree(stack.process.pid)), 30, "the insert"
        )
        tree = process_tree(stack.process.pid)
        workers = set(tree) - {stack.process.pid}
        assert len(workers) >= 3

        # When the stack gets one signal
        stack.process.send_signal(signum)

        # Then it exits within two seconds, leaving no process behind, and the request is answered
        stack.process.wait(timeout=STOP_SECONDS)
        assert all(gone(pid) for pid in workers)
        client.join(timeout=30)
        [answer] = answers
        assert isinstance(answer, requests.RequestException) or answer.status_code == 503, answer
        wait_for(lambda: "Stopped." in stack.output, 5, "an orderly stop")  # not cut short
