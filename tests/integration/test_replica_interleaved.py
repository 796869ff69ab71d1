"""The replica stays exact while writes, compactions and compactions cut short interleave
(SPEC §6b): after every step, replica-served queries agree with the independent reference
model (reference_impl) on rows, order and totals.

Each sequence mixes inserts, single-row updates and deletes, bulk PATCH/DELETE by ``where``,
full compactions, and compactions run one step at a time (each run stopping at its deadline
and queueing its continuation) with writes and queries between the steps, and a compaction
run killed mid-way (no cleanup, lease left to lapse) that a redelivery finishes.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import simplejson

from datasets_core.jobs import compaction
from datasets_core.jobs import engine as job_engine
from datasets_core.store import datasets as dataset_store

from . import reference_impl as ref
from .conftest import Client, maintenance_round, run_maintenance

TYPES = {"name": "string", "amount": "number", "flag": "boolean", "day": "date"}
NAMES = ["a", "A", "b", "ß", "ss", "é", "É", None]
AMOUNTS = [-2.5, 0, 1, 10, 75, 1200, None]
DAYS = ["2024-01-01", "2023-12-31", "2024-02-29", None]


def _value(rng: random.Random, column: str) -> Any:
    pool = {"name": NAMES, "amount": AMOUNTS, "flag": [True, False, None], "day": DAYS}[column]
    return rng.choice(pool)


def _row(rng: random.Random) -> dict[str, Any]:
    return {column: _value(rng, column) for column in TYPES}


class Sequence:
    """One dataset driven through the API, mirrored in the reference model."""

    def __init__(self, client: Client, rng: random.Random) -> None:
        self.client = client
        self.rng = rng
        columns = [{"name": name, "type": kind} for name, kind in TYPES.items()]
        created = client.post("/datasets", {"name": f"Interleaved {rng.random()}", "columns": columns})
        assert created.status == 201, created.body
        self.id = created.json()["data"]["id"]
        self.model = ref.Model(dict(TYPES), [])

    def path(self, suffix: str = "") -> str:
        return f"/datasets/{self.id}{suffix}"

    def _canonical(self, row: dict[str, Any]) -> dict[str, Any]:
        return {column: ref.canonical(row.get(column), kind) for column, kind in TYPES.items()}

    # --- writes --------------------------------------------------------------------------------
    def insert(self) -> None:
        rows = [_row(self.rng) for _ in range(self.rng.randint(1, 25))]
        response = self.client.request("POST", self.path("/rows"), body=simplejson.dumps({"rows": rows}))
        assert response.status == 201, response.body
        for sent, stored in zip(rows, response.json()["data"]["rows"], strict=True):
            self.model.rows.append(
                {"id": stored["id"], "row_index": stored["row_index"], **self._canonical(sent)}
            )

    def update_one(self) -> None:
        if not self.model.rows:
            return
        row = self.rng.choice(self.model.rows)
        column = self.rng.choice(list(TYPES))
        value = _value(self.rng, column)
        response = self.client.patch(self.path(f"/rows/{row['id']}"), {"set": {column: value}})
        assert response.status == 200, response.body
        row[column] = ref.canonical(value, TYPES[column])

    def delete_one(self) -> None:
        if not self.model.rows:
            return
        row = self.rng.choice(self.model.rows)
        response = self.client.delete(self.path(f"/rows/{row['id']}"))
        assert response.status == 200, response.body
        self.model.rows.remove(row)

    def update_where(self) -> None:
        name = self.rng.choice([n for n in NAMES if n is not None])
        amount = self.rng.choice(AMOUNTS)
        response = self.client.patch(self.path("/rows"), {"where": {"name": name}, "set": {"amount": amount}})
        assert response.status == 200, response.body
        touched = [row for row in self.model.rows if row["name"] == name]
        for row in touched:
            row["amount"] = ref.canonical(amount, "number")
        assert response.json()["data"]["updated"] == len(touched)

    def delete_where(self) -> None:
        day = self.rng.choice([d for d in DAYS if d is not None])
        response = self.client.delete(self.path("/rows"), {"where": {"day": day, "flag": True}})
        assert response.status == 200, response.body
        gone = [row for row in self.model.rows if row["day"] == day and row["flag"] is True]
        for row in gone:
            self.model.rows.remove(row)
        assert response.json()["data"]["deleted"] == len(gone)

    # --- compaction ---------------------------------------------------------------------------------
    def dataset(self) -> Any:
        return dataset_store.get("default", self.id)

    def compact(self) -> None:
        compaction.request(self.dataset())
        run_maintenance()

    def compact_step_by_step(self) -> None:
        """A compaction whose runs each stop after one step, with writes and checks between."""
        compaction.request(self.dataset())
        for _ in range(200):
            if not maintenance_round(remaining_ms=1_000):
                return
            self.check()
            if self.rng.random() < 0.5:
                self.rng.choice([self.insert, self.update_one, self.delete_one])()
        raise AssertionError("compaction did not finish")

    def compact_killed_then_redelivered(self) -> None:
        """A run killed while writing a part (no release: its lease must lapse), then redelivered."""
        self.insert()  # something to fold: a compaction with nothing behind its cut does nothing
        dataset = self.dataset()
        base = dataset.replica.version if dataset.replica else 0
        job_id = f"compact:{dataset.id}:{dataset.generation}:{base}"
        assert compaction.request(dataset)
        original = compaction._upload
        calls = {"n": 0}

        def killed(table: Any, key: str) -> int:
            calls["n"] += 1
            if calls["n"] == 2:
                raise KeyboardInterrupt  # not an Exception: the run stops dead, like a killed Lambda
            return original(table, key)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(compaction, "_upload", killed)
            with pytest.raises(KeyboardInterrupt):
                maintenance_round()
        assert calls["n"] == 2
        self.check()
        # SQS redelivers the message; the dead run's lease blocks it until the lease lapses.
        job_engine.enqueue("default", job_id)
        assert maintenance_round() == ["done"] and job_engine.get("default", job_id)["status"] == "running"
        later = job_engine.time.time() + 3_600
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(job_engine.time, "time", lambda: later)
            job_engine.enqueue("default", job_id)
            run_maintenance()
        assert job_engine.get("default", job_id)["status"] == "succeeded"
        self.check()

    # --- checks -------------------------------------------------------------------------------------
    def queries(self) -> list[ref.Query]:
        rng = self.rng
        name = rng.choice([n for n in NAMES if n is not None])
        return [
            ref.Query(search=rng.choice(["a", "s", "é", "1", "2024-0"])),
            ref.Query(filters=[ref.Filter("name", "neq", name, name)], order=[ref.Order("amount", True)]),
            ref.Query(
                filters=[ref.Filter("amount", "gt", 0, "0")],
                order=[ref.Order("name"), ref.Order("day", True)],
                limit=7,
                offset=rng.randint(0, 5),
            ),
            ref.Query(
                filters=[ref.Filter("name", "contains", "s", "s", negated=True)], order=[ref.Order("flag")]
            ),
        ]

    def check(self) -> None:
        for query in self.queries():
            response = self.client.request("GET", self.path("/rows"), params=query.query_string())
            assert response.status == 200, response.body
            answer = response.json()
            assert answer["meta"]["plan"].startswith("replica"), answer["meta"]
            expected = self.model.run(query)
            got_ids = [row["id"] for row in answer["data"]["rows"]]
            assert got_ids == [row["id"] for row in expected["rows"]], (query.params(), answer["meta"])
            assert answer["data"]["total"] == expected["total"], query.params()
        distinct = self.client.get(self.path("/rows"), params={"distinct": "name", "limit": "1000"}).json()
        assert distinct["data"]["total_unique"] == len(self.model.distinct(self.model.rows, "name"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replica_answers_stay_exact_through_writes_and_compactions(
    client: Client, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compaction, "CHUNK_ROWS", 16)  # several parts per compaction
    rng = random.Random(seed)
    sequence = Sequence(client, rng)
    sequence.insert()
    steps = [
        sequence.insert,
        sequence.insert,
        sequence.update_one,
        sequence.update_one,
        sequence.delete_one,
        sequence.update_where,
        sequence.delete_where,
        sequence.compact,
        sequence.compact_step_by_step,
    ]
    for _ in range(24):
        rng.choice(steps)()
        sequence.check()
    sequence.compact_step_by_step()
    sequence.check()
    sequence.compact_killed_then_redelivered()
    versions = client.get(sequence.path("/versions")).json()["data"]
    assert versions[0]["current"] and versions[0]["row_count"] == len(sequence.model.rows)
