"""Evaluate recorded AWS calls against the IAM policies of the synthesized template.

``requests_for(call)`` turns one recorded call into the IAM requests AWS would authorize
(action, resource ARN, condition keys): ``TransactWriteItems`` is one Put/Update/Delete/
ConditionCheckItem request per table it touches, a ``GetObject`` naming a version is
``s3:GetObjectVersion``, a presigned PUT is the ``s3:PutObject`` it authorizes, and so on.
An operation with no mapping here is an error, never silently allowed.

``Roles`` resolves each function's policies (``AWS::IAM::Policy`` attached to its role,
inline role policies, customer managed policies) to concrete ARNs: a logical id becomes the
name the tests used through the function environment that carries it (``META_TABLE`` is
``{"Ref": "MetaTable"}`` in the template and ``datasets-meta`` in the recording), so a new
table, queue or function passed to the functions by environment is resolved with no change
here. A reference that cannot be resolved matches nothing.

Conditions: ``StringEquals``/``StringLike`` (and ``IfExists``), ``ForAllValues:`` and
``ForAnyValue:`` of both, ``Bool``. A condition key the checker cannot know for a request
(say ``dynamodb:LeadingKeys`` of a ``BatchWriteItem``) is an error rather than a guess.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

UNKNOWN = None  # a condition key whose value the recording cannot tell


class CheckerError(Exception):
    """The checker cannot decide (unmapped operation, unsupported policy construct)."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    # condition key -> values; a key missing here is absent from the request, UNKNOWN unknowable.
    context: tuple[tuple[str, tuple[str, ...] | None], ...] = ()
    call: str = ""

    def key(self, name: str) -> tuple[bool, tuple[str, ...] | None]:
        """(present, values) of condition key ``name`` (values None when unknowable)."""
        for key, values in self.context:
            if key.lower() == name.lower():
                return True, values
        return False, ()


# --- calls -> IAM requests -------------------------------------------------------------------------
_DYNAMODB_SINGLE_ITEM = ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
_DYNAMODB_KEYS = ("dynamodb:LeadingKeys", "dynamodb:Attributes", "dynamodb:ReturnValues")
_TRANSACT_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
_DYNAMODB_TABLE_OPERATIONS = {
    *_DYNAMODB_SINGLE_ITEM,
    "Query",
    "Scan",
    "DescribeTable",
    "DescribeTimeToLive",
}
# S3 operation -> (action, action when a VersionId is named, resource is the bucket itself)
_S3_ACTIONS: dict[str, tuple[str, str, bool]] = {
    "GetObject": ("s3:GetObject", "s3:GetObjectVersion", False),
    "HeadObject": ("s3:GetObject", "s3:GetObjectVersion", False),
    "GetObjectAttributes": ("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes", False),
    "GetObjectTagging": ("s3:GetObjectTagging", "s3:GetObjectVersionTagging", False),
    "PutObject": ("s3:PutObject", "s3:PutObject", False),
    "CreateMultipartUpload": ("s3:PutObject", "s3:PutObject", False),
    "UploadPart": ("s3:PutObject", "s3:PutObject", False),
    "CompleteMultipartUpload": ("s3:PutObject", "s3:PutObject", False),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", "s3:AbortMultipartUpload", False),
    "ListParts": ("s3:ListMultipartUploadParts", "s3:ListMultipartUploadParts", False),
    "DeleteObject": ("s3:DeleteObject", "s3:DeleteObjectVersion", False),
    "ListObjects": ("s3:ListBucket", "s3:ListBucket", True),
    "ListObjectsV2": ("s3:ListBucket", "s3:ListBucket", True),
    "HeadBucket": ("s3:ListBucket", "s3:ListBucket", True),
    "ListObjectVersions": ("s3:ListBucketVersions", "s3:ListBucketVersions", True),
    "ListMultipartUploads": ("s3:ListBucketMultipartUploads", "s3:ListBucketMultipartUploads", True),
}
_SQS_ACTIONS = {
    "SendMessage": "sqs:SendMessage",
    "SendMessageBatch": "sqs:SendMessage",
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessage": "sqs:DeleteMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibility": "sqs:ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
    "GetQueueUrl": "sqs:GetQueueUrl",
    "PurgeQueue": "sqs:PurgeQueue",
}
_LAMBDA_ACTIONS = {"Invoke": "lambda:InvokeFunction", "InvokeWithResponseStream": "lambda:InvokeFunction"}


