"""The local stack's DynamoDB (``local/dynamodb.py``): same answers as stock moto, atomic under load.

The differential test replays one random sequence of writes (put, conditional put, update,
delete, batch write, transactions, some failing their conditions), reads (GetItem,
BatchGetItem) and queries (table and
GSIs with binary sort keys, sparse index entries, both directions, limits, exclusive start
keys, filters, COUNT, pages near the 1 MB limit) against stock moto and against the patched
moto, and asserts every answer is identical.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from infra.tables import create_local_tables
from local import dynamodb
from tests.e2e.conftest import free_port

ROWS, META = "datasets-rows", "datasets-meta"
PARTITIONS = ["ds_a#0.0", "ds_a#0.1", "ds_b#0.0"]
INDEX_PARTITIONS = ["ds_a#0#1.0", "ds_a#0#1.1"]
BYTES = [0x00, 0x01, 0x02, 0x3E, 0x3F, 0x7F, 0x80, 0xC0, 0xFE, 0xFF]
OPS = ("<", "<=", ">", ">=", "=", "between")


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


class Workload:
    """Random operations drawn from ``rng``; each returns a comparable answer."""

    def __init__(self, client: Any, rng: random.Random) -> None:
        self.client = client
        self.rng = rng

    # --- values ------------------------------------------------------------------------------
    def binary(self) -> bytes:
        return bytes(self.rng.choice(BYTES) for _ in range(self.rng.randint(1, 4)))

    def number(self) -> str:
        value = self.rng.randint(0, 40)
        return self.rng.choice([str(value), f"{value}.0", f"{value}.5"]) if value % 7 == 0 else str(value)

    def row_key(self) -> dict[str, Any]:
        return {"pk": {"S": self.rng.choice(PARTITIONS)}, "sk": {"N": self.number()}}

    def row(self) -> dict[str, Any]:
        item = {
            **self.row_key(),
            "c0": {"N": str(self.rng.randint(0, 9))},
            "c1": {"S": self.rng.choice("abc")},
        }
        shape = self.rng.random()
        if shape < 0.75:
            item["x1p"] = {"S": self.rng.choice(INDEX_PARTITIONS)}
            if shape < 0.65:  # else: partition key without sort key (not in the index)
                item["x1s"] = {"B": self.binary()}
        if self.rng.random() < 0.4:
            item["x2p"] = {"S": "ds_a#0#2.0"}
            item["x2s"] = {"B": self.binary()}
        if self.rng.random() < (0.3 if item["pk"]["S"] == PARTITIONS[2] else 0.02):
            item["blob"] = {"S": "z" * 150_000}  # pages end on moto's 1 MB limit
        elif self.rng.random() < 0.03:
            item["blob"] = {"S": "z" * self.rng.choice([404_800, 405_100])}  # just under or over the limit
        return item

    def meta_item(self) -> dict[str, Any]:
        item = {
            "pk": {"S": f"WS#{self.rng.choice('xy')}"},
            "sk": {"S": self.rng.choice(["KEY#", "DS#"]) + self.word()},
        }
        if self.rng.random() < 0.7:
            item["gsi1pk"] = {"S": "G#" + self.rng.choice("xy")}
            item["gsi1sk"] = {"S": self.word()}
        return item

    def word(self) -> str:
        return "".join(self.rng.choice("abé\U0001f600") for _ in range(self.rng.randint(1, 3)))

    # --- writes ------------------------------------------------------------------------------
    def call(self, operation: str, **kwargs: Any) -> Any:
        try:
            answer = getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons")
            return ("error", exc.response["Error"]["Code"], reasons and [r.get("Code") for r in reasons])
        answer.pop("ResponseMetadata", None)
        return answer

    def write(self) -> Any:
        kind = self.rng.choice(
            ["put", "put", "put_if_new", "update", "update", "delete", "batch", "transact"]
        )
        if kind == "put":
            return self.call("put_item", TableName=ROWS, Item=self.row())
        if kind == "put_if_new":
            return self.call(
                "put_item", TableName=ROWS, Item=self.row(), ConditionExpression="attribute_not_exists(pk)"
            )
        if kind == "update":
            return self.call("update_item", TableName=ROWS, Key=self.row_key(), **self.update())
        if kind == "delete":
            return self.call("delete_item", TableName=ROWS, Key=self.row_key(), ReturnValues="ALL_OLD")
        if kind == "batch":
            requests, seen = [], set()
            for _ in range(self.rng.randint(1, 25)):
                put = self.rng.random() < 0.7
                item = self.row() if put else self.row_key()
                key = (item["pk"]["S"], float(item["sk"]["N"]))
                if key in seen:
                    continue
                seen.add(key)
                requests.append({"PutRequest": {"Item": item}} if put else {"DeleteRequest": {"Key": item}})
            return self.call("batch_write_item", RequestItems={ROWS: requests})
        return self.transact()

    def update(self) -> dict[str, Any]:
        choice = self.rng.random()
        values: dict[str, Any] = {":one": {"N": "1"}}
        if choice < 0.3:
            expression, values[":s"] = "SET x1s = :s, x1p = :p ADD c0 :one", {"B": self.binary()}
            values[":p"] = {"S": self.rng.choice(INDEX_PARTITIONS)}
        elif choice < 0.45:
            expression = "REMOVE x1s ADD c0 :one"
        elif choice < 0.6:
            expression, values[":s"] = "SET x2p = :p2, x2s = :s ADD c0 :one", {"B": self.binary()}
            values[":p2"] = {"S": "ds_a#0#2.0"}
        elif choice < 0.75:  # the item's size changes where pages end on moto's 1 MB limit
            expression, values[":b"] = (
                "SET #blob = :b ADD c0 :one",
                {"S": "z" * self.rng.choice([10, 150_000, 300_000])},
            )
        else:
            expression = "ADD c0 :one"
        args: dict[str, Any] = {"UpdateExpression": expression, "ExpressionAttributeValues": values}
        if "#blob" in expression:
            args["ExpressionAttributeNames"] = {"#blob": "blob"}
        if self.rng.random() < 0.3:
            args["ConditionExpression"] = "attribute_exists(pk) AND c0 < :limit"
            values[":limit"] = {"N": str(self.rng.randint(0, 9))}
        return args

    def transact(self) -> Any:
        items, seen = [], set()
        for _ in range(self.rng.randint(1, 4)):
            key = self.row_key()
            marker = (key["pk"]["S"], float(key["sk"]["N"]))
            if marker in seen:
                continue
            seen.add(marker)
            kind = self.rng.choice(["Put", "Update", "Delete", "ConditionCheck"])
            if kind == "Put":
                item = {**self.row(), **key}
                items.append({"Put": {"TableName": ROWS, "Item": item}})
            elif kind == "Update":
                items.append({"Update": {"TableName": ROWS, "Key": key, **self.update()}})
            elif kind == "Delete":
                items.append({"Delete": {"TableName": ROWS, "Key": key}})
            else:
                check = self.rng.choice(["attribute_exists(pk)", "attribute_not_exists(pk)"])
                items.append(
                    {"ConditionCheck": {"TableName": ROWS, "Key": key, "ConditionExpression": check}}
                )
        return self.call("transact_write_items", TransactItems=items)

    # --- queries -----------------------------------------------------------------------------
    def query(self) -> Any:
        target = self.rng.choice(["table", "idx1", "idx1", "idx2", "meta", "gsi1"])
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        if target == "table":
            hash_name, hash_value, sort_name = "pk", {"S": self.rng.choice([*PARTITIONS, "none#0"])}, "sk"
            sort_value, ops = (lambda: {"N": self.number()}), OPS
        elif target in ("idx1", "idx2"):
            n = target[-1]
            partitions = INDEX_PARTITIONS if n == "1" else ["ds_a#0#2.0"]
            hash_name, hash_value, sort_name = f"x{n}p", {"S": self.rng.choice(partitions)}, f"x{n}s"
            sort_value, ops = (lambda: {"B": self.binary()}), (*OPS, "begins_with")
        elif target == "meta":
            hash_name, hash_value, sort_name = "pk", {"S": f"WS#{self.rng.choice('xy')}"}, "sk"
            sort_value, ops = (
                (lambda: {"S": self.rng.choice(["KEY#", "DS#", ""]) + self.word()}),
                (*OPS, "begins_with"),
            )
        else:
            hash_name, hash_value, sort_name = "gsi1pk", {"S": "G#" + self.rng.choice("xy")}, "gsi1sk"
            sort_value, ops = (lambda: {"S": self.word()}), (*OPS, "begins_with")
        names["#h"], values[":h"] = hash_name, hash_value
        condition = "#h = :h"
        if self.rng.random() < 0.6:
            names["#s"] = sort_name
            op = self.rng.choice(ops)
            values[":a"] = sort_value()
            if op == "between":
                values[":b"] = sort_value()
                condition += " AND #s BETWEEN :a AND :b"
            elif op == "begins_with":
                condition += " AND begins_with(#s, :a)"
            else:
                condition += f" AND #s {op} :a"
        args: dict[str, Any] = {
            "TableName": META if target in ("meta", "gsi1") else ROWS,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": self.rng.random() < 0.5,
        }
        if target not in ("table", "meta"):
            args["IndexName"] = target
        if self.rng.random() < 0.7:
            args["Limit"] = self.rng.randint(1, 7)
        if target in ("table", "idx1", "idx2") and self.rng.random() < 0.3:
            args["FilterExpression"] = self.rng.choice(["c0 > :f", "attribute_exists(x2s) OR c0 = :f"])
            values[":f"] = {"N": str(self.rng.randint(0, 9))}
        if self.rng.random() < 0.15:
            args["Select"] = "COUNT"
        if self.rng.random() < 0.2:
            args["ExclusiveStartKey"] = self.start_key(target, hash_name, hash_value, sort_name, sort_value)
        pages = []
        for _ in range(60):
            page = self.call("query", **args)
            pages.append(page)
            if not isinstance(page, dict) or "LastEvaluatedKey" not in page:
                break
            args["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return pages

    def read(self) -> Any:
        """GetItem or BatchGetItem of random row keys (some absent), with consumed capacity."""
        capacity = {"ReturnConsumedCapacity": self.rng.choice(["NONE", "TOTAL"])}
        if self.rng.random() < 0.5:
            return self.call("get_item", TableName=ROWS, Key=self.row_key(), **capacity)
        keys = list(
            {repr(key): key for key in (self.row_key() for _ in range(self.rng.randint(1, 6)))}.values()
        )
        answer = self.call("batch_get_item", RequestItems={ROWS: {"Keys": keys}}, **capacity)
        if isinstance(answer, dict):  # the order of a batch's items is not defined
            answer["Responses"] = {
                name: sorted(map(repr, items)) for name, items in answer["Responses"].items()
            }
        return answer

    def start_key(self, target: str, hash_name: str, hash_value: Any, sort_name: str, sort_value: Any) -> Any:
        """A start key anywhere (not only one a page returned): between items, or of another partition."""
        key = {
            hash_name: hash_value if self.rng.random() < 0.8 else {"S": "ds_a#0.1"},
            sort_name: sort_value(),
        }
        if target in ("idx1", "idx2"):
            key.update(self.row_key())
        elif target == "gsi1":
            key.update({"pk": {"S": "WS#x"}, "sk": {"S": "KEY#" + self.word()}})
        return key


def replay(seed: int, steps: int, patched: bool) -> list[Any]:
    with dynamodb.installed() if patched else nullcontext(), mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_local_tables(client)
        workload = Workload(client, random.Random(seed))
        answers = []
        for _ in range(steps):
            roll = workload.rng.random()
            if roll < 0.45:
                answers.append(workload.write())
            elif roll < 0.55:
                answers.append(workload.call("put_item", TableName=META, Item=workload.meta_item()))
            elif roll < 0.65:
                answers.append(workload.read())
            else:
                answers.append(workload.query())
        for table in (ROWS, META):
            answers.append(sorted(map(repr, client.scan(TableName=table)["Items"])))
        return answers


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_patched_moto_answers_exactly_as_stock_moto(seed: int) -> None:
    stock = replay(seed, 500, patched=False)
    patched = replay(seed, 500, patched=True)
    for step, (expected, actual) in enumerate(zip(stock, patched, strict=True)):
        assert actual == expected, f"step {step}"
    # The sequence exercised what it is meant to exercise.
    pages = [
        page for answer in stock if isinstance(answer, list) for page in answer if isinstance(page, dict)
    ]
    assert any("LastEvaluatedKey" in page and page.get("Count", 0) < 7 for page in pages)  # size or filter
    assert any(page.get("Count", 0) > 0 and "Items" not in page for page in pages)  # COUNT
    errors = {answer[1] for answer in stock if isinstance(answer, tuple)}
    assert {
        "ConditionalCheckFailedException",
        "TransactionCanceledException",
        "ValidationException",
    } <= errors


def edge_pages(patched: bool) -> list[Any]:
    """Pages that end on the item after the key condition's run (moto walks on past it)."""
    with dynamodb.installed() if patched else nullcontext(), mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_local_tables(client)
        workload = Workload(client, random.Random(0))
        for sk in range(8):
            item = {"pk": {"S": "big#0"}, "sk": {"N": str(sk)}, "blob": {"S": "z" * 150_000}}
            item.update({"x1p": {"S": "big#1"}, "x1s": {"B": bytes([sk])}})
            client.put_item(TableName=ROWS, Item=item)
        answers = []
        for condition, forward, limit in [
            ("sk <= :v", True, None),  # 6 items = 900 kB; the 7th would pass 1 MB: a LastEvaluatedKey
            ("sk >= :w", False, None),
            ("sk <= :v", True, 6),  # the limit reached exactly, more items after the run
            ("sk < :w", True, None),  # small run, large next item: no key
            ("grow", True, None),  # two items measured by the pages above grow in place (UpdateItem)
            ("sk <= :v", True, None),  # so the page now ends one item sooner
        ]:
            if condition == "grow":
                for sk in ("1", "2"):
                    client.update_item(
                        TableName=ROWS,
                        Key={"pk": {"S": "big#0"}, "sk": {"N": sk}},
                        UpdateExpression="SET #blob = :b",
                        ExpressionAttributeNames={"#blob": "blob"},
                        ExpressionAttributeValues={":b": {"S": "z" * 220_000}},
                    )
                continue
            values = {":h": {"S": "big#0"}}
            values.update(
                {
                    name: value
                    for name, value in {":v": {"N": "5"}, ":w": {"N": "2"}}.items()
                    if name in condition
                }
            )
            args: dict[str, Any] = {"Limit": limit} if limit else {}
            answers.append(
                workload.call(
                    "query",
                    TableName=ROWS,
                    KeyConditionExpression=f"pk = :h AND {condition}",
                    ExpressionAttributeValues=values,
                    ScanIndexForward=forward,
                    Select="COUNT",
                    **args,
                )
            )
        return answers


