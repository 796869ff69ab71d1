"""Aggregates, profile, export, versions and ``as_of`` (SPEC §5b, §6b, §8), checked against DuckDB
on the same rows: nulls, mixed case, unicode, exact decimals, datetimes, JSON.

Each check runs twice: with every row still in the change log (no snapshot yet) and after a
compaction folded them into a snapshot, with later writes in the delta.
"""

from __future__ import annotations

import csv
import io
import json
import random
from decimal import Context, Decimal, localcontext
from typing import Any
from urllib.parse import unquote, urlparse

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest

from datasets_core import values
from datasets_core.config import settings
from datasets_core.jobs import compaction
from datasets_core.store import datasets as dataset_store

from .conftest import Client, run_maintenance

COLUMNS = [
    {"name": "name", "type": "string"},
    {"name": "status", "type": "string", "indexed": True},
    {"name": "amount", "type": "number"},
    {"name": "flag", "type": "boolean"},
    {"name": "day", "type": "date"},
    {"name": "at", "type": "datetime"},
    {"name": "meta", "type": "json"},
]
NAMES = ["apple", "Apple", "APPLE", "banana", "Émile", "émile", "zoë", "Zoë", "ångström", "Ωmega", "", "b"]
STATUSES = ["active", "Active", "lost", "pending", "spam"]
DUCK_TYPES = {
    "name": "VARCHAR",
    "status": "VARCHAR",
    "amount": "DECIMAL(38,10)",
    "flag": "BOOLEAN",
    "day": "DATE",
    "at": "TIMESTAMPTZ",
    "meta": "VARCHAR",
}


