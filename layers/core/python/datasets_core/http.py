"""The API's HTTP plumbing on Powertools' REST resolver: one ``Api`` per Lambda function.

A handler module looks like::

    api = Api(ROUTES["get_dataset"])

    @api.route
    def get_dataset(dataset_id: str) -> dict:
        return ok(datasets.get(api.principal, dataset_id))

    handler = api.handler

``Api`` takes method, path and scope from the route table, authenticates the caller and
checks the scope in a middleware, and renders every error (ours, Powertools' validation
errors, anything unexpected) in the envelope of SPEC §2.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, Protocol, get_origin, get_type_hints

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.router import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from msgspec import Struct

from . import auth, jsonutil, ratelimit
from .config import settings
from .errors import ApiError, InsufficientScope, InvalidBody, PayloadTooLarge, Unauthorized
from .jsonutil import dumps
from .observability import logger

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_NOT_UTF8 = "The request body is not valid UTF-8 (JSON bodies are UTF-8 text)."
_TOO_DEEP = "The request body is nested too deeply."
_TOO_LONG = "The request body holds a number with too many digits."
_NOT_UNICODE = (
    "The request body holds a \\u escape of a lone surrogate (\\ud800-\\udfff without its pair), "
    "which is not a character; send text as UTF-8 or escape whole characters."
)
# Parameter names a client would put a key under; a value under one of them is checked against
# the key store too (a foreign-format bootstrap key looks like any other token).
_KEY_QUERY_PARAMS = {"api_key", "apikey", "key", "access_token", "token", "x-api-key"}


class RouteLike(Protocol):
    method: str
    path: str
    function: str
    scope: str | None
    summary: str


def powertools_path(path: str) -> str:
    """API Gateway's ``/datasets/{dataset_id}`` → Powertools' ``/datasets/<dataset_id>``."""
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def envelope_error(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    # An error that says when to come back (a replace import writing, a throttle) says it in
    # the standard header too, which HTTP clients' retry logic reads.
    retry_after = (details or {}).get("retry_after_seconds")
    all_headers = dict(headers or {})
    if retry_after is not None:
        all_headers.setdefault("Retry-After", str(retry_after))
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=dumps(body),
        headers=all_headers or None,
    )


def ok(data: Any, meta: dict[str, Any] | None = None, status: int = 200) -> Response:
    body: dict[str, Any] = {"data": data}
    if meta is not None:
        body["meta"] = meta
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=dumps(body))


def created(data: Any) -> Response:
    return ok(data, status=201)


_CSV_FORM = "POST /v1/datasets/{dataset_id}/rows with 'Content-Type: text/csv'"


def not_json(sent_content_type: str | None, text: str | None = None) -> InvalidBody:
    """The error for a body that does not parse as JSON, saying what was sent when we can tell.

    Bodies are read as JSON whatever their Content-Type (``_as_json_request``), so a form or
    CSV body is only refused once it turns out not to be JSON. Rows in CSV have their own form
    (``POST .../rows`` with ``text/csv``): a CSV body anywhere else is pointed there."""
    sent = (sent_content_type or "").split(";")[0].strip().lower()
    details = {"content_type": sent_content_type} if sent_content_type else {}
    if sent == "text/csv":
        return InvalidBody(
            "This endpoint takes JSON; the body was sent as text/csv. Send JSON "
            '(Content-Type: application/json), e.g. {"rows": [{"name": "Acme"}]}. To insert rows from '
            f"CSV, use {_CSV_FORM}; to load a CSV file, use POST /v1/datasets/{{dataset_id}}/uploads or "
            "the drop folder.",
            details,
        )
    csv_like = text is not None and looks_like_csv(text)
    if sent in _FORM_TYPES:
        message = (
            f"This endpoint takes JSON; the body was sent as a form ({sent}) and is not JSON. Send "
            "a JSON body with 'Content-Type: application/json', e.g. "
            """curl -H 'Content-Type: application/json' -d '{"name": "Leads"}'."""
        )
        if csv_like:
            message += (
                f" If the body is CSV, send it to {_CSV_FORM} with curl's --data-binary @file.csv "
                "(-d sends a form and drops the file's line breaks)."
            )
        return InvalidBody(message, details)
    if csv_like:
        return InvalidBody(
            f"The request body is not valid JSON; it looks like CSV. To insert CSV rows, use {_CSV_FORM}.",
            details,
        )
    return InvalidBody("The request body is not valid JSON.", details)


def looks_like_csv(text: str) -> bool:
    """Whether a body that is not JSON reads like CSV: a first line of comma-separated names."""
    head = text.lstrip("\ufeff \t\r\n")
    first = head.split("\n", 1)[0]
    return bool(head) and head[0] not in '{["' and "," in first


def _validation_error(exc: RequestValidationError, sent_content_type: str | None = None) -> Response:
    errors = exc.errors()
    first = errors[0] if errors else {}
    location = first.get("loc", ("body",))
    where = location[0] if location else "body"
    field = ".".join(str(part) for part in location[1:]) or None
    reason = first.get("msg", "invalid value")
    if where == "body" and first.get("type") == "json_invalid":
        try:
            text = current().event.decoded_body
        except (UnicodeDecodeError, ValueError):
            text = None
        refusal = not_json(sent_content_type, text)
        return envelope_error(400, refusal.code, refusal.message, refusal.details)
    code = "invalid_body" if where == "body" else "invalid_query"
    message = f"{field}: {reason}" if field else reason
    details = {
        "errors": [
            {"location": ".".join(map(str, e.get("loc", ()))), "message": e.get("msg", "")}
            for e in errors[:20]
        ]
    }
    return envelope_error(400, code, message, details)


class Invocation(Struct, frozen=True):
    """What one invocation of an endpoint knows about its request."""

    event: APIGatewayProxyEvent
    principal: auth.Principal | None
    lambda_context: Any
    sent_content_type: str | None = None  # what the caller declared (bodies are read as JSON)

    @property
    def request_id(self) -> str | None:
        return getattr(self.lambda_context, "aws_request_id", None)


# The invocation being served by this thread. Powertools keeps the current event and Lambda
# context on its router *class* (one per process); Lambda runs one event per process, but
# the route logic must not depend on that, so it reads its request from here.
_invocation: ContextVar[Invocation] = ContextVar("invocation")
# Serializes Powertools' own phases (routing, validation, rendering) within a process, for
# the reason above; the route logic itself runs outside it. Uncontended on Lambda.
_POWERTOOLS_PHASES = threading.RLock()
_READ_METHODS = frozenset({"GET", "HEAD"})
# Rate-limit counting beside the reads it admits (``_count_request``).
_RATE_CHECKS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rate-limit")


def current() -> Invocation:
    return _invocation.get()


@contextmanager
def _outside_powertools() -> Iterator[None]:
    _POWERTOOLS_PHASES.release()
    try:
        yield
    finally:
        _POWERTOOLS_PHASES.acquire()


class Api:
    """One endpoint: a Powertools resolver wired with auth, scope and the error envelope."""

    def __init__(self, route: RouteLike) -> None:
        self.route_spec = route
        self.router = Router()
        self.resolver = _resolver(validation=False)

    # --- registration -------------------------------------------------------------------
    def route(self, func: Callable[..., Any]) -> Callable[..., Any]:
        spec = self.route_spec
        if _declares_params(func):
            # Only endpoints declaring a request model (``Annotated[Model, Body()]``) turn on
            # Powertools' validation: it imports pydantic, which would otherwise cost every
            # function's cold start about 0.15 s for nothing.
            self.resolver = _resolver(validation=True)

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            with _outside_powertools():
                return func(*args, **kwargs)

        self.router.route(
            powertools_path(spec.path), spec.method, summary=spec.summary or None, operation_id=spec.function
        )(run)
        self.resolver.include_router(self.router)
        return func

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        # Admission runs before the resolver: Powertools validates bodies before any
        # middleware, and an anonymous caller must get 401, not a hint about the body shape.
        try:
            principal = self._admit(event)
            counted = self._count_request(event, principal)
        except ApiError as exc:
            return _error_response(exc)
        if principal is not None:
            logger.append_keys(workspace=principal.workspace, key_id=principal.key_id)
        request = _as_json_request(event)
        sent_type = _header_ci(event.get("headers"), "content-type")
        token = _invocation.set(Invocation(APIGatewayProxyEvent(request), principal, context, sent_type))
        try:
            with _POWERTOOLS_PHASES:
                answer = self.resolver.resolve(request, context)
        finally:
            _invocation.reset(token)
        if counted is not None:
            try:
                counted.result()
            except ApiError as exc:  # over the key's limit: the read's answer is not given
                return _error_response(exc)
        return answer

    @staticmethod
    def _count_request(event: dict[str, Any], principal: auth.Principal | None) -> Future[None] | None:
        """Count the request against its key's rate limit. A write is counted before it runs
        (429 writes nothing); a read is counted while it runs and its answer swapped for the
        429 if the limit was reached, so the counter's occasional write (a new slice of the
        key's window, ``ratelimit``) is not one more round trip before every page."""
        if principal is None:
            return None
        if event.get("httpMethod") in _READ_METHODS:
            return _RATE_CHECKS.submit(ratelimit.admit, principal.workspace, principal.key_id)
        ratelimit.admit(principal.workspace, principal.key_id)
        return None

    # --- request helpers ----------------------------------------------------------------
    @property
    def principal(self) -> auth.Principal:
        principal = current().principal
        assert principal is not None, "public routes have no principal"
        return principal

    @property
    def event(self) -> APIGatewayProxyEvent:
        return current().event

    def body_text(self) -> str:
        """The body as text; ``invalid_body`` when it is not UTF-8 (SPEC §2: JSON in UTF-8)."""
        try:
            return self.event.decoded_body or ""
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidBody(_NOT_UTF8) from exc

    def json_body(self) -> Any:
        """The body as JSON (numbers exact), or ``invalid_body``; for endpoints whose body has
        several shapes."""
        raw = self.body_text()
        if raw == "":
            raise InvalidBody("A JSON request body is required.")
        try:
            return _request_json(raw)
        except (ValueError, TypeError) as exc:  # not JSON at all: say how to send this endpoint's body
            raise not_json(current().sent_content_type, raw) from exc

    def query_params(self) -> dict[str, list[str]]:
        """Every query parameter with all of its values (filters may repeat a column)."""
        return dict(self.event.multi_value_query_string_parameters or {})

    def header(self, name: str) -> str | None:
        return _header_ci(self.event.headers, name)

    def media_type(self) -> str:
        """The body's declared media type, lowercase, without parameters ('' when none)."""
        return (current().sent_content_type or "").split(";")[0].strip().lower()

    def once(self, compute: Callable[[], Response]) -> Response:
        """Run a write at most once per ``Idempotency-Key`` header (see ``idempotency``)."""
        from . import idempotency  # only write endpoints pay for the idempotency utility

        event = self.event
        request = {
            "workspace": self.principal.workspace,
            "key": self.header(idempotency.HEADER),
            "method": event.http_method,
            "path": event.path,
            "query": self.query_params(),
            "body": self.body_text(),
        }
        return idempotency.once(request, compute, current().lambda_context)

    # --- admission ----------------------------------------------------------------------
    def _admit(self, event: dict[str, Any]) -> auth.Principal | None:
        """Size, key and scope checks; the authenticated principal (None on public routes)."""
        body = event.get("body") or ""
        size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode("utf-8"))
        if size > settings().max_body_bytes:
            raise PayloadTooLarge(
                f"The request body is larger than {settings().max_body_bytes} bytes.",
                {"limit_bytes": settings().max_body_bytes},
            )
        scope = self.route_spec.scope
        if scope is None:
            return None
        if _key_in_query(event):
            raise Unauthorized(
                "API keys are not accepted in the query string (URLs end up in logs); "
                "send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'."
            )
        principal = auth.authenticate(auth.token_from_headers(event.get("headers") or {}))
        if scope not in principal.scopes:
            raise InsufficientScope(scope)
        return principal


