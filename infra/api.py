"""The REST API: one Lambda function, one method and exactly its route's capabilities per route in ROUTES.

Everything here is derived from ``functions/routes.py``; adding a route needs no change in
this file. Auth happens inside the functions (API keys in the Authorization header), so the
methods are open at the gateway; unknown paths, wrong methods and gateway-level failures
still answer in the SPEC §2 error envelope.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from datasets_core.auth import UNAUTHORIZED
from infra import grants
from routes import ROUTES, Route

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = ROOT / "functions"
STAGE = "v1"

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
API_MEMORY_MB = 512
# API Gateway gives up on an integration after 29 s; a function running longer is wasted.
API_TIMEOUT = Duration.seconds(29)

# A coarse backstop for all callers together, not the rate limit: limits per API key are the
# application's (in the auth path, SPEC §2), so one noisy key cannot take the whole API. This
# only caps the sum (API Gateway's account default is 10,000 req/s); the burst stays within
# Lambda's default account concurrency (1,000).
THROTTLE_RATE = 1000
THROTTLE_BURST = 1000
# What a throttled caller is told to wait (seconds): the stage's token bucket refills each second.
THROTTLED_RETRY_AFTER = 1
# Lambda's synchronous invoke limit: a request whose event passes it never reaches a function.
MAX_BODY_BYTES = 6 * 1024 * 1024

ALLOW = "Allow"
METHOD_NOT_ALLOWED = {
    "error": {"code": "method_not_allowed", "message": "Method not allowed.", "details": {}}
}
# Content types the 405 mock answers for; anything else gets API Gateway's 415 (DEFAULT_4XX).
_MOCK_CONTENT_TYPES = (
    "application/json",
    "text/plain",
    "text/csv",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "application/octet-stream",
)


def handler_for(function: str) -> str:
    """The Lambda handler string of ``functions/<function>/handler.py``."""
    return f"{function}.handler.handler"


def shared_code() -> lambda_.Code:
    """The one code asset every function ships: the whole ``functions`` folder (small)."""
    return lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=["__pycache__", "*.pyc"])


def python_function(
    scope: Construct,
    construct_id: str,
    *,
    function: str,
    code: lambda_.Code,
    layers: Iterable[lambda_.ILayerVersion],
    environment: Mapping[str, str],
    memory_size: int,
    timeout: Duration,
    description: str = "",
    reserved_concurrency: int | None = None,
    ephemeral_storage: Size | None = None,
) -> lambda_.Function:
    """A Python 3.13 arm64 function for ``functions/<function>`` with a one-month log group.

    Its role starts with nothing but writing to that log group (AWS's managed
    AWSLambdaBasicExecutionRole would allow creating and writing every log group of the
    account); the caller adds the function's capabilities (``infra/grants.py``).
    """
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
    )
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"Lambda function {function}",
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]
        )
    )
    return lambda_.Function(
        scope,
        construct_id,
        code=code,
        handler=handler_for(function),
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        layers=list(layers),
        environment=dict(environment),
        memory_size=memory_size,
        timeout=timeout,
        log_group=log_group,
        role=role,
        tracing=lambda_.Tracing.ACTIVE,
        description=description[:256],
        reserved_concurrent_executions=reserved_concurrency,
        ephemeral_storage_size=ephemeral_storage,
    )


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def _error_template(code: str, message: str, details: Mapping[str, object] | None = None) -> str:
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": {**(details or {}), "request_id": "$context.requestId"},
        }
    }
    return json.dumps(body, separators=(",", ":"))


@dataclass(frozen=True)
class GatewayResponse:
    """An API Gateway answer (no function ran) in the SPEC §2 envelope."""

    type: apigw.ResponseType
    status: str | None  # None keeps API Gateway's status code
    code: str
    message: str
    details: Mapping[str, object] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)


_RETRY = {"Retry-After": f"'{THROTTLED_RETRY_AFTER}'"}  # a static header value is quoted
GATEWAY_RESPONSES: tuple[GatewayResponse, ...] = (
    GatewayResponse(
        apigw.ResponseType.DEFAULT_4_XX, None, "bad_request", "The request could not be processed."
    ),
    GatewayResponse(apigw.ResponseType.DEFAULT_5_XX, None, "internal_error", "Internal error."),
    GatewayResponse(apigw.ResponseType.UNAUTHORIZED, "401", "unauthorized", UNAUTHORIZED),
    GatewayResponse(apigw.ResponseType.ACCESS_DENIED, "403", "forbidden", "Access denied."),
    # The stage's throttle (a backstop for all callers together; per-key limits are the app's).
    GatewayResponse(
        apigw.ResponseType.THROTTLED, "429", "rate_limited", "Too many requests; retry later.", headers=_RETRY
    ),
    # No usage plan sets quotas; should one be attached, its refusals keep the envelope too.
    GatewayResponse(
        apigw.ResponseType.QUOTA_EXCEEDED, "429", "rate_limited", "Request quota exceeded.", headers=_RETRY
    ),
    # Also what API Gateway answers when Lambda refuses an invoke whose event passes 6 MB
    # ("Request Too Long"): the body never reaches a function (see README, Limits).
    GatewayResponse(
        apigw.ResponseType.REQUEST_TOO_LARGE,
        "413",
        "payload_too_large",
        f"The request body is larger than {MAX_BODY_BYTES} bytes.",
        details={"limit_bytes": MAX_BODY_BYTES},
    ),
    # What API Gateway answers for a path no resource matches.
    GatewayResponse(apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "404", "not_found", "Not found."),
    GatewayResponse(apigw.ResponseType.RESOURCE_NOT_FOUND, "404", "not_found", "Not found."),
    GatewayResponse(apigw.ResponseType.BAD_REQUEST_BODY, "400", "invalid_body", "Invalid request body."),
    GatewayResponse(
        apigw.ResponseType.BAD_REQUEST_PARAMETERS, "400", "invalid_query", "Invalid request parameters."
    ),
    GatewayResponse(
        apigw.ResponseType.UNSUPPORTED_MEDIA_TYPE, "415", "unsupported_media_type", "Unsupported media type."
    ),
    GatewayResponse(apigw.ResponseType.INTEGRATION_FAILURE, "502", "internal_error", "Internal error."),
    GatewayResponse(apigw.ResponseType.INTEGRATION_TIMEOUT, "504", "timeout", "The request took too long."),
)


class Api(Construct):
    """RestApi (stage ``v1``) + one function per route, each granted exactly what its route names."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        targets: grants.Targets,
        code: lambda_.Code,
        core_layer: lambda_.ILayerVersion,
        environment: Mapping[str, str],
        extra_layers: Mapping[str, lambda_.ILayerVersion] | None = None,
        routes: Mapping[str, Route] = ROUTES,
    ) -> None:
        super().__init__(scope, construct_id)

        self.functions: dict[str, lambda_.Function] = {}
        extra = dict(extra_layers or {})
        for name, route in routes.items():
            unknown = set(route.layers) - set(extra)
            if unknown:
                raise ValueError(f"route {name}: no layer named {sorted(unknown)}")
            fn = python_function(
                self,
                _pascal(name),
                function=name,
                code=code,
                layers=[core_layer, *(extra[layer] for layer in route.layers)],
                environment=environment,
                memory_size=API_MEMORY_MB,
                timeout=API_TIMEOUT,
                description=f"{route.method} /{STAGE}{route.path}: {route.summary}",
            )
            grants.grant(fn, route.grants, targets, authenticated=route.scope is not None)
            self.functions[name] = fn

        self.access_logs = logs.LogGroup(
            self, "AccessLogs", retention=logs.RetentionDays.ONE_MONTH, removal_policy=RemovalPolicy.DESTROY
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=Stack.of(self).stack_name,
            description="Datasets API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Access and execution logging need the account-level API Gateway CloudWatch role.
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=THROTTLE_RATE,
                throttling_burst_limit=THROTTLE_BURST,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # bodies carry user data and keys: never log them
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=_access_log_format(),
            ),
        )
        self._add_methods(routes)
        self._add_gateway_responses()

    @property
    def url(self) -> str:
        return self.rest_api.url

    def _add_methods(self, routes: Mapping[str, Route]) -> None:
        with_methods: dict[str, tuple[apigw.IResource, list[str]]] = {}
        for name, route in routes.items():
            resource = self.rest_api.root.resource_for_path(route.path)
            resource.add_method(
                route.method,
                apigw.LambdaIntegration(self.functions[name], proxy=True, allow_test_invoke=False),
                authorization_type=apigw.AuthorizationType.NONE,
            )
            with_methods.setdefault(resource.path, (resource, []))[1].append(route.method)
        # A resource that exists but lacks the method answers 405 with the methods it has
        # (``Allow``); API Gateway prefers the specific method over ANY. Resources with no
        # method at all stay 404 (not_found).
        for with_method, methods in with_methods.values():
            with_method.add_method(
                "ANY",
                _method_not_allowed_integration(methods),
                method_responses=[
                    apigw.MethodResponse(
                        status_code="405", response_parameters={f"method.response.header.{ALLOW}": True}
                    )
                ],
            )

    def _add_gateway_responses(self) -> None:
        for response in GATEWAY_RESPONSES:
            self.rest_api.add_gateway_response(
                response.type.response_type,
                type=response.type,
                status_code=response.status,
                response_headers=dict(response.headers) or None,
                templates={
                    "application/json": _error_template(response.code, response.message, response.details)
                },
            )


