"""Numbers are exact end to end (SPEC §2, §4): what DynamoDB stores exactly is kept to the last
digit, what it cannot store is refused with 400 naming row, column and value, nothing rounds.

Bodies are sent as raw JSON text: Python's ``json.dumps`` of a float would round before the API
ever saw the number.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from datasets_core.store import workspaces

from .conftest import Client


def _dataset(client: Client, **extra: Any) -> str:
    response = client.post("/datasets", {"name": "numbers", **extra})
    assert response.status == 201, response.body
    return str(response.json()["data"]["id"])


def _insert_raw(client: Client, dataset_id: str, text: str) -> Any:
    return client.request("POST", f"/datasets/{dataset_id}/rows", body=text)


def _rows(client: Client, dataset_id: str, query: str = "") -> list[dict[str, Any]]:
    response = client.get(f"/datasets/{dataset_id}/rows", params=query)
    assert response.status == 200, response.body
    return list(response.json()["data"]["rows"])


def _raw_value(response: Any, column: str) -> str:
    """The number exactly as the response text wrote it (``json.loads`` would round it)."""
    text = response.body.decode()
    start = text.index(f'"{column}":') + len(column) + 3
    end = min(i for i in (text.find(",", start), text.find("}", start)) if i >= 0)
    return text[start:end]


@pytest.mark.parametrize(
    "text",
    [
        "12345678901234567890.5",
        "0.1",
        "-98765432109876543210987654321098765.43",  # 38 significant digits
        "1e125",
        "1E+50",
        "1e-130",
        "-0.000000000000000000000000000001",
    ],
)
def test_a_number_dynamodb_can_store_comes_back_exactly(client: Client, text: str) -> None:
    dataset_id = _dataset(client)
    inserted = _insert_raw(client, dataset_id, '{"amount": ' + text + "}")
    assert inserted.status == 201, inserted.body
    row_id = inserted.json()["data"]["rows"][0]["id"]
    fetched = client.get(f"/datasets/{dataset_id}/rows/{row_id}")
    assert fetched.status == 200, fetched.body
    assert Decimal(_raw_value(fetched, "amount")) == Decimal(text)
    assert Decimal(_raw_value(inserted, "amount")) == Decimal(text)
    # and the query path agrees, filters included
    listed = client.get(f"/datasets/{dataset_id}/rows", params={"amount": f"eq.{text}"})
    assert listed.status == 200, listed.body
    assert listed.json()["data"]["total"] == 1
    assert Decimal(_raw_value(listed, "amount")) == Decimal(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("123456789012345678901234567890123456789", "39 significant digits"),
        ("1.00000000000000000000000000000000000001", "39 significant digits"),
        ("1e126", "out of range"),
        ("-1e200", "out of range"),
        ("1e-131", "out of range"),
        ("1e-400", "out of range"),
    ],
)
def test_a_number_dynamodb_cannot_store_is_refused_naming_row_column_and_value(
    client: Client, text: str, why: str
) -> None:
    dataset_id = _dataset(client)
    response = _insert_raw(client, dataset_id, '[{"amount": 1}, {"amount": ' + text + ', "note": "x"}]')
    assert response.status == 400, response.body
    error = response.json()["error"]
    assert error["code"] == "invalid_body"
    assert error["details"]["row"] == 1 and error["details"]["column"] == "amount"
    assert why in error["message"]
    # nothing written: no row, no new column, no usage
    dataset = client.get(f"/datasets/{dataset_id}").json()["data"]
    assert dataset["row_count"] == 0 and dataset["columns"] == []
    assert workspaces.get("default")["row_count"] == 0


@pytest.mark.parametrize("text", ["1e50", "1e125", "12345678901234567890.5"])
def test_bulk_patch_sets_big_and_exact_numbers_and_the_dataset_stays_readable(
    client: Client, text: str
) -> None:
    dataset_id = _dataset(client)
    assert client.post(f"/datasets/{dataset_id}/rows", [{"n": i} for i in range(3)]).status == 201
    patched = client.request(
        "PATCH",
        f"/datasets/{dataset_id}/rows",
        body='{"where": {"n": {"gte": 1}}, "set": {"big": ' + text + "}}",
    )
    assert patched.status == 200, patched.body
    assert patched.json()["data"]["updated"] == 2
    values = [row["big"] for row in _rows(client, dataset_id, "order=n&select=big")]
    assert values[0] is None and all(value is not None for value in values[1:])
    first_set = client.get(f"/datasets/{dataset_id}/rows", params="big=not.is.null&limit=1")
    assert Decimal(_raw_value(first_set, "big")) == Decimal(text)


def test_bulk_patch_with_a_number_that_cannot_be_stored_changes_nothing(client: Client) -> None:
    dataset_id = _dataset(client)
    assert client.post(f"/datasets/{dataset_id}/rows", [{"n": i} for i in range(3)]).status == 201
    before = _rows(client, dataset_id)
    patched = client.request("PATCH", f"/datasets/{dataset_id}/rows", body='{"set": {"n": 1e130}}')
    assert patched.status == 400, patched.body
    assert patched.json()["error"]["code"] == "invalid_body"
    assert "n" in patched.json()["error"]["message"]
    assert _rows(client, dataset_id) == before


def test_number_filters_are_exact(client: Client) -> None:
    dataset_id = _dataset(client)
    body = (
        '[{"v": 12345678901234567890}, {"v": 12345678901234567891}, {"v": 0.30000000000000001}, {"v": 0.3}]'
    )
    assert _insert_raw(client, dataset_id, body).status == 201

    def ids(query: str) -> list[int]:
        return [row["row_index"] for row in _rows(client, dataset_id, query + "&order=row_index")]

    assert ids("v=eq.12345678901234567891") == [1]
    assert ids("v=gt.12345678901234567890") == [1]
    assert ids("v=eq.0.3") == [3]
    assert ids("v=gt.0.3&v=lt.1") == [2]
