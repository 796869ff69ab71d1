"""Keys, scopes, workspaces and plans end to end: the API and ``datasets-admin`` on one stack."""

from __future__ import annotations

import json
import secrets

from .conftest import Stack


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def error(response) -> dict:
    return response.json()["error"]


def create_key_with_admin(stack: Stack, workspace: str, scopes: str) -> str:
    result = stack.admin("create-key", "--workspace", workspace, "--scopes", scopes, "--name", "e2e")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_a_key_with_fewer_scopes_works_until_revoked(stack: Stack) -> None:
    # Given a key that may only read datasets
    created = stack.request("POST", "/keys", json={"name": "reader", "scopes": ["datasets:read"]})
    assert created.status_code == 201
    reader = created.json()["data"]
    assert reader["scopes"] == ["datasets:read"]

    # When it reads, it may; when it creates a dataset, it lacks the scope, which is named
    assert stack.request("GET", "/datasets", key=reader["key"]).status_code == 200
    refused = stack.request("POST", "/datasets", key=reader["key"], json={"name": unique("nope")})
    assert refused.status_code == 403
    assert error(refused)["code"] == "insufficient_scope"
    assert error(refused)["details"]["required_scope"] == "datasets:admin"

    # When it is revoked, it is refused like an unknown key (KEY_CACHE_SECONDS=0, see conftest)
    revoked = stack.request("DELETE", f"/keys/{reader['id']}")
    assert revoked.status_code == 200
    after = stack.request("GET", "/datasets", key=reader["key"])
    assert after.status_code == 401
    assert error(after)["code"] == "unauthorized"
    assert reader["id"] not in {key["id"] for key in stack.request("GET", "/keys").json()["data"]}


def test_a_key_of_another_workspace_sees_nothing_here(stack: Stack) -> None:
    # Given a dataset in workspace "default" and a key of another workspace made by the operator
    dataset = stack.request("POST", "/datasets", json={"name": unique("private")})
    assert dataset.status_code == 201
    dataset_id = dataset.json()["data"]["id"]
    other = create_key_with_admin(stack, unique("other"), "datasets:read")

    # Then the dataset does not exist for it, and its list is empty
    response = stack.request("GET", f"/datasets/{dataset_id}", key=other)
    assert response.status_code == 404
    assert error(response)["code"] == "dataset_not_found"
    listed = stack.request("GET", "/datasets", key=other)
    assert listed.status_code == 200
    assert listed.json()["data"] == [] and listed.json()["meta"]["total"] == 0


def test_set_plan_limits_the_number_of_datasets(stack: Stack) -> None:
    workspace = unique("small")
    key = create_key_with_admin(stack, workspace, "datasets:read,datasets:admin")
    result = stack.admin("set-plan", "--workspace", workspace, "--max-datasets", "1", "--max-rows", "100")
    assert result.returncode == 0, result.stderr

    first = stack.request("POST", "/datasets", key=key, json={"name": "first"})
    assert first.status_code == 201
    second = stack.request("POST", "/datasets", key=key, json={"name": "second"})
    assert second.status_code == 403
    assert error(second)["code"] == "plan_limit_exceeded"


def test_set_plan_limits_each_keys_requests(stack: Stack) -> None:
    # A limit of 3 requests per hour-long window (no window ends during the test).
    workspace = unique("limited")
    key = create_key_with_admin(stack, workspace, "datasets:read")
    other = create_key_with_admin(stack, workspace, "datasets:read")
    result = stack.admin("set-plan", "--workspace", workspace, "--rate-limit", "3", "--rate-window", "3600")
    assert result.returncode == 0, result.stderr
    assert "rate limit 3 requests per 3600 s per key" in result.stdout

    answers = [stack.request("GET", "/datasets", key=key) for _ in range(5)]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
    refused = answers[-1]
    assert error(refused)["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    # Each key has its own count.
    assert stack.request("GET", "/datasets", key=other).status_code == 200


def test_admin_lists_and_revokes_keys(stack: Stack) -> None:
    workspace = unique("ops")
    key = create_key_with_admin(stack, workspace, "datasets:read")
    assert stack.request("GET", "/datasets", key=key).status_code == 200

    listed = stack.admin("list-keys", "--workspace", workspace, "--json")
    assert listed.returncode == 0, listed.stderr
    [record] = json.loads(listed.stdout)
    assert record["scopes"] == ["datasets:read"] and "secret_hash" not in record
    assert key.startswith(f"dsk_{record['id']}_")

    revoked = stack.admin("revoke-key", record["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert stack.request("GET", "/datasets", key=key).status_code == 401


def test_admin_errors_are_short_messages(stack: Stack) -> None:
    unknown_scope = stack.admin("create-key", "--workspace", "w", "--scopes", "datasets:everything")
    assert unknown_scope.returncode == 2
    assert "unknown scope" in unknown_scope.stderr and "Traceback" not in unknown_scope.stderr

    missing = stack.admin("revoke-key", "nosuchkey0000000")
    assert missing.returncode == 1
    assert "key not found" in missing.stderr and "Traceback" not in missing.stderr


def test_admin_finds_a_deployed_stack_by_its_outputs(stack: Stack) -> None:
    # Given a CloudFormation stack whose outputs name the tables (here: moto's, holding the local tables)
    name = unique("DatasetsApi")
    template = {
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": unique("marker")}}},
        "Outputs": {
            "StorageMetaTableNameA1B2C3D4": {"Value": "datasets-meta"},
            "RowsTableName": {"Value": "datasets-rows"},
        },
    }
    stack.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))
    workspace = unique("deployed")
    env = {**stack.aws_env(), "AWS_ENDPOINT_URL": stack.aws_endpoint}

    # When the operator targets it by name, the key lands in those tables
    result = stack.admin(
        "create-key", "--workspace", workspace, "--scopes", "datasets:read", "--stack", name, env=env
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip().splitlines()[-1]
    assert stack.request("GET", "/datasets", key=key).status_code == 200

    unknown = stack.admin("list-keys", "--workspace", workspace, "--stack", unique("missing"), env=env)
    assert unknown.returncode == 1 and "does not exist" in unknown.stderr
