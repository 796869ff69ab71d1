"""SPEC §11: every AWS call a function makes is allowed by its role, and nothing more is.

The calls are recorded per function during the integration tests (``tests/iam/recorder.py``,
written to ``build/iam/calls.json``); ``make test`` runs tests/integration before tests/infra,
so the recording is fresh. Each recorded call becomes the IAM requests AWS would authorize
and is evaluated against the function's policies in the synthesized template
(``tests/iam/policy.py``). The function list is the stack's own: a new function is checked
without any change here, and fails until the integration tests exercise it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.iam import policy
from tests.iam.allowances import ALLOWANCES, ANY_RESOURCE, EVENT_SOURCE, LOG_GROUP, Allowance
from tests.iam.recorder import FORMAT_VERSION, RECORDING, fingerprint
from tests.infra.cfn import Synth

RERUN = "run the integration tests (`make test-integration`; `make test` runs them before tests/infra)"


@pytest.fixture(scope="module")
def recording() -> dict[str, Any]:
    if not RECORDING.exists():
        pytest.fail(f"no IAM call recording at {RECORDING}: {RERUN}", pytrace=False)
    data: dict[str, Any] = json.loads(RECORDING.read_text())
    if data.get("format") != FORMAT_VERSION:
        pytest.fail(f"{RECORDING} has another format: {RERUN}", pytrace=False)
    if data["fingerprint"] != fingerprint():
        pytest.fail(
            f"{RECORDING} was recorded from other code (functions/, datasets_core, tests/integration "
            f"or tests/iam changed since): {RERUN}",
            pytrace=False,
        )
    return data


@pytest.fixture(scope="module")
def complete(recording: dict[str, Any]) -> dict[str, Any]:
    """The recording of a whole integration run (coverage claims need every test)."""
    if not recording["complete"]:
        pytest.fail(
            f"the IAM call recording is partial ({recording['why_incomplete']}): {RERUN}", pytrace=False
        )
    return recording


@pytest.fixture(scope="module")
def roles(synth: Synth, recording: dict[str, Any]) -> policy.Roles:
    [region] = recording["regions"]
    return policy.Roles(synth.data, recording["names"], region, recording["account"])


def stack_functions(synth: Synth, roles: policy.Roles) -> list[str]:
    names = sorted(roles.function_ids())
    assert names == sorted(synth.stack.functions), "the stack's function list and the template disagree"
    return names


def requests_of(recording: dict[str, Any], roles: policy.Roles, function: str) -> list[policy.Request]:
    return [
        request
        for call in recording["calls"].get(function, [])
        for request in policy.requests_for(call, region=roles.region, account=roles.account)
    ]


def test_every_recorded_call_is_allowed_by_its_function_role(
    synth: Synth, recording: dict[str, Any], roles: policy.Roles
) -> None:
    denied = []
    for function in stack_functions(synth, roles):
        statements = roles.statements(function)
        for request in requests_of(recording, roles, function):
            if not policy.decide(statements, request):
                denied.append(f"{function}: {request.action} on {request.resource}\n    call: {request.call}")
    unknown = sorted(set(recording["calls"]) - set(roles.function_ids()))
    assert not unknown, f"calls recorded for functions the stack does not have: {unknown}"
    assert not denied, f"{len(denied)} recorded AWS calls are not allowed:\n" + "\n".join(denied)


def test_no_aws_call_escaped_attribution(recording: dict[str, Any]) -> None:
    # A call from a worker thread outside any function: a thread the recorder does not follow.
    assert recording["unattributed"] == []


def test_every_function_ran_and_made_aws_calls(
    synth: Synth, complete: dict[str, Any], roles: policy.Roles
) -> None:
    # Given the whole integration run, every function of the stack was invoked,
    functions = stack_functions(synth, roles)
    assert not [f for f in functions if not complete["invocations"].get(f)], complete["invocations"]
    # and every function whose role allows more than the allowances made recorded AWS calls.
    silent = [
        function
        for function in functions
        if not complete["calls"].get(function)
        and any(not _allowance_for(roles, function, grant) for grant in _all_grants(roles, function))
    ]
    assert not silent, f"functions with data grants that made no recorded AWS call: {silent}"


def test_policies_grant_nothing_the_calls_do_not_use(
    synth: Synth, complete: dict[str, Any], roles: policy.Roles
) -> None:
    # Given every function's recorded calls, when listing the grants none of them needed,
    broader, used_allowances = [], set()
    for function in stack_functions(synth, roles):
        for grant in policy.unused(roles.statements(function), requests_of(complete, roles, function)):
            allowance = _allowance_for(roles, function, grant)
            if allowance is None:
                broader.append(f"{function}: {grant.action} on {grant.resource} ({grant.origin})")
            else:
                used_allowances.add(allowance)
    # then each is a documented allowance, and each allowance still covers something.
    assert not broader, f"{len(broader)} grants no recorded call uses:\n" + "\n".join(broader)
    assert set(ALLOWANCES) == used_allowances, set(ALLOWANCES) - used_allowances


def test_roles_have_only_policies_the_checker_can_read(synth: Synth, roles: policy.Roles) -> None:
    # AWS managed policies are not in the template: the checker could not see what they allow.
    for function in stack_functions(synth, roles):
        role = roles.role_of(roles.function_ids()[function])
        assert roles.aws_managed_policies(role) == [], function


# --- helpers ------------------------------------------------------------------------------------------
def _all_grants(roles: policy.Roles, function: str) -> Iterator[policy.Grant]:
    for statement in roles.statements(function):
        for action in statement.actions:
            for resource, _ in statement.resources:
                yield policy.Grant(action, resource, statement.origin)


def _targets(roles: policy.Roles, function: str, target: str) -> set[str]:
    """Logical ids the allowance target names for ``function``."""
    function_id = roles.function_ids()[function]
    props = roles.resources[function_id]["Properties"]
    if target == LOG_GROUP:
        return {props["LoggingConfig"]["LogGroup"]["Ref"]}
    if target == EVENT_SOURCE:
        return {
            m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
            for m in roles.resources.values()
            if m["Type"] == "AWS::Lambda::EventSourceMapping"
            and m["Properties"]["FunctionName"] == {"Ref": function_id}
        }
    value = props.get("Environment", {}).get("Variables", {}).get(target)
    return {value["Ref"]} if isinstance(value, dict) and "Ref" in value else set()


def _allowance_for(roles: policy.Roles, function: str, grant: policy.Grant) -> Allowance | None:
    for allowance in ALLOWANCES:
        if allowance.functions is not None and function not in allowance.functions:
            continue
        if grant.action not in allowance.actions:
            continue
        if allowance.target == ANY_RESOURCE:
            if grant.resource == "*":
                return allowance
        elif any(
            f'"{logical_id}"' in grant.resource for logical_id in _targets(roles, function, allowance.target)
        ):
            return allowance
    return None