def allow_header(methods: Iterable[str]) -> str:
    """The ``Allow`` header of a 405: the methods the resource has, as the local server says them."""
    return ", ".join(sorted(set(methods)))


def _method_not_allowed_integration(methods: Iterable[str]) -> apigw.MockIntegration:
    body = json.dumps(METHOD_NOT_ALLOWED, separators=(",", ":"))
    return apigw.MockIntegration(
        request_templates={content_type: '{"statusCode": 405}' for content_type in _MOCK_CONTENT_TYPES},
        passthrough_behavior=apigw.PassthroughBehavior.NEVER,
        integration_responses=[
            apigw.IntegrationResponse(
                status_code="405",
                response_templates={"application/json": body},
                # A static header value is quoted.
                response_parameters={f"method.response.header.{ALLOW}": f"'{allow_header(methods)}'"},
            )
        ],
    )


def _access_log_format() -> apigw.AccessLogFormat:
    fields = apigw.AccessLogField
    return apigw.AccessLogFormat.custom(
        json.dumps(
            {
                "requestId": fields.context_request_id(),
                "extendedRequestId": fields.context_extended_request_id(),
                "requestTime": fields.context_request_time(),
                "ip": fields.context_identity_source_ip(),
                "userAgent": fields.context_identity_user_agent(),
                "httpMethod": fields.context_http_method(),
                "resourcePath": fields.context_resource_path(),
                "path": fields.context_path(),
                "protocol": fields.context_protocol(),
                "status": fields.context_status(),
                "responseLength": fields.context_response_length(),
                "responseLatency": fields.context_response_latency(),
                "integrationLatency": fields.context_integration_latency(),
                "integrationStatus": fields.context_integration_status(),
                "errorType": fields.context_error_response_type(),
                "errorMessage": fields.context_error_message(),
                "xrayTraceId": fields.context_xray_trace_id(),
            }
        )
    )
