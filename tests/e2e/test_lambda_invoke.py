"""The local Lambda Invoke endpoint: functions invoke functions with boto3, as on AWS."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from local.events import proxy_event

from .conftest import Stack


def health_event() -> dict:
    return proxy_event(method="GET", resource="/health", path="/health")


@pytest.mark.parametrize(
    "function", ["health", "health:$LATEST", "arn:aws:lambda:us-east-1:123456789012:function:health"]
)
def test_boto3_invokes_a_function_by_name_or_arn(stack: Stack, function: str) -> None:
    response = stack.client("lambda").invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(health_event())
    )
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    result = json.loads(response["Payload"].read())
    assert result["statusCode"] == 200
    assert json.loads(result["body"]) == {"data": {"status": "ok"}}


def test_a_handler_that_raises_is_an_unhandled_function_error(stack: Stack) -> None:
    response = stack.client("lambda").invoke(FunctionName="health", Payload=b"{}")  # not an API event
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "KeyError" and error["stackTrace"]


def test_an_unknown_function_is_resource_not_found(stack: Stack) -> None:
    with pytest.raises(ClientError) as raised:
        stack.client("lambda").invoke(FunctionName="no_such_function", Payload=b"{}")
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_an_event_invocation_is_accepted_at_once(stack: Stack) -> None:
    response = stack.client("lambda").invoke(
        FunctionName="health", InvocationType="Event", Payload=json.dumps(health_event())
    )
    assert response["StatusCode"] == 202
