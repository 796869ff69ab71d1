"""Counters stay exact under 16 concurrent writers (SPEC §4, §6): inserts, upserts, single and
bulk deletes and bulk updates from 16 threads against the local stack's worker processes.
At the end each dataset's ``row_count``, its ``total``, the rows a walk reads, and the
workspace's row and dataset counts all agree.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
from typing import Any

from .conftest import Stack
from .test_isolation import ALL_SCOPES, Recorder, all_rows

WRITERS = 16
ROUNDS = 6


def test_sixteen_writers_leave_every_count_exact(stack: Stack) -> None:
    workspace = f"counters-{secrets.token_hex(3)}"
    made = stack.admin("create-key", "--workspace", workspace, "--scopes", ALL_SCOPES, "--name", "writers")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    plain = stack.request("POST", "/datasets", key=key, json={"name": "plain"}).json()["data"]["id"]
    people = stack.request(
        "POST",
        "/datasets",
        key=key,
        json={"name": "people", "columns": [{"name": "email", "type": "string", "indexed": True}]},
    ).json()["data"]["id"]
    recorder = Recorder()

    def writer(number: int) -> None:
        rng = random.Random(number)
        mine: list[str] = []
        for round_ in range(ROUNDS):
            inserted = recorder.check(
                "insert",
                stack.request(
                    "POST",
                    f"/datasets/{plain}/rows",
                    key=key,
                    json={
                        "rows": [
                            {"writer": number, "round": round_, "tag": f"t{number % 4}"} for _ in range(5)
                        ]
                    },
                ),
                201,
            )
            if inserted:
                mine += [row["id"] for row in inserted["data"]["rows"]]
            emails = [f"p{rng.randrange(6)}@x.io" for _ in range(2)]
            recorder.check(
                "upsert",
                stack.request(
                    "POST",
                    f"/datasets/{people}/rows",
                    key=key,
                    json={
                        "rows": [{"email": email, "seen": number} for email in emails],
                        "upsert_on": "email",
                    },
                ),
                201,
            )
            if mine:
                victim = mine.pop(rng.randrange(len(mine)))
                recorder.check(
                    "delete", stack.request("DELETE", f"/datasets/{plain}/rows/{victim}", key=key), 200
                )
            if round_ == ROUNDS // 2:
                recorder.check(
                    "bulk update",
                    stack.request(
                        "PATCH",
                        f"/datasets/{plain}/rows",
                        key=key,
                        json={"where": {"writer": number}, "set": {"touched": True}},
                    ),
                    200,
                )
        if number % 4 == 0:
            recorder.check(
                "bulk delete",
                stack.request(
                    "DELETE",
                    f"/datasets/{plain}/rows",
                    key=key,
                    json={"where": {"writer": number, "round": 0}},
                ),
                200,
            )

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert recorder.problems == []

    readable = 0
    for dataset_id in (plain, people):
        rows, total = all_rows(stack, key, dataset_id)
        row_count = stack.request("GET", f"/datasets/{dataset_id}", key=key).json()["data"]["row_count"]
        assert len(rows) == total == row_count, (dataset_id, len(rows), total, row_count)
        readable += len(rows)
    emails = [row["email"] for row in all_rows(stack, key, people)[0]]
    assert len(emails) == len(set(emails)) <= 6  # one row per upserted email
    shown = stack.admin("show-workspace", "--workspace", workspace)
    assert shown.returncode == 0, shown.stderr
    usage: dict[str, Any] = json.loads(shown.stdout)
    assert usage["row_count"] == readable and usage["dataset_count"] == 2, usage
