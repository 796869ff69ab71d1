"""API Gateway: one method per route on the right path, 405 for other methods, error envelopes."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from datasets_core.config import Settings
from infra.api import GATEWAY_RESPONSES, MAX_BODY_BYTES, METHOD_NOT_ALLOWED, allow_header
from routes import ROUTES, Route
from tests.infra.cfn import Synth


def test_one_method_per_route_on_its_path(synth: Synth) -> None:
    # Given every method of the API with its path rebuilt from the resource chain,
    methods = Counter((verb, path) for verb, path, _ in synth.methods() if verb != "ANY")
    # then each route has exactly one, and there is no other.
    assert methods == Counter((route.method, route.path) for route in ROUTES.values())


@pytest.mark.parametrize("route", ROUTES.values(), ids=lambda r: r.function)
def test_route_method_is_a_lambda_proxy_to_its_function(synth: Synth, route: Route) -> None:
    [props] = [p for verb, path, p in synth.methods() if (verb, path) == (route.method, route.path)]
    assert props["AuthorizationType"] == "NONE"  # API keys are checked in the function
    integration = props["Integration"]
    assert integration["Type"] == "AWS_PROXY"
    assert integration["IntegrationHttpMethod"] == "POST"
    assert f'"{synth.function_id(route.function)}"' in json.dumps(integration["Uri"])


def test_resources_are_shared_between_routes(synth: Synth) -> None:
    paths = list(synth.resource_paths().values())
    assert len(paths) == len(set(paths))
    expected = set()
    for route in ROUTES.values():
        parts = route.path.strip("/").split("/")
        expected |= {"/" + "/".join(parts[: i + 1]) for i in range(len(parts))}
    assert set(paths) == expected


def test_every_resource_with_methods_answers_405_for_other_methods(synth: Synth) -> None:
    route_paths = {route.path for route in ROUTES.values()}
    any_methods = {path: props for verb, path, props in synth.methods() if verb == "ANY"}
    assert set(any_methods) == route_paths
    for path, props in any_methods.items():
        integration = props["Integration"]
        assert integration["Type"] == "MOCK"
        assert integration["RequestTemplates"]["application/json"] == '{"statusCode": 405}'
        [response] = integration["IntegrationResponses"]
        assert response["StatusCode"] == "405"
        assert json.loads(response["ResponseTemplates"]["application/json"]) == METHOD_NOT_ALLOWED
        # The 405 says which methods the path has, as the local server does (RFC 9110 §15.5.6).
        methods = sorted(route.method for route in ROUTES.values() if route.path == path)
        assert response["ResponseParameters"] == {"method.response.header.Allow": f"'{', '.join(methods)}'"}
        assert props["MethodResponses"] == [
            {"StatusCode": "405", "ResponseParameters": {"method.response.header.Allow": True}}
        ]


def test_the_local_server_and_the_gateway_say_the_same_allow() -> None:
    from local.dispatch import resolve

    refused = resolve("TRACE", "/v1/datasets/abc/rows")
    assert not isinstance(refused, tuple) and refused.status == 405
    methods = [route.method for route in ROUTES.values() if route.path == "/datasets/{dataset_id}/rows"]
    assert refused.headers["Allow"] == allow_header(methods) == "DELETE, GET, PATCH, POST"


def test_stage_v1_throttling_tracing_and_access_logs(synth: Synth) -> None:
    [stage] = synth.of_type("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "v1"
    assert props["TracingEnabled"] is True
    [settings] = props["MethodSettings"]
    # A backstop for all callers together (limits per key are the application's).
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (1000, 1000)
    assert settings["LoggingLevel"] == "ERROR" and settings["DataTraceEnabled"] is False
    access = props["AccessLogSetting"]
    assert "DestinationArn" in access
    fields = json.loads(access["Format"])
    assert fields["requestId"] == "$context.requestId" and fields["status"] == "$context.status"


@pytest.mark.parametrize(
    ("response_type", "status", "code"),
    [
        ("MISSING_AUTHENTICATION_TOKEN", "404", "not_found"),
        ("RESOURCE_NOT_FOUND", "404", "not_found"),
        ("THROTTLED", "429", "rate_limited"),
        ("QUOTA_EXCEEDED", "429", "rate_limited"),
        ("REQUEST_TOO_LARGE", "413", "payload_too_large"),
        ("UNAUTHORIZED", "401", "unauthorized"),
        ("ACCESS_DENIED", "403", "forbidden"),
        ("INTEGRATION_TIMEOUT", "504", "timeout"),
        ("DEFAULT_5XX", None, "internal_error"),
        ("DEFAULT_4XX", None, "bad_request"),
    ],
)
def test_gateway_responses_use_the_error_envelope(
    synth: Synth, response_type: str, status: str | None, code: str
) -> None:
    responses = {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synth.of_type("AWS::ApiGateway::GatewayResponse").values()
    }
    props = responses[response_type]
    assert props.get("StatusCode") == status
    body = json.loads(props["ResponseTemplates"]["application/json"])
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert body["error"]["details"]["request_id"] == "$context.requestId"
    # 429s say when to retry; other answers set no header.
    retry = {"gatewayresponse.header.Retry-After": "'1'"} if status == "429" else None
    assert props.get("ResponseParameters") == retry


def test_a_body_lambda_refuses_is_413_payload_too_large_with_the_functions_limit(synth: Synth) -> None:
    # API Gateway accepts 10 MB but Lambda refuses an invoke over 6 MB; API Gateway answers that
    # with its REQUEST_TOO_LARGE response, which must read as the functions' own 413.
    [props] = [
        r["Properties"]
        for r in synth.of_type("AWS::ApiGateway::GatewayResponse").values()
        if r["Properties"]["ResponseType"] == "REQUEST_TOO_LARGE"
    ]
    assert props["StatusCode"] == "413"
    error = json.loads(props["ResponseTemplates"]["application/json"])["error"]
    limit = Settings().max_body_bytes
    assert MAX_BODY_BYTES == limit == 6 * 1024 * 1024
    assert error == {
        "code": "payload_too_large",
        "message": f"The request body is larger than {limit} bytes.",
        "details": {"limit_bytes": limit, "request_id": "$context.requestId"},
    }


def test_all_declared_gateway_responses_are_synthesized(synth: Synth) -> None:
    synth.template.resource_count_is("AWS::ApiGateway::GatewayResponse", len(GATEWAY_RESPONSES))


def test_outputs(synth: Synth) -> None:
    outputs = synth.data["Outputs"]
    for name in (
        "ApiUrl",
        "DropBucketName",
        "DropPrefix",
        "MetaTableName",
        "RowsTableName",
        "IdempotencyTableName",
        "ImportQueueUrl",
        "StackRegion",
    ):
        assert name in outputs
    assert outputs["DropPrefix"]["Value"] == "drop/"
    api_url = json.dumps(outputs["ApiUrl"]["Value"])
    assert ".execute-api." in api_url and "DeploymentStagev1" in api_url
