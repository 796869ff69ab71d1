"""Datasets (SPEC §4) and the envelope conventions (SPEC §2) through the real handlers."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from datasets_core.config import settings
from datasets_core.store import workspaces

from .conftest import Client, make_key, run_maintenance


def error(response) -> dict:
    return response.json()["error"]


def create(client: Client, name: str, **extra) -> dict:
    response = client.post("/datasets", {"name": name, **extra})
    assert response.status == 201, response.body
    return response.json()["data"]


def test_create_get_and_list_a_dataset(client: Client) -> None:
    created = create(
        client,
        "Leads",
        description="Inbound leads",
        columns=[{"name": "email", "type": "string", "indexed": True}, {"name": "amount", "type": "number"}],
    )
    assert created["row_count"] == 0
    assert created["columns"] == [
        {"name": "email", "type": "string", "indexed": True, "index_status": "ready"},
        {"name": "amount", "type": "number", "indexed": False},
    ]
    fetched = client.get(f"/datasets/{created['id']}").json()["data"]
    assert fetched == created
    assert set(fetched["limits"]) >= {"max_columns", "max_indexes", "max_rows_per_request"}
    listed = client.get("/datasets").json()
    assert listed["meta"] == {"total": 1, "limit": 100, "offset": 0}
    assert listed["data"] == [
        {k: created[k] for k in ("id", "name", "description", "row_count", "created_at", "updated_at")}
    ]


def test_names_are_unique_case_insensitively(client: Client) -> None:
    create(client, "Leads")
    response = client.post("/datasets", {"name": "LEADS"})
    assert response.status == 409 and error(response)["code"] == "dataset_name_taken"


def test_rename_moves_the_name(client: Client) -> None:
    first = create(client, "Alpha")
    create(client, "Beta")
    clash = client.patch(f"/datasets/{first['id']}", {"name": "beta"})
    assert clash.status == 409 and error(clash)["code"] == "dataset_name_taken"
    renamed = client.patch(f"/datasets/{first['id']}", {"name": "Gamma", "description": "third"})
    assert renamed.status == 200
    assert renamed.json()["data"]["name"] == "Gamma" and renamed.json()["data"]["description"] == "third"
    create(client, "Alpha")  # the old name is free again


def test_rename_to_same_name_in_other_case_is_allowed(client: Client) -> None:
    dataset = create(client, "Alpha")
    response = client.patch(f"/datasets/{dataset['id']}", {"name": "ALPHA"})
    assert response.status == 200 and response.json()["data"]["name"] == "ALPHA"


def test_delete_hides_the_dataset_at_once_and_its_purge_leaves_nothing(client: Client) -> None:
    # Given a dataset with rows of every kind of item: index entries, change log, audit trail,
    # uniqueness items (an upsert), written through the API
    dataset = create(client, "Temp", columns=[{"name": "email", "type": "string", "indexed": True}])
    rows = [{"email": f"u{i}@x.io", "n": i} for i in range(30)]
    assert client.post(f"/datasets/{dataset['id']}/rows", {"rows": rows}).status == 201
    upsert = {"rows": [{"email": "u1@x.io", "n": 100}, {"email": "new@x.io"}], "upsert_on": "email"}
    assert client.post(f"/datasets/{dataset['id']}/rows", upsert).status == 201
    assert (
        client.patch(f"/datasets/{dataset['id']}/rows", {"where": {"n": {"lt": 5}}, "set": {"n": 0}}).status
        == 200
    )
    assert workspaces.get("default")["row_count"] == 31
    # When it is deleted
    assert client.delete(f"/datasets/{dataset['id']}").status == 200
    # Then it is gone at once, its name is free, and its rows are given back to the plan
    assert client.get(f"/datasets/{dataset['id']}").status == 404
    assert client.get("/datasets").json()["meta"]["total"] == 0
    assert client.delete(f"/datasets/{dataset['id']}").status == 404
    assert workspaces.get("default") | {"max_rows": 0} == {
        "max_rows": 0,
        "max_datasets": 100,
        "row_count": 0,
        "dataset_count": 0,
    }
    other = create(client, "Temp")  # the name is free again
    assert leftovers(dataset["id"])  # items wait for the purge...
    # ... which the maintenance function runs, leaving no item of the dataset in any table
    assert run_maintenance() == ["done"]
    assert leftovers(dataset["id"]) == []
    assert [item["sk"] for item in meta_items() if dataset["id"] in item["sk"]] == [
        f"JOB#purge:{dataset['id']}"
    ]
    assert workspaces.get("default")["row_count"] == 0
    assert client.get(f"/datasets/{other['id']}").status == 200


def leftovers(dataset_id: str) -> list[dict[str, Any]]:
    table = boto3.resource("dynamodb").Table(settings().rows_table)
    return [item for item in table.scan()["Items"] if str(item["pk"]).startswith(dataset_id)]


def meta_items() -> list[dict[str, Any]]:
    return list(boto3.resource("dynamodb").Table(settings().meta_table).scan()["Items"])


def test_list_filters_sorts_and_pages(client: Client) -> None:
    for name in ("banana", "Apple", "cherry", "apricot"):
        create(client, name)
    names = lambda r: [d["name"] for d in r.json()["data"]]  # noqa: E731
    assert names(client.get("/datasets", params={"sort": "name"})) == ["Apple", "apricot", "banana", "cherry"]
    assert names(client.get("/datasets", params={"sort": "name.desc"})) == [
        "cherry",
        "banana",
        "apricot",
        "Apple",
    ]
    found = client.get("/datasets", params={"q": "AP", "sort": "name"})
    assert names(found) == ["Apple", "apricot"] and found.json()["meta"]["total"] == 2
    page = client.get("/datasets", params={"sort": "name", "limit": 2, "offset": 1})
    assert names(page) == ["apricot", "banana"]
    assert page.json()["meta"] == {"total": 4, "limit": 2, "offset": 1}
    assert names(client.get("/datasets", params={"sort": "created_at.desc"}))[0] == "apricot"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "abc"},
        {"offset": "-1"},
        {"offset": "1.5"},
        {"sort": "size"},
        {"sort": "name.sideways"},
        {"colour": "red"},
    ],
)
def test_bad_list_parameters_are_invalid_query(client: Client, params: dict) -> None:
    response = client.get("/datasets", params=params)
    assert response.status == 400 and error(response)["code"] == "invalid_query"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": 5},
        {"name": "x", "unexpected": 1},
        {"name": "x", "columns": [{"name": "id", "type": "string"}]},
        {"name": "x", "columns": [{"name": "created_at", "type": "string"}]},
        {"name": "x", "columns": [{"name": "", "type": "string"}]},
        {"name": "x", "columns": [{"name": "a\u0001b", "type": "string"}]},
        {"name": "x", "columns": [{"name": "a" * 129, "type": "string"}]},
        {"name": "x", "columns": [{"name": "a", "type": "integer"}]},
        {"name": "x", "columns": [{"name": "a", "type": "string"}, {"name": "a", "type": "number"}]},
        {"name": "x", "columns": [{"name": f"c{i}", "type": "string", "indexed": True} for i in range(6)]},
        [1, 2],
    ],
)
def test_bad_create_bodies_are_invalid_body_and_create_nothing(client: Client, body) -> None:
    response = client.post("/datasets", body)
    assert response.status == 400, response.body
    assert error(response)["code"] == "invalid_body"
    assert client.get("/datasets").json()["meta"]["total"] == 0


def test_non_json_body_is_invalid_body(client: Client) -> None:
    response = client.post("/datasets", body="{not json")
    assert response.status == 400 and error(response)["code"] == "invalid_body"


def test_body_over_6_mb_is_payload_too_large(client: Client) -> None:
    response = client.post(
        "/datasets", body=json.dumps({"name": "x", "description": "a" * (6 * 1024 * 1024)})
    )
    assert response.status == 413 and error(response)["code"] == "payload_too_large"
    assert client.get("/datasets").json()["meta"]["total"] == 0


def test_dataset_plan_limit(client: Client) -> None:
    workspaces.set_plan("default", max_datasets=2)
    create(client, "one")
    create(client, "two")
    response = client.post("/datasets", {"name": "three"})
    assert response.status == 403 and error(response)["code"] == "plan_limit_exceeded"
    assert error(response)["details"]["limit"] == 2 and error(response)["details"]["current"] == 2
    client.delete(f"/datasets/{client.get('/datasets').json()['data'][0]['id']}")
    create(client, "three")


def test_other_workspaces_never_see_a_dataset(client: Client) -> None:
    dataset = create(client, "Private")
    outsider = Client(make_key(workspace="other"))
    for response in (
        outsider.get(f"/datasets/{dataset['id']}"),
        outsider.patch(f"/datasets/{dataset['id']}", {"name": "mine"}),
        outsider.delete(f"/datasets/{dataset['id']}"),
    ):
        assert response.status == 404 and error(response)["code"] == "dataset_not_found"
    assert outsider.get("/datasets").json() == {"data": [], "meta": {"total": 0, "limit": 100, "offset": 0}}
    # The same name is free in the other workspace.
    assert outsider.post("/datasets", {"name": "Private"}).status == 201
    assert client.get(f"/datasets/{dataset['id']}").json()["data"]["name"] == "Private"


def test_unknown_path_and_wrong_method_use_the_envelope(client: Client) -> None:
    missing = client.get("/nope")
    assert missing.status == 404 and error(missing)["code"] == "not_found"
    wrong = client.put("/datasets")
    assert wrong.status == 405 and error(wrong)["code"] == "method_not_allowed"


def test_public_endpoints_need_no_key(anonymous: Client) -> None:
    assert anonymous.get("/health").json() == {"data": {"status": "ok"}}
    spec = anonymous.get("/openapi.json").json()
    assert spec["info"]["title"] == "Datasets API"
    assert "/datasets/{dataset_id}" in spec["paths"] and "/keys" in spec["paths"]
    docs = anonymous.get("/docs")
    assert docs.status == 200 and b"swagger-ui" in docs.body
    assert b"unpkg.com" not in docs.body and b'src="docs/swagger-ui-bundle.js"' in docs.body


@pytest.mark.parametrize(
    ("asset", "media_type", "marker"),
    [
        ("swagger-ui-bundle.js", "text/javascript", b"SwaggerUIBundle"),
        ("swagger-ui.css", "text/css", b".swagger-ui"),
    ],
)
def test_swagger_ui_files_are_served_by_the_api(
    anonymous: Client, asset: str, media_type: str, marker: bytes
) -> None:
    answer = anonymous.get(f"/docs/{asset}")
    assert answer.status == 200
    assert answer.headers["Content-Type"].split(";")[0] == media_type
    assert marker in answer.body and len(answer.body) > 100_000


def test_an_unknown_swagger_ui_file_is_not_found(anonymous: Client) -> None:
    answer = anonymous.get("/docs/..%2Fhandler.py")
    assert answer.status == 404 and error(answer)["code"] == "not_found"


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_a_json_body_is_read_as_json_whatever_its_content_type(client: Client, content_type: str) -> None:
    # `curl -d '{...}'` without -H 'Content-Type: application/json' sends a form content type.
    created = client.post("/datasets", {"name": "Curl default"}, headers={"Content-Type": content_type})
    assert created.status == 201, created.body
    assert created.json()["data"]["name"] == "Curl default"
