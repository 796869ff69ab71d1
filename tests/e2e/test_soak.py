"""Steady mixed traffic for a couple of minutes: the stack's memory stays flat.

Three clients run at once against a stack of their own: a writer (inserts, deletes the
oldest rows as it goes so the data stays bounded, replaces and patches rows), a reader
(index queries, ordered pages, single rows, the dataset) and an administrator (renames a
dataset back and forth, each a DynamoDB transaction; creates, lists and revokes keys). The
resident memory of the stack's process tree (the stack and its worker processes) is
sampled throughout; after a warm-up, the largest sample of the last third is within a
small margin of the largest of the first third. Each client uses functions of its own, so
each function serves one request at a time and its pool stays at one worker.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import requests

from .conftest import Stack, local_stack, process_tree

SOAK_SECONDS = 150
WARM_UP_SECONDS = 30
SAMPLE_SECONDS = 3
MARGIN = 0.05  # the data still grows a little: every row write adds an audit-trail entry
LIVE_ROWS = 200


class Traffic:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.problems: list[str] = []
        self.requests = 0
        self.row_ids: deque[str] = deque()

    def call(self, method: str, path: str, expected: int = 200, **kwargs: object) -> dict:
        try:
            response = self.stack.request(method, path, **kwargs)
        except requests.RequestException as exc:
            self.note(f"{method} {path}: {exc}")
            return {}
        with self.lock:
            self.requests += 1
        if response.status_code != expected:
            self.note(f"{method} {path}: {response.status_code} {response.text[:200]}")
            return {}
        return response.json()

    def note(self, problem: str) -> None:
        with self.lock:
            self.problems.append(problem)

    def run(self, body: Callable[[int], None]) -> threading.Thread:
        def loop() -> None:
            round_ = 0
            while not self.stop.is_set():
                body(round_)
                round_ += 1

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread


def test_memory_stays_flat_under_steady_mixed_traffic(tmp_path: Path) -> None:
    # No compaction during the soak: compactions run in maintenance workers that load pyarrow
    # (about 110 MB each), and one started mid-soak is a step, not growth under steady traffic.
    with local_stack(tmp_path, COMPACT_AFTER_ROWS="100000000") as stack:
        traffic = Traffic(stack)
        columns = [{"name": "label", "type": "string", "indexed": True}, {"name": "n", "type": "number"}]
        dataset = traffic.call("POST", "/datasets", 201, json={"name": "soak", "columns": columns})["data"][
            "id"
        ]
        renamed = traffic.call("POST", "/datasets", 201, json={"name": "soak-renamed-0"})["data"]["id"]
        rows_path = f"/datasets/{dataset}/rows"

        def write(round_: int) -> None:
            body = {"rows": [{"label": f"l{(round_ + n) % 7}", "n": round_ * 10 + n} for n in range(10)]}
            inserted = traffic.call("POST", rows_path, 201, json=body).get("data", {}).get("rows", [])
            with traffic.lock:
                traffic.row_ids.extend(row["id"] for row in inserted)
                oldest = (
                    [traffic.row_ids.popleft() for _ in range(10)] if len(traffic.row_ids) > LIVE_ROWS else []
                )
                newest = traffic.row_ids[-1] if traffic.row_ids else None
            if oldest:
                traffic.call("DELETE", rows_path, json={"row_ids": oldest})
            if newest:
                traffic.call("PUT", f"{rows_path}/{newest}", json={"label": "replaced", "n": round_})
                traffic.call("PATCH", f"{rows_path}/{newest}", json={"set": {"n": -round_}})

        def read(round_: int) -> None:
            traffic.call("GET", rows_path, params={"label": f"eq.l{round_ % 7}", "limit": 20})
            traffic.call("GET", rows_path, params={"order": "n.desc", "limit": 20, "count": "none"})
            traffic.call("GET", f"/datasets/{dataset}")
            with traffic.lock:
                some = traffic.row_ids[-1] if traffic.row_ids else None
            if some:
                answer = traffic.stack.request("GET", f"{rows_path}/{some}")  # may be deleted meanwhile
                if answer.status_code not in (200, 404):
                    traffic.note(f"GET row: {answer.status_code} {answer.text[:200]}")

        def administer(round_: int) -> None:
            traffic.call("PATCH", f"/datasets/{renamed}", json={"name": f"soak-renamed-{(round_ + 1) % 2}"})
            key = traffic.call(
                "POST", "/keys", 201, json={"name": f"soak-{round_}", "scopes": ["datasets:read"]}
            )
            traffic.call("GET", "/keys")
            if key:
                traffic.call("DELETE", f"/keys/{key['data']['id']}")
            traffic.call("GET", "/datasets")

        began = time.monotonic()
        clients = [traffic.run(write), traffic.run(read), traffic.run(administer)]
        samples: list[tuple[float, int]] = []
        while (elapsed := time.monotonic() - began) < SOAK_SECONDS:
            time.sleep(SAMPLE_SECONDS)
            samples.append((elapsed, sum(process_tree(stack.process.pid).values())))
        traffic.stop.set()
        for client in clients:
            client.join(timeout=60)

    assert traffic.problems == []
    assert traffic.requests > 500, traffic.requests
    measured = [kib for at, kib in samples if at >= WARM_UP_SECONDS]
    third = len(measured) // 3
    first, last = max(measured[:third]), max(measured[-third:])
    trace = ", ".join(f"{at:.0f}s {kib / 1024:.0f}MiB" for at, kib in samples)
    assert last <= first * (1 + MARGIN), (
        f"memory grew from {first / 1024:.0f} to {last / 1024:.0f} MiB: {trace}"
    )