def test_pages_end_where_moto_ends_them() -> None:
    stock = edge_pages(patched=False)
    assert stock == edge_pages(patched=True)
    assert ["LastEvaluatedKey" in page for page in stock] == [True, True, True, False, True]
    assert [page["Count"] for page in stock] == [6, 6, 6, 2, 5]


def test_the_lock_and_the_structures_come_off_again() -> None:
    from moto.dynamodb.models.table import Table

    stock_query = Table.query
    with dynamodb.installed():
        assert Table.query is not stock_query
    assert Table.query is stock_query


@pytest.fixture
def server() -> Iterator[Any]:
    with dynamodb.installed():
        port = free_port()
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        moto.start()
        client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
        create_local_tables(
            client, {"MetaTable": "tx-meta", "RowsTable": "tx-rows", "IdempotencyTable": "tx-idem"}
        )
        try:
            yield client
        finally:
            for table in ("tx-meta", "tx-rows", "tx-idem"):
                client.delete_table(TableName=table)
            moto.stop()


def test_concurrent_transactions_lose_no_write(server: Any) -> None:
    client = server
    rounds = 30
    committed = [0] * 4
    errors: list[str] = []

    def counter(name: str) -> dict[str, Any]:
        return {"pk": {"S": name}, "sk": {"S": "n"}}

    def transactions(thread: int) -> None:
        for i in range(rounds):
            gate = "attribute_exists(pk)" if i % 2 else "attribute_not_exists(pk)"  # odd rounds fail
            try:
                client.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": "tx-meta",
                                "Key": counter(f"tx{thread}"),
                                "UpdateExpression": "ADD n :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}},
                            }
                        },
                        {
                            "Put": {
                                "TableName": "tx-meta",
                                "Item": {**counter(f"tx{thread}-{i}"), "v": {"N": "1"}},
                            }
                        },
                        {
                            "ConditionCheck": {
                                "TableName": "tx-meta",
                                "Key": counter("missing"),
                                "ConditionExpression": gate,
                            }
                        },
                    ]
                )
                committed[thread] += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    errors.append(str(exc))

    def plain_writes(thread: int) -> None:
        for i in range(rounds):
            client.put_item(TableName="tx-meta", Item={**counter(f"put{thread}-{i}"), "v": {"N": str(i)}})
            client.update_item(
                TableName="tx-meta",
                Key=counter(f"upd{thread}"),
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )

    threads = [threading.Thread(target=transactions, args=(t,)) for t in range(4)]
    threads += [threading.Thread(target=plain_writes, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    items = {}
    for page in client.get_paginator("scan").paginate(TableName="tx-meta"):
        items.update({item["pk"]["S"]: item for item in page["Items"]})
    for thread in range(4):
        assert committed[thread] == rounds // 2
        assert int(items[f"tx{thread}"]["n"]["N"]) == committed[thread]
        assert {f"tx{thread}-{i}" for i in range(0, rounds, 2)} <= set(items)
        assert not {f"tx{thread}-{i}" for i in range(1, rounds, 2)} & set(items)  # failed: rolled back
        assert int(items[f"upd{thread}"]["n"]["N"]) == rounds
        assert {f"put{thread}-{i}" for i in range(rounds)} <= set(items)
