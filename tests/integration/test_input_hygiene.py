"""Input hygiene: values with stray whitespace or control characters are refused, not trimmed;
dataset and column names are stored in Unicode NFC and may not hold invisible characters, so
two names that look the same cannot both exist."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from .conftest import Client
from .import_support import drop, run_handler

NFC_CAFE = "Caf\u00e9"  # é as one code point
NFD_CAFE = "Cafe\u0301"  # e + combining acute accent: looks identical
INVISIBLE = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


@pytest.fixture
def dataset(client: Client) -> str:
    columns = [
        {"name": "name", "type": "string", "indexed": True},
        {"name": "amount", "type": "number"},
        {"name": "day", "type": "date"},
    ]
    created = client.post("/datasets", {"name": "hygiene", "columns": columns})
    assert created.status == 201, created.body
    dataset_id = str(created.json()["data"]["id"])
    rows = [{"name": " padded", "amount": 5, "day": "2024-01-01"}, {"name": "padded", "amount": 6}]
    assert client.post(f"/datasets/{dataset_id}/rows", {"rows": rows}).status == 201
    return dataset_id


def _refused(response: Any, parameter: str) -> dict[str, Any]:
    assert response.status == 400, response.body
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "invalid_query", error
    assert error["details"].get("parameter") == parameter or error["details"].get("column") == parameter
    return error


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=5%0A", "limit"),
        ("limit=%205", "limit"),
        ("limit=5%20", "limit"),
        ("offset=1%09", "offset"),
        ("offset=%0D1", "offset"),
        ("count=none%0A", "count"),
        ("as_of=1%0A", "as_of"),
        ("select=name%0A", "select"),
        ("order=name.desc%0A", "order"),
        ("distinct=name%09", "distinct"),
        ("amount=eq.5%0A", "amount"),
        ("amount=gt.%205", "amount"),
        ("day=eq.2024-01-01%0A", "day"),
        ("amount=in.(5,%206)", "amount"),
    ],
)
def test_stray_whitespace_and_control_characters_are_refused(
    client: Client, dataset: str, query: str, parameter: str
) -> None:
    _refused(client.get(f"/datasets/{dataset}/rows", params=query), parameter)


def test_a_space_before_a_number_is_refused_with_the_plus_sign_hint(client: Client, dataset: str) -> None:
    error = _refused(client.get(f"/datasets/{dataset}/rows", params="amount=eq.+5"), "amount")
    assert "%2B" in error["message"]


def test_text_values_keep_their_spaces_exactly(client: Client, dataset: str) -> None:
    for query, expected in (("name=eq.%20padded", [" padded"]), ("name=eq.padded", ["padded"])):
        response = client.get(f"/datasets/{dataset}/rows", params=query)
        assert response.status == 200, response.body
        assert [row["name"] for row in response.json()["data"]["rows"]] == expected


def test_limit_and_offset_are_also_strict_on_other_list_endpoints(client: Client, dataset: str) -> None:
    _refused(client.get("/datasets", params="limit=5%0A"), "limit")
    row_id = client.get(f"/datasets/{dataset}/rows").json()["data"]["rows"][0]["id"]
    _refused(client.get(f"/datasets/{dataset}/rows/{row_id}/changes", params="offset=0%0A"), "offset")


def test_a_datetime_with_a_trailing_newline_is_not_a_datetime(client: Client, dataset: str) -> None:
    response = client.post(f"/datasets/{dataset}/rows", {"seen": "2024-05-01T12:00:00Z\n"})
    assert response.status == 201, response.body
    # a newline makes it text: the new column is a string column, not a datetime one
    columns = client.get(f"/datasets/{dataset}").json()["data"]["columns"]
    assert {c["name"]: c["type"] for c in columns}["seen"] == "string"
    typed = client.post("/datasets", {"name": "typed", "columns": [{"name": "at", "type": "datetime"}]})
    refused = client.post(f"/datasets/{typed.json()['data']['id']}/rows", {"at": "2024-05-01T12:00:00Z\n"})
    assert refused.status == 400 and refused.json()["error"]["code"] == "invalid_body", refused.body


# --- names ---------------------------------------------------------------------------------------
def test_dataset_names_are_stored_in_nfc_and_look_alikes_collide(client: Client) -> None:
    created = client.post("/datasets", {"name": NFD_CAFE})
    assert created.status == 201, created.body
    assert created.json()["data"]["name"] == NFC_CAFE
    again = client.post("/datasets", {"name": NFC_CAFE})
    assert again.status == 409 and again.json()["error"]["code"] == "dataset_name_taken", again.body
    other = client.post("/datasets", {"name": "other"}).json()["data"]["id"]
    renamed = client.patch(f"/datasets/{other}", {"name": NFD_CAFE.upper()})
    assert renamed.status == 409, renamed.body
    found = client.get("/datasets", params={"q": NFD_CAFE}).json()["data"]
    assert [item["name"] for item in found] == [NFC_CAFE]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_invisible_characters_are_refused_in_dataset_names(client: Client, char: str) -> None:
    assert client.post("/datasets", {"name": "leads"}).status == 201
    for name in (f"leads{char}", f"le{char}ads", f"{char}"):
        response = client.post("/datasets", {"name": name})
        assert response.status == 400, (name, response.body)
        assert response.json()["error"]["code"] == "invalid_body"
    existing = client.get("/datasets").json()["data"][0]["id"]
    renamed = client.patch(f"/datasets/{existing}", {"name": f"leads{char}"})
    assert renamed.status == 400, renamed.body
    assert [item["name"] for item in client.get("/datasets").json()["data"]] == ["leads"]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_invisible_characters_are_refused_in_column_names(client: Client, char: str) -> None:
    declared = client.post(
        "/datasets", {"name": "cols", "columns": [{"name": f"email{char}", "type": "string"}]}
    )
    assert declared.status == 400, declared.body
    created = client.post("/datasets", {"name": "cols", "columns": [{"name": "email", "type": "string"}]})
    dataset_id = created.json()["data"]["id"]
    inserted = client.post(f"/datasets/{dataset_id}/rows", {f"email{char}": "a@b.c"})
    assert inserted.status == 400 and inserted.json()["error"]["code"] == "invalid_body", inserted.body
    bulk = client.patch(f"/datasets/{dataset_id}/rows", {"set": {f"email{char}": "x"}})
    assert bulk.status == 400, bulk.body
    indexed = client.patch(f"/datasets/{dataset_id}", {"indexes": {"add": [f"email{char}"]}})
    assert indexed.status == 400, indexed.body
    detail = client.get(f"/datasets/{dataset_id}").json()["data"]
    assert [c["name"] for c in detail["columns"]] == ["email"] and detail["row_count"] == 0


def test_column_names_are_stored_in_nfc_so_both_spellings_are_one_column(client: Client) -> None:
    dataset_id = client.post("/datasets", {"name": "nfc"}).json()["data"]["id"]
    first = client.post(f"/datasets/{dataset_id}/rows", {NFD_CAFE: 1})
    assert first.status == 201, first.body
    assert list(first.json()["data"]["rows"][0])[-1] == NFC_CAFE
    second = client.post(f"/datasets/{dataset_id}/rows", {NFC_CAFE: 2})
    assert second.status == 201, second.body
    columns = client.get(f"/datasets/{dataset_id}").json()["data"]["columns"]
    assert [c["name"] for c in columns] == [NFC_CAFE]
    rows = client.get(f"/datasets/{dataset_id}/rows", params={"order": f"{NFC_CAFE}.desc"}).json()["data"]
    assert [row[NFC_CAFE] for row in rows["rows"]] == [2, 1]
    row_id = rows["rows"][0]["id"]
    patched = client.patch(f"/datasets/{dataset_id}/rows/{row_id}", {"set": {NFD_CAFE: 3}})
    assert patched.status == 200 and patched.json()["data"][NFC_CAFE] == 3, patched.body
    both = client.post(f"/datasets/{dataset_id}/rows", {NFC_CAFE: 4, NFD_CAFE: 5})
    assert both.status == 400 and both.json()["error"]["code"] == "invalid_body", both.body
    assert client.get(f"/datasets/{dataset_id}").json()["data"]["row_count"] == 2


def test_declared_column_names_are_nfc_and_one_name_cannot_be_declared_twice(client: Client) -> None:
    twice = client.post(
        "/datasets",
        {
            "name": "twice",
            "columns": [{"name": NFC_CAFE, "type": "string"}, {"name": NFD_CAFE, "type": "string"}],
        },
    )
    assert twice.status == 400, twice.body
    once = client.post("/datasets", {"name": "once", "columns": [{"name": NFD_CAFE, "type": "number"}]})
    assert once.status == 201, once.body
    assert [c["name"] for c in once.json()["data"]["columns"]] == [NFC_CAFE]
    indexed = client.patch(f"/datasets/{once.json()['data']['id']}", {"indexes": {"add": [NFD_CAFE]}})
    assert indexed.status == 200, indexed.body
    assert [c["indexed"] for c in indexed.json()["data"]["columns"]] == [True]


def test_imports_match_dataset_and_column_names_in_either_spelling(client: Client) -> None:
    created = client.post("/datasets", {"name": NFC_CAFE, "columns": [{"name": NFC_CAFE, "type": "number"}]})
    dataset_id = created.json()["data"]["id"]
    assert unicodedata.is_normalized("NFD", NFD_CAFE) and NFD_CAFE != NFC_CAFE
    body = drop(f"{NFD_CAFE}/prices.csv", f"{NFD_CAFE},note\n7,a\n8,b\n".encode())
    run_handler(body)
    data = client.get(f"/datasets/{dataset_id}/rows").json()["data"]
    assert [row[NFC_CAFE] for row in data["rows"]] == [7, 8]
    assert data["columns"] == [NFC_CAFE, "note"]
    assert [item["name"] for item in client.get("/datasets").json()["data"]] == [NFC_CAFE]
