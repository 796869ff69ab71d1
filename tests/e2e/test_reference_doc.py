"""Every curl example of the rows reference document (shared/reference/rows-api-scoped-keys.txt),
sent to the local stack as ``make run`` starts it — only the base URL changes — with a key
scoped to ``datasets:read`` and ``datasets:write`` as the document's examples use.

Where SPEC.md extends the documented shape the extra fields are allowed (rows also carry
``row_index``/``created_at``/``updated_at``; list endpoints add ``meta``); every documented
field must be there with the documented meaning.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from .conftest import Stack

ROWS = [
    {"name": "Acme", "status": "active", "amount": 1200},
    {"name": "Globex", "status": "active", "amount": 75},
    {"name": "Initech", "status": "pending", "amount": 150},
    {"name": "Umbrella", "status": "pending", "amount": 99},
    {"name": "acme labs", "status": "lost", "amount": None},
]


@dataclass
class Doc:
    """The document's world: ``$COMMUNA_API_KEY`` and the dataset ``abc123``."""

    stack: Stack
    key: str
    dataset_id: str

    def curl(self, method: str, path: str, body: Any = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.key}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return requests.request(method, self.stack.base_url + path, headers=headers, json=body, timeout=30)


@pytest.fixture
def doc(stack: Stack) -> Iterator[Doc]:
    made = stack.request(
        "POST", "/keys", json={"name": "reference", "scopes": ["datasets:read", "datasets:write"]}
    )
    assert made.status_code == 201, made.text
    created = stack.request("POST", "/datasets", json={"name": f"reference {secrets.token_hex(4)}"})
    assert created.status_code == 201, created.text
    dataset_id = created.json()["data"]["id"]
    loaded = stack.request("POST", f"/datasets/{dataset_id}/rows", json={"rows": ROWS})
    assert loaded.status_code == 201, loaded.text
    yield Doc(stack, made.json()["data"]["key"], dataset_id)
    stack.request("DELETE", f"/datasets/{dataset_id}")


def _ids(doc: Doc, query: str = "") -> dict[str, str]:
    rows = doc.curl("GET", f"/datasets/{doc.dataset_id}/rows{query}").json()["data"]["rows"]
    return {row["name"]: row["id"] for row in rows}


def test_list_datasets(doc: Doc) -> None:
    response = doc.curl("GET", "/datasets")  # curl https://communa.io/api/v1/datasets
    assert response.status_code == 200
    mine = [d for d in response.json()["data"] if d["id"] == doc.dataset_id]
    assert len(mine) == 1 and {"id", "name", "row_count"} <= set(mine[0]) and mine[0]["row_count"] == 5


def test_query_rows_with_filters_select_order_and_limit(doc: Doc) -> None:
    response = doc.curl(
        "GET",
        f"/datasets/{doc.dataset_id}/rows?status=eq.active&amount=gte.100&select=name,amount&order=amount.desc&limit=20",
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert set(data) >= {"rows", "total", "columns"}
    assert [{k: v for k, v in row.items()} for row in data["rows"]] == [
        {"id": data["rows"][0]["id"], "name": "Acme", "amount": 1200}
    ]
    assert data["total"] == 1 and data["columns"] == ["name", "amount"]


def test_insert_rows(doc: Doc) -> None:
    response = doc.curl(
        "POST", f"/datasets/{doc.dataset_id}/rows", {"rows": [{"name": "Acme", "status": "active"}]}
    )
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["inserted"] == 1
    [row] = data["rows"]
    assert row["name"] == "Acme" and row["status"] == "active" and row["id"]


def test_update_rows_in_bulk(doc: Doc) -> None:
    response = doc.curl(
        "PATCH",
        f"/datasets/{doc.dataset_id}/rows",
        {"where": {"status": "pending"}, "set": {"status": "active"}},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"updated": 2}}
    assert _ids(doc, "?status=eq.pending") == {}