def _random_row(rng: random.Random) -> dict[str, Any]:
    def maybe(value: Any) -> Any:
        return None if rng.random() < 0.15 else value

    return {
        "name": maybe(rng.choice(NAMES)),
        "status": maybe(rng.choice(STATUSES)),
        "amount": maybe(
            rng.choice([Decimal(rng.randint(-5000, 5000)) / 4, rng.randint(-9, 9), Decimal("0.1")])
        ),
        "flag": maybe(rng.random() < 0.5),
        "day": maybe(f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"),
        "at": maybe(f"2024-05-0{rng.randint(1, 9)}T1{rng.randint(0, 9)}:00:0{rng.randint(0, 9)}.5Z"),
        "meta": maybe({"k": rng.randint(0, 3)}),
    }


def _post_rows(client: Client, dataset_id: str, rows: list[dict[str, Any]]) -> None:
    import simplejson

    response = client.request(
        "POST", f"/datasets/{dataset_id}/rows", body=simplejson.dumps({"rows": rows}, use_decimal=True)
    )
    assert response.status == 201, response.body


def _json(response: Any) -> Any:
    """A response body with its numbers exact (as the API writes them)."""
    return json.loads(response.body, parse_float=Decimal)


def _all_rows(client: Client, dataset_id: str, *params: tuple[str, str]) -> list[dict[str, Any]]:
    """Every row of a query, page after page by cursor (as a user walks it)."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page_params = [("limit", "1000"), *params] + ([("cursor", cursor)] if cursor else [])
        response = client.get(f"/datasets/{dataset_id}/rows", params=page_params)
        assert response.status == 200, response.body
        answer = _json(response)
        rows += answer["data"]["rows"]
        cursor = answer["meta"]["next_cursor"]
        if not cursor:
            return rows


@pytest.fixture
def dataset(client: Client) -> str:
    created = client.post("/datasets", {"name": "Sales", "columns": COLUMNS})
    assert created.status == 201, created.body
    dataset_id = str(created.json()["data"]["id"])
    rng = random.Random(7)
    _post_rows(client, dataset_id, [_random_row(rng) for _ in range(400)])
    return dataset_id


def _compact(client: Client, dataset_id: str) -> None:
    found = dataset_store.get("default", dataset_id)
    assert compaction.request(found)
    run_maintenance()


def _then_change(client: Client, dataset_id: str) -> None:
    """Writes after the snapshot: an insert, an update and a delete the delta must carry."""
    rng = random.Random(11)
    _post_rows(client, dataset_id, [_random_row(rng) for _ in range(30)])
    rows = _all_rows(client, dataset_id)
    changed = client.patch(
        f"/datasets/{dataset_id}/rows/{rows[3]['id']}", {"set": {"name": "APPLE", "amount": 7}}
    )
    assert changed.status == 200, changed.body
    gone = client.delete(f"/datasets/{dataset_id}/rows/{rows[5]['id']}")
    assert gone.status == 200, gone.body


@pytest.fixture(params=["log only", "snapshot + delta"])
def served(request: pytest.FixtureRequest, client: Client, dataset: str) -> str:
    if request.param == "snapshot + delta":
        _compact(client, dataset)
        _then_change(client, dataset)
        meta = client.get(f"/datasets/{dataset}/rows", params={"search": "a", "limit": "1"}).json()["meta"]
        assert meta["replica"]["version"] >= 1 and meta["replica"]["delta_rows"] > 0, meta
    return dataset


def _duck(rows: list[dict[str, Any]]) -> duckdb.DuckDBPyConnection:
    """The same rows in DuckDB, typed as the dataset declares."""
    connection = duckdb.connect()
    columns = ", ".join(f'"{name}" {kind}' for name, kind in DUCK_TYPES.items())
    connection.execute(f"CREATE TABLE t (row_index BIGINT, {columns})")
    connection.executemany(
        f"INSERT INTO t VALUES (?, {', '.join('?' for _ in DUCK_TYPES)})",
        [
            [row["row_index"]]
            + [
                json.dumps(row[name], separators=(",", ":"))
                if name == "meta" and row[name] is not None
                else values.parse_datetime(row[name])
                if name == "at" and row[name] is not None
                else row[name]
                for name in DUCK_TYPES
            ]
            for row in rows
        ],
    )
    return connection


def _order_text(column: str) -> str:
    """DuckDB's expression for the API's text order: case-insensitive, then exact."""
    return f'lower("{column}"), "{column}"'


# --- aggregates -------------------------------------------------------------------------------
def test_aggregates_match_duckdb(client: Client, served: str) -> None:
    rows = _all_rows(client, served)
    duck = _duck(rows)
    response = client.get(
        f"/datasets/{served}/rows",
        params=[
            (
                "select",
                "status,flag,n:count(),total:amount.sum(),amount.avg(),low:amount.min(),"
                "high:amount.max(),names:name.count(distinct),first:name.min()",
            ),
            ("amount", "not.is.null"),
            ("order", "total.desc,status,flag"),
            ("limit", "1000"),
        ],
    )
    assert response.status == 200, response.body
    answer = _json(response)
    assert answer["meta"]["plan"] == "replica"
    expected = duck.execute(
        """SELECT status, flag, count(*), sum(amount), avg(amount), min(amount), max(amount),
                  count(DISTINCT name), (SELECT n FROM (SELECT name AS n FROM t t2
                      WHERE t2.status IS NOT DISTINCT FROM t.status AND t2.flag IS NOT DISTINCT FROM t.flag
                      AND t2.amount IS NOT NULL AND t2.name IS NOT NULL ORDER BY lower(n), n LIMIT 1))
           FROM t WHERE amount IS NOT NULL GROUP BY status, flag
           ORDER BY sum(amount) DESC NULLS LAST, lower(status) NULLS LAST, status, flag NULLS LAST"""
    ).fetchall()
    got = answer["data"]["rows"]
    assert answer["data"]["total"] == len(expected)
    assert [(r["status"], r["flag"], r["n"]) for r in got] == [(e[0], e[1], e[2]) for e in expected]
    for row, want in zip(got, expected, strict=True):
        assert row["total"] == want[3]
        with localcontext(Context(prec=38)):
            assert row["avg"] == want[3] / want[2]  # DuckDB's avg is a double: from its exact sum
        assert row["low"] == want[5] and row["high"] == want[6]
        assert row["names"] == want[7]
        assert row["first"] == want[8]


# --- profile ------------------------------------------------------------------------------------
def test_profile_matches_duckdb(client: Client, served: str) -> None:
    rows = _all_rows(client, served)
    duck = _duck(rows)
    response = client.get(f"/datasets/{served}/profile")
    assert response.status == 200, response.body
    profile = _json(response)["data"]
    assert profile["row_count"] == len(rows)
    assert response.json()["meta"]["plan"] == "replica"
    by_name = {column["name"]: column for column in profile["columns"]}
    assert list(by_name) == [column["name"] for column in COLUMNS]
    for name, kind in DUCK_TYPES.items():
        got = by_name[name]
        count, nulls, distinct = duck.execute(
            f'SELECT count("{name}"), count(*) - count("{name}"), count(DISTINCT "{name}") FROM t'
        ).fetchone()
        assert (got["count"], got["nulls"], got["distinct"]) == (count, nulls, distinct), name
        assert float(got["null_rate"]) == round(nulls / len(rows), 6)
        order = _order_text(name) if kind == "VARCHAR" and name != "meta" else f'"{name}"'
        if name != "meta":
            present = f'FROM t WHERE "{name}" IS NOT NULL'
            descending = order.replace(", ", " DESC, ") + " DESC"
            low, high = duck.execute(
                f'SELECT (SELECT "{name}" {present} ORDER BY {order} LIMIT 1), '
                f'(SELECT "{name}" {present} ORDER BY {descending} LIMIT 1)'
            ).fetchone()
            assert _same(got["min"], low, kind) and _same(got["max"], high, kind), (name, got, low, high)
            top = duck.execute(
                f'SELECT "{name}", count(*) AS c FROM t WHERE "{name}" IS NOT NULL GROUP BY "{name}" '
                f"ORDER BY c DESC, {order} LIMIT 10"
            ).fetchall()
            assert [(_plain(t["value"], kind), t["count"]) for t in got["top"]] == [
                (_plain(value, kind), c) for value, c in top
            ], name
    amount = by_name["amount"]
    total, count = duck.execute("SELECT sum(amount), count(amount) FROM t").fetchone()
    assert amount["sum"] == total
    with localcontext(Context(prec=38)):
        assert amount["mean"] == total / count


def _plain(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "TIMESTAMPTZ":
        return values.parse_datetime(value) if isinstance(value, str) else value
    if kind == "DATE":
        return str(value)
    if kind.startswith("DECIMAL"):
        return Decimal(str(value))
    return value


def _same(ours: Any, theirs: Any, kind: str) -> bool:
    return _plain(ours, kind) == _plain(theirs, kind)


def test_profile_with_filters_and_refusals(client: Client, dataset: str) -> None:
    filtered = client.get(f"/datasets/{dataset}/profile", params={"status": "eq.active"}).json()["data"]
    rows = _all_rows(client, dataset, ("status", "eq.active"))
    assert filtered["row_count"] == len(rows)
    status = next(c for c in filtered["columns"] if c["name"] == "status")
    assert status["top"] == [{"value": "active", "count": len(rows)}] and status["distinct"] == 1
    for bad in ({"limit": "5"}, {"order": "name"}, {"nope": "eq.1"}, {"as_of": "99"}):
        refused = client.get(f"/datasets/{dataset}/profile", params=bad)
        assert refused.status in (400, 404), (bad, refused.body)
        assert refused.json()["error"]["code"] in ("invalid_query", "version_not_found")


# --- export ------------------------------------------------------------------------------------
def _download(url: str) -> bytes:
    """The exported object (moto serves no HTTP here: read the key the presigned URL names)."""
    parsed = urlparse(url)
    path = unquote(parsed.path).lstrip("/")
    bucket = settings().replica_bucket
    key = path[len(bucket) + 1 :] if path.startswith(bucket + "/") else path
    return bytes(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


QUERY = [("amount", "gte.-200"), ("order", "name.desc,amount"), ("select", "name,amount,at,meta,flag")]


def _export(
    client: Client, dataset_id: str, file_format: str, params: list[tuple[str, str]]
) -> tuple[dict[str, Any], bytes]:
    response = client.get(f"/datasets/{dataset_id}/export", params=[("format", file_format), *params])
    assert response.status == 200, response.body
    data = response.json()["data"]
    body = _download(data["url"])
    assert data["bytes"] == len(body) and data["format"] == file_format
    return data, body


def test_export_csv_is_the_query_rows_in_order(client: Client, served: str) -> None:
    expected = _all_rows(client, served, *QUERY)
    data, body = _export(client, served, "csv", QUERY)
    assert data["rows"] == len(expected)
    lines = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert lines[0] == ["id", "name", "amount", "at", "meta", "flag"]
    assert len(lines) == len(expected) + 1
    for line, row in zip(lines[1:], expected, strict=True):
        assert line[0] == row["id"]
        assert line[1] == ("" if row["name"] is None else row["name"])
        assert (Decimal(line[2]) if line[2] else None) == (
            None if row["amount"] is None else Decimal(str(row["amount"]))
        )
        assert line[3] == (row["at"] or "")
        assert (json.loads(line[4]) if line[4] else None) == row["meta"]
        assert line[5] == ("" if row["flag"] is None else str(row["flag"]).lower())
    # Null and the empty text stay apart (RFC 4180 quoting), as another engine reads them.
    duck = duckdb.connect()
    duck.execute(
        "CREATE TABLE f AS SELECT * FROM "
        "read_csv(?, all_varchar=true, header=true, allow_quoted_nulls=false)",
        [_temp(body)],
    )
    names = [row[0] for row in duck.execute("SELECT name FROM f").fetchall()]
    assert names == [row["name"] for row in expected]


def _temp(body: bytes, suffix: str = ".csv") -> str:
    import tempfile

    with tempfile.NamedTemporaryFile(delete=False, suffix=suffix) as handle:
        handle.write(body)
    return handle.name


def test_export_jsonl_and_parquet(client: Client, served: str) -> None:
    expected = _all_rows(client, served, *QUERY)
    _, body = _export(client, served, "jsonl", QUERY)
    import simplejson

    lines = [simplejson.loads(line, use_decimal=True) for line in body.decode("utf-8").splitlines()]
    assert lines == [
        simplejson.loads(simplejson.dumps(row, use_decimal=True), use_decimal=True) for row in expected
    ]

    _, body = _export(client, served, "parquet", QUERY)
    table = pq.read_table(io.BytesIO(body))
    assert table.column_names == ["id", "name", "amount", "at", "meta", "flag"]
    assert table.column("id").to_pylist() == [row["id"] for row in expected]
    assert [None if v is None else Decimal(v) for v in table.column("amount").to_pylist()] == [
        None if row["amount"] is None else Decimal(str(row["amount"])) for row in expected
    ]
    # Another engine reads it with the same rows, in the same order.
    duck = duckdb.connect()
    read = duck.execute("SELECT id FROM read_parquet(?)", [_temp(body, ".parquet")]).fetchall()
    assert [row[0] for row in read] == [row["id"] for row in expected]


def test_export_whole_rows_and_refusals(client: Client, dataset: str) -> None:
    expected = _all_rows(client, dataset)
    _, body = _export(client, dataset, "csv", [])
    lines = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert lines[0] == ["id", "row_index", "created_at", "updated_at"] + [c["name"] for c in COLUMNS]
    assert [line[0] for line in lines[1:]] == [row["id"] for row in expected]
    for params in (
        [("format", "xlsx")],
        [("limit", "10")],
        [("cursor", "abc")],
        [("select", "status,count()")],
        [("amount", "gt.abc")],
    ):
        refused = client.get(f"/datasets/{dataset}/export", params=params)
        assert refused.status == 400, (params, refused.body)
        assert refused.json()["error"]["code"] == "invalid_query"


# --- versions and as_of ------------------------------------------------------------------------
def test_versions_and_as_of_read_a_kept_version_exactly(client: Client, dataset: str) -> None:
    _compact(client, dataset)
    before = _all_rows(client, dataset, ("order", "amount.desc"))
    before_profile = client.get(f"/datasets/{dataset}/profile").json()["data"]
    listed = client.get(f"/datasets/{dataset}/versions").json()["data"]
    assert (
        [v["version"] for v in listed] == [1] and listed[0]["current"] and listed[0]["cause"] == "compaction"
    )
    assert listed[0]["row_count"] == len(before)

    _then_change(client, dataset)
    _compact(client, dataset)
    listed = client.get(f"/datasets/{dataset}/versions").json()["data"]
    assert [(v["version"], v["current"]) for v in listed] == [(2, True), (1, False)]

    # as_of=1 answers exactly what the dataset held then: rows, profile, export, aggregates.
    assert _all_rows(client, dataset, ("order", "amount.desc"), ("as_of", "1")) == before
    assert _all_rows(client, dataset, ("order", "amount.desc")) != before
    assert client.get(f"/datasets/{dataset}/profile", params={"as_of": "1"}).json()["data"] == before_profile
    _, body = _export(client, dataset, "csv", [("as_of", "1"), ("order", "amount.desc")])
    assert [line[0] for line in list(csv.reader(io.StringIO(body.decode())))[1:]] == [r["id"] for r in before]
    counted = client.get(f"/datasets/{dataset}/rows", params={"select": "n:count()", "as_of": "1"})
    assert counted.json()["data"]["rows"] == [{"n": len(before)}]

    missing = client.get(f"/datasets/{dataset}/rows", params={"as_of": "9"})
    assert missing.status == 404 and missing.json()["error"]["code"] == "version_not_found"


def test_versions_past_retention_are_removed(
    client: Client, dataset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _compact(client, dataset)
    _then_change(client, dataset)
    monkeypatch.setenv("VERSION_RETENTION_DAYS", "0")
    settings.cache_clear()
    _compact(client, dataset)
    listed = client.get(f"/datasets/{dataset}/versions").json()["data"]
    assert [v["version"] for v in listed] == [2]
    gone = client.get(f"/datasets/{dataset}/rows", params={"as_of": "1"})
    assert gone.status == 404
    prefix = f"{settings().replica_prefix}ws=default/ds={dataset}/v=1/"
    assert "Contents" not in boto3.client("s3").list_objects_v2(
        Bucket=settings().replica_bucket, Prefix=prefix
    )


def test_loading_rows_through_the_api_queues_their_snapshot(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inserts that carry the rows added since the snapshot past the threshold queue a
    compaction, so a query after a bulk load reads a snapshot, not every row from the log."""
    monkeypatch.setenv("COMPACT_AFTER_ROWS", "100")
    settings.cache_clear()
    created = client.post("/datasets", {"name": "Loaded", "columns": COLUMNS})
    dataset_id = created.json()["data"]["id"]
    rng = random.Random(3)
    _post_rows(client, dataset_id, [_random_row(rng) for _ in range(60)])
    assert run_maintenance() == []  # 60 < 100: nothing to fold yet
    _post_rows(client, dataset_id, [_random_row(rng) for _ in range(60)])
    assert run_maintenance() == ["done"]
    meta = client.get(f"/datasets/{dataset_id}/rows", params={"search": "a"}).json()["meta"]
    assert meta["replica"] == {"version": 1, "snapshot_rows": 120, "delta_rows": 0}
    assert meta["items_read"] == 0


def test_a_compaction_with_nothing_behind_its_cut_waits_for_it_and_then_folds(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compaction that runs before the rows that asked for it are behind the cut (they were
    written within the cut margin) publishes nothing and runs again once the margin has
    passed. It once published an empty version, after which every compaction of the dataset
    failed and every row stayed in the delta for good."""
    from datasets_core.jobs import engine

    created = client.post("/datasets", {"name": "Early", "columns": COLUMNS})
    dataset_id = created.json()["data"]["id"]
    _post_rows(client, dataset_id, [_random_row(random.Random(5)) for _ in range(50)])
    monkeypatch.setenv("CUT_MARGIN_SECONDS", "3600")  # every row is newer than the cut
    settings.cache_clear()
    assert compaction.request(dataset_store.get("default", dataset_id))
    later: list[tuple[str, str, int]] = []
    real_enqueue = engine.enqueue
    monkeypatch.setattr(
        engine, "enqueue", lambda ws, job, *, delay_seconds=0: later.append((ws, job, delay_seconds))
    )
    assert run_maintenance() == ["done"]  # finds nothing behind its cut: asks to run again later
    assert client.get(f"/datasets/{dataset_id}/versions").json()["data"] == []
    [(workspace, job_id, delay)] = later
    assert delay == 3600  # the cut margin (SQS holds a message at most 900 s; the job asks again)
    real_enqueue(workspace, job_id)  # the delayed delivery
    monkeypatch.setenv("CUT_MARGIN_SECONDS", "0")  # the margin has passed
    settings.cache_clear()
    assert run_maintenance() == ["done"]  # the delayed delivery (delivered at once here)
    [version] = client.get(f"/datasets/{dataset_id}/versions").json()["data"]
    assert version["row_count"] == 50 and version["current"]
    meta = client.get(f"/datasets/{dataset_id}/rows", params={"search": "a"}).json()["meta"]
    assert meta["replica"] == {"version": version["version"], "snapshot_rows": 50, "delta_rows": 0}


def test_inserts_ask_for_their_compaction_once_the_cut_margin_has_passed(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasets_core.jobs import engine

    monkeypatch.setenv("COMPACT_AFTER_ROWS", "10")
    monkeypatch.setenv("CUT_MARGIN_SECONDS", "45")
    settings.cache_clear()
    delays: list[int] = []
    monkeypatch.setattr(engine, "enqueue", lambda _ws, _job, *, delay_seconds=0: delays.append(delay_seconds))
    created = client.post("/datasets", {"name": "Later", "columns": COLUMNS})
    _post_rows(client, created.json()["data"]["id"], [_random_row(random.Random(6)) for _ in range(12)])
    assert delays == [45]


def test_concurrent_inserts_that_cross_the_threshold_together_still_ask_for_a_compaction(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two loaders read the dataset (no rows yet) before either has written: their 6 + 6 rows
    cross the 10-row threshold together, and exactly one of them asks for the compaction."""
    from datasets_core.jobs import engine
    from tests.iam import recorder

    monkeypatch.setenv("COMPACT_AFTER_ROWS", "10")
    monkeypatch.setenv("CUT_MARGIN_SECONDS", "45")
    settings.cache_clear()
    asked: list[int] = []
    monkeypatch.setattr(engine, "enqueue", lambda _ws, _job, *, delay_seconds=0: asked.append(delay_seconds))
    dataset_id = client.post("/datasets", {"name": "Two loaders", "columns": COLUMNS}).json()["data"]["id"]
    rng = random.Random(9)
    first, second = [_random_row(rng) for _ in range(6)], [_random_row(rng) for _ in range(6)]
    allocate = dataset_store.allocate_row_indexes
    raced: list[int] = []

    def racing(*args: Any, **kwargs: Any) -> Any:
        if not raced:  # the first insert has read the dataset; the other loader writes now
            raced.append(1)
            with recorder.as_the_test():
                _post_rows(client, dataset_id, second)
        return allocate(*args, **kwargs)

    monkeypatch.setattr(dataset_store, "allocate_row_indexes", racing)
    _post_rows(client, dataset_id, first)
    assert raced and client.get(f"/datasets/{dataset_id}").json()["data"]["row_count"] == 12
    assert asked == [45]


def test_a_compaction_outrun_by_a_load_queues_the_next_one(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows loaded after a compaction's cut, past the threshold, get a compaction of their own
    without waiting for a query to read them all from the change log."""
    from datasets_core.store import changelog

    monkeypatch.setenv("COMPACT_AFTER_ROWS", "10")
    settings.cache_clear()
    created = client.post("/datasets", {"name": "Outrun", "columns": COLUMNS})
    dataset_id = created.json()["data"]["id"]
    rng = random.Random(8)
    _post_rows(client, dataset_id, [_random_row(rng) for _ in range(15)])
    cut = changelog.cut_position()  # the first compaction's cut: after these 15 rows only
    _post_rows(client, dataset_id, [_random_row(rng) for _ in range(15)])
    real = changelog.cut_position
    cuts = iter([cut])
    monkeypatch.setattr(compaction.changelog, "cut_position", lambda: next(cuts, None) or real())
    # The first compaction folds 15 rows and asks for the next, which folds the other 15.
    assert run_maintenance() == ["done", "done"]
    versions = client.get(f"/datasets/{dataset_id}/versions").json()["data"]
    assert sorted(version["row_count"] for version in versions) == [15, 30]
    meta = client.get(f"/datasets/{dataset_id}/rows", params={"search": "a"}).json()["meta"]
    assert meta["replica"]["snapshot_rows"] == 30 and meta["replica"]["delta_rows"] == 0