def _key_in_query(event: dict[str, Any]) -> bool:
    """Whether the query string carries an API key: a value holding a well-formed key of this
    API, or, under a key-like parameter name, a token that authenticates. A column named
    ``key`` or ``token`` is filtered like any other (``?key=eq.color``)."""
    params = event.get("multiValueQueryStringParameters") or {
        name: [value] for name, value in (event.get("queryStringParameters") or {}).items()
    }
    for name, values in params.items():
        for value in values or ():
            if auth.contains_key(value):
                return True
            if name.lower() in _KEY_QUERY_PARAMS and auth.authenticates(value):
                return True
    return False


def _error_response(exc: ApiError) -> dict[str, Any]:
    return _proxy_response(envelope_error(exc.status, exc.code, exc.message, exc.details, exc.headers))


def _proxy_response(response: Response) -> dict[str, Any]:
    extra = {name: str(value) for name, value in response.headers.items() if name.lower() != "content-type"}
    return {
        "statusCode": response.status_code,
        "headers": {"Content-Type": content_types.APPLICATION_JSON, **extra},
        "body": response.body,
        "isBase64Encoded": False,
    }


def _as_json_request(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its body declared JSON, whatever Content-Type the caller sent.

    The API speaks only JSON (SPEC §2), but Powertools' validation parses a body by its
    Content-Type, and ``curl -d`` sends ``application/x-www-form-urlencoded`` by default: the
    JSON body would be read as one form field and refused with a baffling message."""
    if not event.get("body"):
        return event
    json_type = content_types.APPLICATION_JSON
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    return {
        **event,
        "headers": {**headers, "Content-Type": json_type},
        "multiValueHeaders": {**multi, "Content-Type": [json_type]},
    }


def _header_ci(headers: dict[str, str] | None, name: str) -> str | None:
    lowered = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == lowered:
            return value
    return None


def _declares_params(func: Callable[..., Any]) -> bool:
    """Whether a parameter of ``func`` is ``Annotated`` (Powertools' ``Body()``, ``Query()``...)."""
    hints = get_type_hints(func, include_extras=True)
    return any(get_origin(hint) is Annotated for name, hint in hints.items() if name != "return")


def _request_json(text: str) -> Any:
    """How Powertools parses a body for a request model: every refusal is the caller's 400."""
    try:
        return jsonutil.loads(text)
    except jsonutil.TooDeep as exc:
        raise InvalidBody(_TOO_DEEP) from exc
    except jsonutil.NumberTooLong as exc:
        raise InvalidBody(_TOO_LONG) from exc
    except jsonutil.NotUnicode as exc:
        raise InvalidBody(_NOT_UNICODE) from exc


def _resolver(*, validation: bool) -> APIGatewayRestResolver:
    resolver = APIGatewayRestResolver(
        enable_validation=validation, serializer=dumps, json_body_deserializer=_request_json
    )

    @resolver.exception_handler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        details = exc.details
        if exc.code == "internal_error":  # SPEC §2: with a request id in ``details``
            details = {**details, "request_id": current().request_id}
        return envelope_error(exc.status, exc.code, exc.message, details, exc.headers)

    # Bodies Powertools parses for a request model: bytes that are not UTF-8, JSON nested past
    # the parser's depth. Both are the caller's input, never a server error.
    @resolver.exception_handler(UnicodeDecodeError)
    def _not_utf8(_exc: UnicodeDecodeError) -> Response:
        return envelope_error(400, "invalid_body", _NOT_UTF8)

    @resolver.exception_handler(RecursionError)
    def _too_deep(_exc: RecursionError) -> Response:
        return envelope_error(400, "invalid_body", _TOO_DEEP)

    @resolver.exception_handler(RequestValidationError)
    def _request_validation(exc: RequestValidationError) -> Response:
        return _validation_error(exc, current().sent_content_type)

    @resolver.not_found
    def _not_found(_exc: Exception) -> Response:
        return envelope_error(404, "not_found", "No such endpoint.")

    @resolver.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        request_id = current().request_id
        logger.exception("unhandled error", extra={"request_id": request_id})
        return envelope_error(
            500, "internal_error", "Something went wrong on our side.", {"request_id": request_id}
        )

    return resolver
