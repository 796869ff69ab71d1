"""Build the API Gateway REST proxy event that API Gateway would hand a function.

Used by the local server and by the integration tests, so both exercise handlers exactly as
deployed: stage ``v1``, ``path`` without the stage, ``resource`` with ``{param}`` names.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote

STAGE = "v1"


def match_path(template: str, path: str) -> dict[str, str] | None:
    """Path parameters when ``path`` fits the route ``template`` (``/datasets/{dataset_id}``)."""
    pattern = "^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$"
    match = re.match(pattern, path)
    # API Gateway hands path parameters to the function decoded (the path stays encoded).
    return {name: unquote(value) for name, value in match.groupdict().items()} if match else None


def proxy_event(
    *,
    method: str,
    resource: str,
    path: str,
    path_parameters: dict[str, str] | None = None,
    query_string: str = "",
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """``path`` is relative to the stage (``/datasets/abc``), as API Gateway passes it."""
    pairs = parse_qsl(query_string, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_query.setdefault(name, []).append(value)
    header_map = dict(headers or {})
    multi_headers = {name: [value] for name, value in header_map.items()}
    is_base64 = False
    body_text: str | None
    if body is None or body == b"" or body == "":
        body_text = None
    elif isinstance(body, bytes):
        try:
            body_text = body.decode("utf-8")
        except UnicodeDecodeError:
            body_text, is_base64 = base64.b64encode(body).decode(), True
    else:
        body_text = body
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": header_map or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/{STAGE}{path}",
            "stage": STAGE,
            "requestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": source_ip, "userAgent": header_map.get("User-Agent", "")},
            "protocol": "HTTP/1.1",
            "domainName": "localhost",
            "apiId": "local",
            "accountId": "123456789012",
        },
        "body": body_text,
        "isBase64Encoded": is_base64,
    }


class LambdaContext:
    """The few attributes of the Lambda context our handlers and Powertools read.

    ``deadline`` is wall-clock time (``time.time()``), so a context described by one process
    (the local stack) and built in another (a worker, ``local/runtime.py``) agrees on it.
    """

    def __init__(
        self,
        function_name: str,
        timeout_seconds: float = 29.0,
        *,
        request_id: str | None = None,
        memory_mb: int = 512,
        deadline: float | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = deadline if deadline is not None else time.time() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))
