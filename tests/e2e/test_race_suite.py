"""The race suite (SPEC §4, §6, §7): 8 writer threads against the local stack's worker processes
(several instances of each function, one store) insert, upsert, delete and bulk-update rows,
while a control thread replaces one of their datasets through the drop folder, deletes another
one they are writing to, and delivers the replace import's S3 notification twice more.

At the end: every acknowledged write that the contract keeps is readable (inserts into the
replaced dataset that began after its import finished; every insert into the plain dataset
that was not deleted); writes that lost a race were refused in the envelope (404 for the
deleted dataset, 409 ``conflict`` while the replace wrote or when its swap overtook the
write); no upsert key has two rows; no row item of the deleted dataset or of the replaced
generation is left in the rows table; and each dataset's ``row_count``, its ``total`` and
its readable rows agree, as do the workspace's row and dataset counts.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import time
from typing import Any

from datasets_core.imports.models import import_id_of
from tests.integration.import_support import s3_notification

from .conftest import Stack, wait_for
from .test_isolation import ALL_SCOPES, Recorder, all_rows

WRITERS = 8
MIN_ROUNDS = 4
BUCKET = "datasets-drop-local"
FILE_ROWS = 300
SETTLE_SECONDS = 60.0


def _create(stack: Stack, key: str, body: dict[str, Any]) -> str:
    response = stack.request("POST", "/datasets", key=key, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["data"]["id"])


def _row_items(stack: Stack, dataset_id: str) -> list[dict[str, Any]]:
    """The rows table's row items (those holding a row id) of one dataset, every generation."""
    dynamodb = stack.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": "datasets-rows",
        "FilterExpression": "begins_with(pk, :dataset) AND attribute_exists(id)",
        "ExpressionAttributeValues": {":dataset": {"S": f"{dataset_id}#"}},
    }
    while True:
        page = dynamodb.scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_writers_racing_a_replace_a_delete_and_redelivery_keep_every_invariant(stack: Stack) -> None:
    workspace = f"races-{secrets.token_hex(3)}"
    made = stack.admin("create-key", "--workspace", workspace, "--scopes", ALL_SCOPES, "--name", "racers")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    plain = _create(stack, key, {"name": "plain"})
    people = _create(
        stack, key, {"name": "people", "columns": [{"name": "email", "type": "string", "indexed": True}]}
    )
    doomed = _create(stack, key, {"name": "doomed"})
    replaced = _create(stack, key, {"name": "replaced"})
    seeded = stack.request(
        "POST", f"/datasets/{replaced}/rows", key=key, json={"rows": [{"n": -i} for i in range(20)]}
    )
    assert seeded.status_code == 201, seeded.text

    recorder = Recorder()
    lock = threading.Lock()
    kept_plain: set[str] = set()  # acknowledged inserts into plain not deleted since
    after_swap: set[str] = set()  # inserts into replaced that began after its import finished
    refused: dict[str, int] = {"doomed 404": 0, "replaced 409": 0}
    started = threading.Event()
    control_done = threading.Event()
    swapped = threading.Event()

    def expect(what: str, response: Any, allowed: dict[int, str]) -> Any:
        """``allowed``: status → the name of the race it may lose (or "" for success)."""
        if response.status_code not in allowed:
            recorder.check(what, response, next(iter(allowed)))
            return None
        race = allowed[response.status_code]
        if race:
            error = response.json()["error"]
            # 409 while the import writes carries Retry-After; a write the swap overtook does not
            # (it may be retried at once, against the new rows).
            ok = (race == "doomed 404" and error["code"] == "dataset_not_found") or (
                race == "replaced 409" and error["code"] == "conflict"
            )
            if not ok:
                recorder.check(what, response, -1)
            with lock:
                refused[race] += 1
            return None
        return response.json()

    def writer(number: int) -> None:
        rng = random.Random(number)
        mine: list[str] = []
        round_ = 0
        while round_ < MIN_ROUNDS or not control_done.is_set():
            inserted = expect(
                "insert plain",
                stack.request(
                    "POST",
                    f"/datasets/{plain}/rows",
                    key=key,
                    json={"rows": [{"writer": number, "round": round_} for _ in range(3)]},
                ),
                {201: ""},
            )
            if inserted:
                ids = [row["id"] for row in inserted["data"]["rows"]]
                mine += ids
                with lock:
                    kept_plain.update(ids)
            expect(
                "upsert",
                stack.request(
                    "POST",
                    f"/datasets/{people}/rows",
                    key=key,
                    json={
                        "rows": [{"email": f"p{rng.randrange(5)}@x.io", "seen": number} for _ in range(2)],
                        "upsert_on": "email",
                    },
                ),
                {201: ""},
            )
            expect(
                "insert doomed",
                stack.request(
                    "POST", f"/datasets/{doomed}/rows", key=key, json={"rows": [{"w": number}] * 2}
                ),
                {201: "", 404: "doomed 404"},
            )
            began_after_swap = swapped.is_set()
            landed = expect(
                "insert replaced",
                stack.request(
                    "POST", f"/datasets/{replaced}/rows", key=key, json={"rows": [{"n": 1000 + number}] * 2}
                ),
                {201: "", 409: "replaced 409"},
            )
            if landed and began_after_swap:
                with lock:
                    after_swap.update(row["id"] for row in landed["data"]["rows"])
            if mine:
                victim = mine.pop(rng.randrange(len(mine)))
                if expect(
                    "delete", stack.request("DELETE", f"/datasets/{plain}/rows/{victim}", key=key), {200: ""}
                ):
                    with lock:
                        kept_plain.discard(victim)
            if round_ == 1:
                expect(
                    "bulk update",
                    stack.request(
                        "PATCH",
                        f"/datasets/{plain}/rows",
                        key=key,
                        json={"where": {"writer": number}, "set": {"touched": True}},
                    ),
                    {200: ""},
                )
            if number == 0 and round_ == 0:
                started.set()
            round_ += 1

    def control() -> None:
        try:
            started.wait(30)
            s3 = stack.client("s3")
            drop_key = f"drop/{workspace}/replaced/v2.csv"
            body = "n\n" + "".join(f"{i}\n" for i in range(FILE_ROWS))
            put = s3.put_object(Bucket=BUCKET, Key=drop_key, Body=body.encode(), Metadata={"mode": "replace"})
            import_id = import_id_of(BUCKET, drop_key, put["VersionId"])

            def finished() -> dict[str, Any] | None:
                response = stack.request("GET", f"/imports/{import_id}", key=key)
                if response.status_code != 200:
                    return None
                report = response.json()["data"]
                return report if report["status"] in ("succeeded", "failed") else None

            report = wait_for(finished, SETTLE_SECONDS, "the replace import")
            assert report["status"] == "succeeded", report
            swapped.set()
            deleted = stack.request("DELETE", f"/datasets/{doomed}", key=key)
            assert deleted.status_code in (200, 202, 204), deleted.text
            # S3 delivers at least once: the same notification twice more, as new messages.
            head = s3.head_object(Bucket=BUCKET, Key=drop_key)
            notification = s3_notification(
                BUCKET, drop_key, head["ContentLength"], head["ETag"].strip('"'), head["VersionId"]
            )
            sqs = stack.client("sqs")
            queue = sqs.get_queue_url(QueueName="datasets-import")["QueueUrl"]
            for _ in range(2):
                sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(notification))
            time.sleep(1.0)  # writers go on past the swap, the delete and the redelivery
        finally:
            control_done.set()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    threads.append(threading.Thread(target=control))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert recorder.problems == []
    assert swapped.is_set(), "the replace import did not finish"

    # The deleted dataset is gone with every row item; the replaced one holds its new
    # generation only (the purges are background jobs: wait for them).
    assert stack.request("GET", f"/datasets/{doomed}", key=key).status_code == 404
    wait_for(lambda: not _row_items(stack, doomed), SETTLE_SECONDS, "the deleted dataset's purge")

    readable = 0
    for dataset_id in (plain, people, replaced):
        rows, total = all_rows(stack, key, dataset_id)
        row_count = stack.request("GET", f"/datasets/{dataset_id}", key=key).json()["data"]["row_count"]
        assert len(rows) == total == row_count, (dataset_id, len(rows), total, row_count)
        readable_here = len(rows)

        def live_only(dataset_id: str = dataset_id, expected: int = readable_here) -> bool:
            return len(_row_items(stack, dataset_id)) == expected

        wait_for(live_only, SETTLE_SECONDS, f"no row item of {dataset_id} outside its live generation")
        readable += len(rows)
        ids = {row["id"] for row in rows}
        if dataset_id == plain:
            assert ids == kept_plain
            assert all(row.get("touched") for row in rows if row["round"] <= 1)
        if dataset_id == replaced:
            # The file's rows once (the redelivered notifications imported nothing), and every
            # insert that began after the swap; nothing from before the replace.
            assert sorted(row["n"] for row in rows if row["n"] < 1000) == list(range(FILE_ROWS))
            assert after_swap <= ids
            assert not [row for row in rows if row["n"] < 0]
    emails = [row["email"] for row in all_rows(stack, key, people)[0]]
    assert len(emails) == len(set(emails)) <= 5  # one row per upserted email

    imports = stack.request("GET", f"/datasets/{replaced}/imports", key=key).json()["data"]
    assert len(imports) == 1, imports
    shown = stack.admin("show-workspace", "--workspace", workspace)
    assert shown.returncode == 0, shown.stderr
    usage: dict[str, Any] = json.loads(shown.stdout)
    assert usage["row_count"] == readable and usage["dataset_count"] == 3, usage
