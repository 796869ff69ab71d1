"""The IAM checker of tests/iam: call -> IAM requests, policy resolution and evaluation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.iam import policy
from tests.iam.recorder import expression_attributes, summarize

REGION, ACCOUNT = "us-east-1", "123456789012"
META = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/meta"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/work"


def requests(call: dict[str, Any]) -> list[tuple[str, str]]:
    return [(r.action, r.resource) for r in policy.requests_for(call, region=REGION, account=ACCOUNT)]


def test_transact_write_items_needs_each_item_action_on_each_table() -> None:
    call = summarize(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "meta", "Item": {}}},
                {"Update": {"TableName": "rows", "Key": {}}},
                {"ConditionCheck": {"TableName": "meta", "Key": {}}},
                {"Delete": {"TableName": "rows", "Key": {}}},
            ]
        },
        presign=False,
    )
    assert sorted(requests(call)) == [
        ("dynamodb:ConditionCheckItem", META),
        ("dynamodb:DeleteItem", META.replace("meta", "rows")),
        ("dynamodb:PutItem", META),
        ("dynamodb:UpdateItem", META.replace("meta", "rows")),
    ]


def test_batch_write_is_batch_write_item_on_each_table_and_queries_name_their_index() -> None:
    batch = summarize(
        "dynamodb",
        "BatchWriteItem",
        {"RequestItems": {"rows": [{"PutRequest": {}}, {"DeleteRequest": {}}]}},
        presign=False,
    )
    assert requests(batch) == [("dynamodb:BatchWriteItem", META.replace("meta", "rows"))]
    query = summarize("dynamodb", "Query", {"TableName": "meta", "IndexName": "gsi1"}, presign=False)
    assert requests(query) == [("dynamodb:Query", f"{META}/index/gsi1")]


def test_s3_versions_presigned_puts_and_queues() -> None:
    get = summarize("s3", "GetObject", {"Bucket": "b", "Key": "drop/x.csv"}, presign=False)
    versioned = summarize(
        "s3", "GetObject", {"Bucket": "b", "Key": "drop/x.csv", "VersionId": "v"}, presign=False
    )
    presigned = summarize("s3", "PutObject", {"Bucket": "b", "Key": "drop/y.csv"}, presign=True)
    send = summarize("sqs", "SendMessageBatch", {"QueueUrl": QUEUE_URL, "Entries": []}, presign=False)
    assert requests(get) == [("s3:GetObject", "arn:aws:s3:::b/drop/x.csv")]
    assert requests(versioned) == [("s3:GetObjectVersion", "arn:aws:s3:::b/drop/x.csv")]
    assert presigned["presign"] is True
    assert requests(presigned) == [("s3:PutObject", "arn:aws:s3:::b/drop/y.csv")]
    assert requests(send) == [("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:work")]


def test_a_batch_delete_is_a_delete_of_each_key() -> None:
    params = {
        "Bucket": "r",
        "Delete": {"Objects": [{"Key": "replica/b.parquet"}, {"Key": "replica/a.parquet"}]},
    }
    batch = summarize("s3", "DeleteObjects", params, presign=False)
    assert requests(batch) == [
        ("s3:DeleteObject", "arn:aws:s3:::r/replica/a.parquet"),
        ("s3:DeleteObject", "arn:aws:s3:::r/replica/b.parquet"),
    ]


def test_an_unmapped_operation_is_an_error_not_an_allowance() -> None:
    with pytest.raises(policy.CheckerError, match="no IAM mapping"):
        requests(summarize("s3", "PutBucketPolicy", {"Bucket": "b"}, presign=False))
    with pytest.raises(policy.CheckerError, match="no IAM mapping"):
        requests(summarize("kms", "Decrypt", {}, presign=False))


def test_expression_attributes_are_top_level_names() -> None:
    names = {"#n0": "last_used_at", "#n1": "doc"}
    assert expression_attributes("SET #n0 = :v0, #n1.inner = :v1 REMOVE gone", names) == {
        "last_used_at",
        "doc",
        "gone",
    }
    assert expression_attributes("attribute_exists(pk) AND NOT begins_with(sk, :p)", None) == {"pk", "sk"}


# --- evaluating a template ---------------------------------------------------------------------------
TABLE_ARN = {"Fn::GetAtt": ["MetaTable", "Arn"]}
TEMPLATE: dict[str, Any] = {
    "Resources": {
        "MetaTable": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "Role": {"Type": "AWS::IAM::Role", "Properties": {}},
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "get_thing.handler.handler",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Environment": {
                    "Variables": {"META_TABLE": {"Ref": "MetaTable"}, "QUEUE_URL": {"Ref": "Queue"}}
                },
            },
        },
        "Policy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "Roles": [{"Ref": "Role"}],
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["dynamodb:GetItem", "dynamodb:Query"],
                            "Resource": TABLE_ARN,
                        },
                        {
                            "Effect": "Allow",
                            "Action": "dynamodb:Query",
                            "Resource": {"Fn::Join": ["", [TABLE_ARN, "/index/*"]]},
                        },
                        {
                            "Effect": "Allow",
                            "Action": "dynamodb:UpdateItem",
                            "Resource": TABLE_ARN,
                            "Condition": {
                                "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["KEY#*"]},
                                "ForAllValues:StringEquals": {
                                    "dynamodb:Attributes": ["pk", "sk", "last_used_at"]
                                },
                            },
                        },
                        {
                            "Effect": "Allow",
                            "Action": "sqs:SendMessage",
                            "Resource": {"Fn::GetAtt": ["Queue", "Arn"]},
                        },
                    ]
                },
            },
        },
    }
}


@pytest.fixture
def statements() -> list[policy.Statement]:
    roles = policy.Roles(TEMPLATE, {"META_TABLE": ["meta"], "QUEUE_URL": [QUEUE_URL]}, REGION, ACCOUNT)
    assert roles.function_ids() == {"get_thing": "Fn"}
    return roles.statements("get_thing")


def allowed(statements: list[policy.Statement], service: str, operation: str, params: dict[str, Any]) -> bool:
    call = summarize(service, operation, params, presign=False, partition_keys={"meta": "pk", "rows": "pk"})
    return all(
        policy.decide(statements, r) for r in policy.requests_for(call, region=REGION, account=ACCOUNT)
    )


def touch(pk: str, expression: str = "SET last_used_at = :at") -> dict[str, Any]:
    return {
        "TableName": "meta",
        "Key": {"pk": {"S": pk}, "sk": {"S": "KEY"}},
        "UpdateExpression": expression,
        "ExpressionAttributeValues": {":at": {"S": "now"}},
    }


def test_resolved_policies_allow_exactly_their_actions_and_resources(
    statements: list[policy.Statement],
) -> None:
    assert allowed(statements, "dynamodb", "GetItem", {"TableName": "meta", "Key": {"pk": {"S": "WS#a"}}})
    assert allowed(statements, "dynamodb", "Query", {"TableName": "meta", "IndexName": "gsi1"})
    assert not allowed(
        statements, "dynamodb", "PutItem", {"TableName": "meta", "Item": {"pk": {"S": "WS#a"}}}
    )
    assert not allowed(statements, "dynamodb", "GetItem", {"TableName": "rows", "Key": {"pk": {"S": "x"}}})
    assert allowed(statements, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL})
    assert not allowed(statements, "sqs", "SendMessage", {"QueueUrl": QUEUE_URL.replace("work", "other")})


def test_leading_keys_and_attributes_conditions(statements: list[policy.Statement]) -> None:
    assert allowed(statements, "dynamodb", "UpdateItem", touch("KEY#abc"))
    # another item, another attribute, or an unknown key all fall outside the condition
    assert not allowed(statements, "dynamodb", "UpdateItem", touch("WS#abc"))
    assert not allowed(
        statements, "dynamodb", "UpdateItem", touch("KEY#abc", "SET last_used_at = :at, scopes = :at")
    )
    with pytest.raises(policy.CheckerError, match="cannot evaluate"):
        allowed(
            statements,
            "dynamodb",
            "TransactWriteItems",
            {"TransactItems": [{"Update": {"TableName": "meta", "Key": {}}}]},
        )


def test_unused_lists_grants_no_request_needed(statements: list[policy.Statement]) -> None:
    call = summarize(
        "dynamodb", "GetItem", {"TableName": "meta", "Key": {"pk": {"S": "WS#a"}}}, presign=False
    )
    used = policy.requests_for(call, region=REGION, account=ACCOUNT)
    assert {(g.action, g.resource) for g in policy.unused(statements, used)} == {
        ("dynamodb:Query", policy.compact(TABLE_ARN)),
        ("dynamodb:Query", policy.compact({"Fn::Join": ["", [TABLE_ARN, "/index/*"]]})),
        ("dynamodb:UpdateItem", policy.compact(TABLE_ARN)),
        ("sqs:SendMessage", policy.compact({"Fn::GetAtt": ["Queue", "Arn"]})),
    }
