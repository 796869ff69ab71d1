"""A ``\\u`` escape of a lone surrogate (``"\\ud800"``) is valid JSON but no character: UTF-8
cannot carry it, so neither DynamoDB nor an answer can. Every body holding one (as a value or
a key) is 400 ``invalid_body`` and writes nothing; before, an insert answered 500 after
reading it, and answers echoing it failed to encode."""

from __future__ import annotations

import json

import pytest

from .conftest import Client

LONE = "\\ud800"  # as JSON text: backslash, u, d800


@pytest.fixture
def ids(client: Client) -> dict[str, str]:
    dataset_id = client.post("/datasets", {"name": "text"}).json()["data"]["id"]
    row = client.post(f"/datasets/{dataset_id}/rows", {"rows": [{"t": "a"}]}).json()["data"]["rows"][0]
    return {"dataset": dataset_id, "row": row["id"]}


BODIES = {
    "create dataset": ("POST", "/datasets", '{"name": "x%s"}'),
    "create key": ("POST", "/keys", '{"name": "k%s", "scopes": ["datasets:read"]}'),
    "create key scope": ("POST", "/keys", '{"name": "k", "scopes": ["%s"]}'),
    "rename dataset": ("PATCH", "/datasets/{dataset}", '{"name": "y%s"}'),
    "insert": ("POST", "/datasets/{dataset}/rows", '{"rows": [{"t": "%s"}]}'),
    "insert key": ("POST", "/datasets/{dataset}/rows", '{"rows": [{"%s": 1}]}'),
    "bulk update": ("PATCH", "/datasets/{dataset}/rows", '{"where": {"t": "a"}, "set": {"t": "%s"}}'),
    "bulk delete": ("DELETE", "/datasets/{dataset}/rows", '{"where": {"t": "%s"}}'),
    "update row": ("PATCH", "/datasets/{dataset}/rows/{row}", '{"set": {"t": "%s"}}'),
    "replace row": ("PUT", "/datasets/{dataset}/rows/{row}", '{"t": "%s"}'),
    "upload": ("POST", "/datasets/{dataset}/uploads", '{"filename": "f%s.csv"}'),
}


@pytest.mark.parametrize(("method", "path", "template"), BODIES.values(), ids=BODIES.keys())
def test_a_lone_surrogate_is_400_invalid_body(
    client: Client, ids: dict[str, str], method: str, path: str, template: str
) -> None:
    for escape in (LONE, "\\udfff", "\\uDBFF"):
        answer = client.request(method, path.format(**ids), body=template % escape)
        assert answer.status == 400, answer.body[:300]
        error = answer.json()["error"]
        assert error["code"] == "invalid_body" and "lone surrogate" in error["message"]
    rows = client.get(f"/datasets/{ids['dataset']}/rows").json()["data"]["rows"]
    assert [row["t"] for row in rows] == ["a"]


def test_a_surrogate_pair_and_an_escaped_backslash_are_text(client: Client, ids: dict[str, str]) -> None:
    body = json.dumps({"rows": [{"t": "😀"}, {"t": "\\ud800"}]})  # an emoji as a pair; six characters
    assert "\\ud83d\\ude00" in body and "\\\\ud800" in body
    answer = client.post(f"/datasets/{ids['dataset']}/rows", body=body)
    assert answer.status == 201, answer.body[:300]
    assert [row["t"] for row in answer.json()["data"]["rows"]] == ["😀", "\\ud800"]
