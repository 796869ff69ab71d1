"""Requests are isolated as Lambda isolates them (SPEC §9), however many run at once.

Two workspaces hammer the stack from many threads through several functions at the same
time: tenant A inserts rows with values only A sends while tenant B renames its dataset,
creates keys with secret-looking names, inserts its own rows and queries. Afterwards every
row of each dataset is exactly what that tenant sent, the counters are exact, and no answer
was a 5xx or a body meant for another request.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any

import requests

from .conftest import Stack

ALL_SCOPES = "datasets:read,datasets:write,datasets:admin,keys:admin"
ROUNDS = 12
ROWS_PER_INSERT = 5


def other_workspace_key(stack: Stack, workspace: str) -> str:
    result = stack.admin("create-key", "--workspace", workspace, "--scopes", ALL_SCOPES, "--name", "tenant-b")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


class Recorder:
    """Every answer of every thread; the test fails on anything but the expected statuses."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.problems: list[str] = []

    def check(self, what: str, response: requests.Response, expected: int) -> Any:
        if response.status_code != expected:
            with self.lock:
                self.problems.append(f"{what}: {response.status_code} {response.text[:300]}")
            return None
        return response.json()


def all_rows(stack: Stack, key: str, dataset_id: str) -> tuple[list[dict[str, Any]], int]:
    rows: list[dict[str, Any]] = []
    total = None
    offset = 0
    while True:
        page = stack.request(
            "GET", f"/datasets/{dataset_id}/rows", key=key, params={"limit": 1000, "offset": offset}
        )
        assert page.status_code == 200, page.text
        data = page.json()["data"]
        total = data["total"] if total is None else total
        rows.extend(data["rows"])
        if len(data["rows"]) < 1000:
            return rows, total
        offset += 1000


def test_two_tenants_through_many_functions_at_once_never_see_each_other(stack: Stack) -> None:
    marker = secrets.token_hex(3)
    key_a = stack.api_key
    key_b = other_workspace_key(stack, f"tenant-b-{marker}")
    columns = [{"name": "label", "type": "string"}, {"name": "seq", "type": "number"}]
    created_a = stack.request(
        "POST", "/datasets", key=key_a, json={"name": f"a-{marker}", "columns": columns}
    )
    created_b = stack.request(
        "POST", "/datasets", key=key_b, json={"name": f"b-{marker}", "columns": columns}
    )
    assert created_a.status_code == 201 and created_b.status_code == 201
    ds_a, ds_b = created_a.json()["data"]["id"], created_b.json()["data"]["id"]

    recorder = Recorder()
    sent: dict[str, list[dict[str, Any]]] = {ds_a: [], ds_b: []}
    sent_lock = threading.Lock()

    def inserter(key: str, dataset_id: str, tenant: str, thread: int) -> Callable[[], None]:
        def run() -> None:
            for round_ in range(ROUNDS):
                rows = [
                    {"label": f"{tenant}-only-{marker}-{thread}-{round_}-{n}", "seq": thread * 1000 + round_}
                    for n in range(ROWS_PER_INSERT)
                ]
                response = stack.request("POST", f"/datasets/{dataset_id}/rows", key=key, json={"rows": rows})
                body = recorder.check(f"{tenant} insert", response, 201)
                if body is not None:
                    with sent_lock:
                        sent[dataset_id].extend(rows)

        return run

    def renamer() -> None:
        for round_ in range(ROUNDS):
            body = {
                "name": f"b-secret-name-{marker}-{round_}",
                "description": f"b-secret-description-{round_}",
            }
            response = stack.request("PATCH", f"/datasets/{ds_b}", key=key_b, json=body)
            recorder.check("B rename", response, 200)

    def key_maker() -> None:
        for round_ in range(ROUNDS):
            body = {"name": f"b-secret-key-{marker}-{round_}", "scopes": ["datasets:read"]}
            recorder.check("B create key", stack.request("POST", "/keys", key=key_b, json=body), 201)

    def querier(key: str, dataset_id: str, tenant: str) -> Callable[[], None]:
        def run() -> None:
            for _ in range(ROUNDS):
                page = stack.request("GET", f"/datasets/{dataset_id}/rows", key=key, params={"limit": 50})
                body = recorder.check(f"{tenant} query", page, 200)
                if body is not None:
                    for row in body["data"]["rows"]:
                        if not str(row.get("label", "")).startswith(f"{tenant}-only-"):
                            with recorder.lock:
                                recorder.problems.append(f"{tenant} saw a foreign row {row}")
                recorder.check(f"{tenant} list", stack.request("GET", "/datasets", key=key), 200)
                recorder.check(f"{tenant} get", stack.request("GET", f"/datasets/{dataset_id}", key=key), 200)

        return run

    threads = [
        threading.Thread(target=inserter(key_a, ds_a, "A", n), name=f"A-insert-{n}") for n in range(3)
    ] + [threading.Thread(target=inserter(key_b, ds_b, "B", n), name=f"B-insert-{n}") for n in range(2)]
    threads += [
        threading.Thread(target=renamer, name="B-rename"),
        threading.Thread(target=key_maker, name="B-keys"),
        threading.Thread(target=querier(key_a, ds_a, "A"), name="A-query"),
        threading.Thread(target=querier(key_b, ds_b, "B"), name="B-query"),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert recorder.problems == []
    for dataset_id, key, tenant in ((ds_a, key_a, "A"), (ds_b, key_b, "B")):
        rows, total = all_rows(stack, key, dataset_id)
        stored = sorted((row["label"], row["seq"]) for row in rows)
        expected = sorted((row["label"], row["seq"]) for row in sent[dataset_id])
        assert stored == expected, tenant
        assert all(
            set(row) == {"id", "row_index", "created_at", "updated_at", "label", "seq"} for row in rows
        )
        assert total == len(expected)
        dataset = stack.request("GET", f"/datasets/{dataset_id}", key=key).json()["data"]
        assert dataset["row_count"] == len(expected)
        assert [column["name"] for column in dataset["columns"]] == ["label", "seq"]
    assert stack.request("GET", f"/datasets/{ds_a}", key=key_a).json()["data"]["name"] == f"a-{marker}"
    a_keys = {key["name"] for key in stack.request("GET", "/keys", key=key_a).json()["data"]}
    assert not any(name.startswith("b-secret-key-") for name in a_keys)
