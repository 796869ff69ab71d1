"""Keys, scopes and workspaces (SPEC §3) through the real handlers."""

from __future__ import annotations

import boto3
import pytest

from datasets_core import auth
from datasets_core.config import settings
from datasets_core.logic import keys
from datasets_core.store import keys as key_store

from .conftest import Client, make_key


def error(response) -> dict:
    return response.json()["error"]


def test_created_key_is_shown_once_and_works(client: Client) -> None:
    response = client.post("/keys", {"name": "reporting", "scopes": ["datasets:read"]})
    assert response.status == 201
    data = response.json()["data"]
    assert set(data) == {"id", "key", "name", "scopes", "created_at", "expires_at", "last_used_at"}
    assert data["key"].startswith("dsk_") and data["scopes"] == ["datasets:read"]
    assert client.get("/datasets", key=data["key"]).status == 200
    listed = client.get("/keys").json()["data"]
    assert all("key" not in item and "secret_hash" not in item for item in listed)
    assert data["id"] in {item["id"] for item in listed}


def test_only_a_hash_of_the_secret_is_stored(client: Client) -> None:
    plaintext = client.post("/keys", {"name": "k", "scopes": ["datasets:read"]}).json()["data"]["key"]
    key_id, secret = auth.split_key(plaintext)
    item = (
        boto3.resource("dynamodb")
        .Table(settings().meta_table)
        .get_item(Key={"pk": f"KEY#{key_id}", "sk": "KEY"})["Item"]
    )
    assert secret not in str(item) and plaintext not in str(item)
    assert item["secret_hash"] == auth.hash_secret(secret)


def test_key_without_the_scope_gets_403_naming_it(client: Client) -> None:
    reader = client.post("/keys", {"name": "r", "scopes": ["datasets:read"]}).json()["data"]["key"]
    response = client.post("/datasets", {"name": "x"}, key=reader)
    assert response.status == 403
    assert error(response)["code"] == "insufficient_scope"
    assert error(response)["details"]["required_scope"] == "datasets:admin"


def test_a_key_cannot_mint_scopes_it_lacks(aws_env: None) -> None:
    keys_admin = Client(make_key(scopes=["keys:admin", "datasets:read"]))
    response = keys_admin.post("/keys", {"name": "escalate", "scopes": ["datasets:write"]})
    assert response.status == 400
    assert error(response)["code"] == "invalid_body"
    assert error(response)["details"]["scopes_not_held"] == ["datasets:write"]


def test_unknown_scope_is_refused(client: Client) -> None:
    response = client.post("/keys", {"name": "k", "scopes": ["datasets:everything"]})
    assert response.status == 400 and error(response)["code"] == "invalid_body"


def test_revoked_key_is_refused_once_the_cache_expires(client: Client) -> None:
    created = client.post("/keys", {"name": "temp", "scopes": ["datasets:read"]}).json()["data"]
    assert client.get("/datasets", key=created["key"]).status == 200
    assert client.delete(f"/keys/{created['id']}").status == 200
    auth.forget_cached_keys()  # the 30 s cache window passing
    response = client.get("/datasets", key=created["key"])
    assert response.status == 401 and error(response)["code"] == "unauthorized"
    assert created["id"] not in {item["id"] for item in client.get("/keys").json()["data"]}


def test_revoking_another_workspaces_key_is_not_found(client: Client) -> None:
    other_key = make_key(workspace="other")
    other_id, _ = auth.split_key(other_key)
    response = client.delete(f"/keys/{other_id}")
    assert response.status == 404 and error(response)["code"] == "key_not_found"
    assert Client(other_key).get("/datasets").status == 200


def test_expired_key_is_unauthorized(aws_env: None) -> None:
    new = auth.generate_key()
    key_store.put_key(
        key_id=new.key_id,
        workspace="default",
        name="old",
        scopes=["datasets:read"],
        secret_hash=new.secret_hash,
        created_at="2020-01-01T00:00:00.000Z",
        expires_at="2021-01-01T00:00:00.000Z",
    )
    assert Client(new.plaintext).get("/datasets").status == 401


def test_expires_at_must_be_in_the_future(client: Client) -> None:
    response = client.post(
        "/keys", {"name": "k", "scopes": ["datasets:read"], "expires_at": "2001-01-01T00:00:00Z"}
    )
    assert response.status == 400 and error(response)["code"] == "invalid_body"


def test_wrong_secret_for_a_real_key_id_is_unauthorized(client: Client) -> None:
    key_id, _ = auth.split_key(client.key or "")
    forged = f"dsk_{key_id}_{'A' * 43}"
    response = client.get("/datasets", key=forged)
    assert response.status == 401
    assert error(response)["message"] == auth.UNAUTHORIZED


def test_every_kind_of_bad_credential_gets_the_same_message(anonymous: Client) -> None:
    messages = {
        error(anonymous.get("/datasets", headers=headers))["message"]
        for headers in (
            {},
            {"Authorization": "Bearer nope-nope-nope-nope-nope"},
            {"Authorization": "Basic x"},
        )
    }
    assert messages == {auth.UNAUTHORIZED}


def test_key_in_the_query_string_is_refused_with_a_pointer_to_the_header(client: Client) -> None:
    response = client.get("/datasets", params={"api_key": client.key})
    assert response.status == 401
    assert "Authorization" in error(response)["message"]


def test_x_api_key_header_is_accepted(client: Client) -> None:
    response = client.get("/datasets", key="", headers={"X-Api-Key": client.key or ""})
    assert response.status == 200


def test_last_used_at_is_recorded(client: Client) -> None:
    client.get("/datasets")
    mine = auth.split_key(client.key or "")[0]
    listed = {item["id"]: item for item in client.get("/keys").json()["data"]}
    assert listed[mine]["last_used_at"] is not None


@pytest.mark.parametrize("column", ["key", "token", "api_key", "apikey", "access_token", "x-api-key"])
def test_columns_named_like_key_parameters_can_be_filtered(client: Client, column: str) -> None:
    dataset_id = client.post("/datasets", {"name": f"named {column}"}).json()["data"]["id"]
    client.post(f"/datasets/{dataset_id}/rows", [{column: "color"}, {column: "size"}])
    response = client.get(f"/datasets/{dataset_id}/rows", params={column: "eq.color"})
    assert response.status == 200, response.body
    assert [row[column] for row in response.json()["data"]["rows"]] == ["color"]


def test_a_key_anywhere_in_the_query_string_is_refused(client: Client) -> None:
    dataset_id = client.post("/datasets", {"name": "leaky"}).json()["data"]["id"]
    for params in ({"note": f"eq.{client.key}"}, {"whatever": client.key}, {"token": client.key}):
        response = client.get(f"/datasets/{dataset_id}/rows", params=params)
        assert response.status == 401, params
        assert "Authorization" in error(response)["message"]


def test_a_bootstrap_style_key_under_a_key_parameter_is_refused(aws_env: None) -> None:
    token = "Bootstrap-Key-For-The-Local-Stack-0001"
    keys.register_key("default", "bootstrap", list(auth.SCOPES), token)
    client = Client(token)
    assert client.get("/datasets").status == 200
    assert client.get("/datasets", params={"apikey": token}).status == 401
    # a non-key value under the same name is just a filter on an unknown column
    assert client.get("/datasets", params={"apikey": "Not-A-Registered-Token-000"}).status == 400