def table_arn(region: str, account: str, table: str, index: str | None = None) -> str:
    arn = f"arn:aws:dynamodb:{region}:{account}:table/{table}"
    return f"{arn}/index/{index}" if index else arn


def queue_arn(url_or_name: str, region: str, account: str) -> str:
    if "://" not in url_or_name:
        return f"arn:aws:sqs:{region}:{account}:{url_or_name}"
    parts = urlparse(url_or_name).path.strip("/").split("/")
    queue_region = region
    host = urlparse(url_or_name).hostname or ""
    match = re.match(r"sqs\.([a-z0-9-]+)\.", host)
    if match:
        queue_region = match.group(1)
    return f"arn:aws:sqs:{queue_region}:{parts[0]}:{parts[-1]}"


def function_arn(name: str, region: str, account: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:lambda:{region}:{account}:function:{name}"


def requests_for(call: Mapping[str, Any], *, region: str, account: str) -> list[Request]:
    """The IAM requests AWS authorizes for one recorded call."""
    service, operation = call["service"], call["operation"]
    text = json.dumps(call, sort_keys=True)
    if service == "dynamodb":
        return _dynamodb_requests(call, operation, region, account, text)
    if service == "s3":
        if operation == "CopyObject":
            source = str(call["copy_source"]).lstrip("/").split("?")[0]
            return [
                Request("s3:GetObject", f"arn:aws:s3:::{source}", call=text),
                Request("s3:PutObject", f"arn:aws:s3:::{call['bucket']}/{call['key']}", call=text),
            ]
        if operation == "DeleteObjects":
            return [
                Request("s3:DeleteObject", f"arn:aws:s3:::{call['bucket']}/{key}", call=text)
                for key in call.get("keys", [])
            ]
        if operation not in _S3_ACTIONS:
            raise CheckerError(f"no IAM mapping for s3 {operation} (add it to tests/iam/policy.py): {text}")
        action, versioned_action, on_bucket = _S3_ACTIONS[operation]
        if on_bucket:
            context = (("s3:prefix", (str(call["prefix"]),)),) if "prefix" in call else ()
            return [Request(action, f"arn:aws:s3:::{call['bucket']}", context, text)]
        action = versioned_action if call.get("version") else action
        return [Request(action, f"arn:aws:s3:::{call['bucket']}/{call['key']}", call=text)]
    if service == "sqs":
        if operation not in _SQS_ACTIONS:
            raise CheckerError(f"no IAM mapping for sqs {operation} (add it to tests/iam/policy.py): {text}")
        return [
            Request(_SQS_ACTIONS[operation], queue_arn(str(call["queue_url"]), region, account), call=text)
        ]
    if service == "lambda":
        if operation not in _LAMBDA_ACTIONS:
            raise CheckerError(
                f"no IAM mapping for lambda {operation} (add it to tests/iam/policy.py): {text}"
            )
        return [
            Request(
                _LAMBDA_ACTIONS[operation], function_arn(str(call["function"]), region, account), call=text
            )
        ]
    raise CheckerError(f"no IAM mapping for {service} {operation} (add it to tests/iam/policy.py): {text}")


def _dynamodb_requests(
    call: Mapping[str, Any], operation: str, region: str, account: str, text: str
) -> list[Request]:
    unknown = tuple((key, UNKNOWN) for key in _DYNAMODB_KEYS)
    if operation in ("BatchWriteItem", "BatchGetItem"):
        tables = sorted(
            {t for t, _ in call["items"]} if operation == "BatchWriteItem" else set(call["tables"])
        )
        return [
            Request(f"dynamodb:{operation}", table_arn(region, account, t), unknown, text) for t in tables
        ]
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return [
            Request(_TRANSACT_ACTIONS[kind], table_arn(region, account, table), unknown, text)
            for kind, table in call["items"]
        ]
    if operation not in _DYNAMODB_TABLE_OPERATIONS:
        raise CheckerError(f"no IAM mapping for dynamodb {operation} (add it to tests/iam/policy.py): {text}")
    resource = table_arn(region, account, call["table"], call.get("index"))
    if operation not in _DYNAMODB_SINGLE_ITEM:
        return [Request(f"dynamodb:{operation}", resource, unknown, text)]
    context: list[tuple[str, tuple[str, ...] | None]] = [
        ("dynamodb:LeadingKeys", tuple(call["leading_keys"]) if "leading_keys" in call else UNKNOWN)
    ]
    if "attributes" in call:
        context.append(("dynamodb:Attributes", tuple(call["attributes"])))
    elif operation != "GetItem":
        context.append(("dynamodb:Attributes", UNKNOWN))
    if "return_values" in call:
        context.append(("dynamodb:ReturnValues", (call["return_values"],)))
    return [Request(f"dynamodb:{operation}", resource, tuple(context), text)]


# --- patterns and conditions ------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _pattern(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{regex}$", re.IGNORECASE if ignore_case else 0)


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return bool(_pattern(pattern, ignore_case).match(value))


def _string_test(operator: str) -> Any:
    if operator == "StringEquals":
        return lambda pattern, value: pattern == value
    if operator == "StringLike":
        return lambda pattern, value: matches(pattern, value)
    if operator == "Bool":
        return lambda pattern, value: str(pattern).lower() == str(value).lower()
    raise CheckerError(f"condition operator {operator!r} is not supported by tests/iam/policy.py")


def condition_holds(operator: str, key: str, expected: Any, request: Request) -> bool:
    quantifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    test = _string_test(base)
    patterns = [str(p) for p in (expected if isinstance(expected, list) else [expected])]
    present, values = request.key(key)
    if present and values is UNKNOWN:
        raise CheckerError(f"cannot evaluate {operator} on {key} for {request.action}: {request.call}")
    if not present:
        # IAM: ForAllValues holds on a missing key; IfExists holds when the key is missing.
        return quantifier == "ForAllValues" or if_exists
    assert values is not None
    if quantifier == "ForAllValues":
        return all(any(test(p, v) for p in patterns) for v in values)
    if quantifier in ("ForAnyValue", ""):
        return any(any(test(p, v) for p in patterns) for v in values)
    raise CheckerError(f"condition quantifier {quantifier!r} is not supported")


@dataclass(frozen=True)
class Statement:
    effect: str
    actions: tuple[str, ...]
    # (as written in the template, the concrete ARN patterns it resolves to)
    resources: tuple[tuple[str, tuple[str, ...]], ...]
    conditions: tuple[tuple[str, str, Any], ...]
    origin: str

    def conditions_hold(self, request: Request) -> bool:
        return all(condition_holds(op, key, value, request) for op, key, value in self.conditions)

    def grants(self, action: str, written_resource: str, request: Request) -> bool:
        """Whether this statement's ``action`` on ``written_resource`` covers ``request``."""
        return (
            matches(action, request.action, ignore_case=True)
            and any(matches(r, request.resource) for r in dict(self.resources)[written_resource])
            and self.conditions_hold(request)
        )

    def applies(self, request: Request) -> bool:
        return any(self.grants(a, r, request) for a in self.actions for r, _ in self.resources)


@dataclass(frozen=True)
class Grant:
    """One (action, resource) pair of an Allow statement, for the "unused" report."""

    action: str
    resource: str  # as written in the template (compact JSON for intrinsics)
    origin: str


def decide(statements: Iterable[Statement], request: Request) -> bool:
    statements = list(statements)
    if any(s.effect == "Deny" and s.applies(request) for s in statements):
        return False
    return any(s.effect == "Allow" and s.applies(request) for s in statements)


def unused(statements: Iterable[Statement], requests: list[Request]) -> list[Grant]:
    """Allowed (action, resource) pairs that no request needed."""
    found = []
    for statement in statements:
        if statement.effect != "Allow":
            continue
        for action in statement.actions:
            for resource, _ in statement.resources:
                if not any(statement.grants(action, resource, r) for r in requests):
                    found.append(Grant(action, resource, statement.origin))
    return found


# --- the template's roles -------------------------------------------------------------------------
def compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass
class Roles:
    """Resolves the template's policies for our functions, with the names the tests used."""

    template: Mapping[str, Any]
    names: Mapping[str, list[str]]  # setting (environment variable) -> values seen in the tests
    region: str
    account: str
    _ref_names: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for resource in self.resources.values():
            if resource["Type"] != "AWS::Lambda::Function":
                continue
            variables = resource["Properties"].get("Environment", {}).get("Variables", {})
            for variable, value in variables.items():
                if isinstance(value, dict) and set(value) == {"Ref"} and variable in self.names:
                    self._ref_names.setdefault(value["Ref"], list(self.names[variable]))

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template["Resources"])

    def function_ids(self) -> dict[str, str]:
        """Handler module (our function's name) -> logical id, for ``<name>.handler.handler``."""
        found = {}
        for logical_id, resource in self.resources.items():
            handler = (
                resource["Properties"].get("Handler", "")
                if resource["Type"] == "AWS::Lambda::Function"
                else ""
            )
            if handler.endswith(".handler.handler"):
                found[handler.split(".")[0]] = logical_id
        return found

    # resolving intrinsics to concrete strings (several when a setting had several values)
    def resolve(self, value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, dict) and len(value) == 1:
            [(function, argument)] = value.items()
            if function == "Ref":
                pseudo = {
                    "AWS::Partition": "aws",
                    "AWS::Region": self.region,
                    "AWS::AccountId": self.account,
                    "AWS::URLSuffix": "amazonaws.com",
                }
                if argument in pseudo:
                    return [pseudo[argument]]
                return self._ref_names.get(argument) or [f"unresolved:{argument}"]
            if function == "Fn::GetAtt":
                logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self._attribute(logical_id, attribute)
            if function == "Fn::Join":
                separator, parts = argument
                return [separator.join(c) for c in itertools.product(*(self.resolve(p) for p in parts))]
        raise CheckerError(f"cannot resolve {compact(value)} (extend Roles.resolve)")

    def _attribute(self, logical_id: str, attribute: str) -> list[str]:
        names = self._ref_names.get(logical_id)
        kind = self.resources.get(logical_id, {}).get("Type")
        if attribute != "Arn" or not names:
            return [f"unresolved:{logical_id}.{attribute}"]
        region, account = self.region, self.account
        if kind == "AWS::DynamoDB::Table":
            return [table_arn(region, account, n) for n in names]
        if kind == "AWS::S3::Bucket":
            return [f"arn:aws:s3:::{n}" for n in names]
        if kind == "AWS::SQS::Queue":
            return [queue_arn(n, region, account) for n in names]
        if kind == "AWS::Lambda::Function":
            return [function_arn(n, region, account) for n in names]
        return [f"unresolved:{logical_id}.{attribute}"]

    def role_of(self, function_id: str) -> str:
        role = self.resources[function_id]["Properties"]["Role"]
        if not (isinstance(role, dict) and "Fn::GetAtt" in role):
            raise CheckerError(f"{function_id}: role {compact(role)} is not a role of this template")
        return str(role["Fn::GetAtt"][0])

    def documents(self, role_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(origin, policy document) of every policy of the template that applies to the role."""
        ref = {"Ref": role_id}
        role = self.resources[role_id]["Properties"]
        found = [
            (f"{role_id} inline {p.get('PolicyName')}", p["PolicyDocument"]) for p in role.get("Policies", [])
        ]
        for logical_id, resource in self.resources.items():
            props = resource.get("Properties", {})
            attached = ref in props.get("Roles", [])
            if resource["Type"] == "AWS::IAM::ManagedPolicy":
                attached = attached or {"Ref": logical_id} in role.get("ManagedPolicyArns", [])
            elif resource["Type"] != "AWS::IAM::Policy":
                continue
            if attached:
                found.append((logical_id, props["PolicyDocument"]))
        return found

    def aws_managed_policies(self, role_id: str) -> list[str]:
        """Managed policies of the role that the template does not define (their content is unknown)."""
        own = {
            f'{{"Ref":"{k}"}}' for k, r in self.resources.items() if r["Type"] == "AWS::IAM::ManagedPolicy"
        }
        arns = self.resources[role_id]["Properties"].get("ManagedPolicyArns", [])
        return [compact(a) for a in arns if compact(a) not in own]

    def statements(self, function: str) -> list[Statement]:
        role_id = self.role_of(self.function_ids()[function])
        out = []
        for origin, document in self.documents(role_id):
            for index, statement in enumerate(_as_list(document["Statement"])):
                if "NotAction" in statement or "NotResource" in statement or "NotPrincipal" in statement:
                    raise CheckerError(f"{origin}: NotAction/NotResource are not supported by the checker")
                conditions = tuple(
                    (operator, key, value)
                    for operator, block in statement.get("Condition", {}).items()
                    for key, value in block.items()
                )
                resources = tuple(
                    (compact(r), tuple(self.resolve(r))) for r in _as_list(statement.get("Resource", []))
                )
                out.append(
                    Statement(
                        effect=statement["Effect"],
                        actions=tuple(_as_list(statement["Action"])),
                        resources=resources,
                        conditions=conditions,
                        origin=f"{origin} #{statement.get('Sid', index)}",
                    )
                )
        return out