def test_delete_rows_in_bulk(doc: Doc) -> None:
    ids = _ids(doc)
    response = doc.curl(
        "DELETE", f"/datasets/{doc.dataset_id}/rows", {"row_ids": [ids["Acme"], ids["Globex"]]}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"deleted": 2}}


def test_fetch_one_row(doc: Doc) -> None:
    row_id = _ids(doc)["Acme"]
    response = doc.curl("GET", f"/datasets/{doc.dataset_id}/rows/{row_id}")
    assert response.status_code == 200, response.text
    row = response.json()["data"]
    assert (row["id"], row["row_index"], row["name"], row["status"]) == (row_id, 0, "Acme", "active")


def test_update_one_row(doc: Doc) -> None:
    row_id = _ids(doc)["Initech"]
    response = doc.curl(
        "PATCH",
        f"/datasets/{doc.dataset_id}/rows/{row_id}",
        {"set": {"status": "active", "notes": "Reviewed"}},
    )
    assert response.status_code == 200, response.text
    row = response.json()["data"]
    assert (row["id"], row["status"], row["notes"]) == (row_id, "active", "Reviewed")
    missing = doc.curl(
        "PATCH",
        f"/datasets/{doc.dataset_id}/rows/00000000-0000-8000-8000-000000000001",
        {"set": {"status": "x"}},
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "row_not_found"


def test_delete_one_row(doc: Doc) -> None:
    row_id = _ids(doc)["Umbrella"]
    response = doc.curl("DELETE", f"/datasets/{doc.dataset_id}/rows/{row_id}")
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"deleted": True, "id": row_id}}
    again = doc.curl("DELETE", f"/datasets/{doc.dataset_id}/rows/{row_id}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "row_not_found"


def test_a_non_uuid_row_id_is_invalid_row_id(doc: Doc) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        response = doc.curl(
            method, f"/datasets/{doc.dataset_id}/rows/r1", {"set": {}} if method == "PATCH" else None
        )
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_row_id", method


def test_distinct_values_with_counts(doc: Doc) -> None:
    response = doc.curl("GET", f"/datasets/{doc.dataset_id}/rows?distinct=status")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["values"] == [
        {"value": "active", "count": 2},
        {"value": "pending", "count": 2},
        {"value": "lost", "count": 1},
    ]
    assert data["total_unique"] == 3


def test_sorting_is_type_aware_and_metadata_sorts(doc: Doc) -> None:
    amounts = doc.curl("GET", f"/datasets/{doc.dataset_id}/rows?order=amount.asc&amount=not.is.null").json()
    assert [row["amount"] for row in amounts["data"]["rows"]] == [75, 99, 150, 1200]
    newest = doc.curl(
        "GET", f"/datasets/{doc.dataset_id}/rows?order=row_index.desc&select=name&limit=1"
    ).json()
    assert [row["name"] for row in newest["data"]["rows"]] == ["acme labs"]


def test_search_is_free_text_across_columns(doc: Doc) -> None:
    data = doc.curl("GET", f"/datasets/{doc.dataset_id}/rows?search=acme").json()["data"]
    assert sorted(row["name"] for row in data["rows"]) == ["Acme", "acme labs"] and data["total"] == 2


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "offset=-1", "limit=abc", "offset=2.5"])
def test_pagination_is_strict(doc: Doc, query: str) -> None:
    response = doc.curl("GET", f"/datasets/{doc.dataset_id}/rows?{query}")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_query"


def test_the_read_scope_cannot_write(doc: Doc) -> None:
    made = doc.stack.request("POST", "/keys", json={"name": "reader", "scopes": ["datasets:read"]})
    reader = Doc(doc.stack, made.json()["data"]["key"], doc.dataset_id)
    assert reader.curl("GET", f"/datasets/{doc.dataset_id}/rows").status_code == 200
    refused = reader.curl("POST", f"/datasets/{doc.dataset_id}/rows", {"rows": [{"name": "x"}]})
    assert refused.status_code == 403
    assert refused.json()["error"]["details"]["required_scope"] == "datasets:write"
