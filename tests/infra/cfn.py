"""Helpers over the synthesized CloudFormation template: find our functions, rebuild method paths,
collect the IAM (action, resource) pairs a function's role gets."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from infra.api import handler_for
from infra.build_layers import build_all
from infra.stack import DatasetsApiStack, cdk_context

STACK_NAME = "DatasetsApiInfraTest"


@dataclass
class Synth:
    app: cdk.App
    stack: DatasetsApiStack
    template: Template
    data: dict[str, Any]
    layer_dirs: dict[str, Path]
    seconds: float

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.data["Resources"]

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == cfn_type}

    def logical_id(self, construct: Any) -> str:
        """Logical id of an L2 construct's CloudFormation resource."""
        return self.stack.resolve(construct.node.default_child.logical_id)

    # --- functions -------------------------------------------------------------------------
    def functions_by_handler(self) -> dict[str, list[str]]:
        """Handler string -> logical ids of the Lambda functions with that handler."""
        found: dict[str, list[str]] = {}
        for logical_id, res in self.of_type("AWS::Lambda::Function").items():
            handler = res["Properties"].get("Handler")
            if handler:
                found.setdefault(handler, []).append(logical_id)
        return found

    def function_id(self, function: str) -> str:
        ids = self.functions_by_handler().get(handler_for(function), [])
        assert len(ids) == 1, f"expected exactly one function for {function}, found {ids}"
        return ids[0]

    def function(self, function: str) -> dict[str, Any]:
        return self.resources[self.function_id(function)]

    def statements(self, function: str) -> list[dict[str, Any]]:
        """The policy statements of ``function``'s role (all of them Allow)."""
        role = self.function(function)["Properties"]["Role"]["Fn::GetAtt"][0]
        found = []
        for res in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role} in res["Properties"]["Roles"]:
                found += res["Properties"]["PolicyDocument"]["Statement"]
        assert all(statement["Effect"] == "Allow" for statement in found)
        return found

    def permissions(self, function: str) -> set[tuple[str, str]]:
        """(action, resource as compact JSON) pairs allowed to ``function``'s role."""
        pairs: set[tuple[str, str]] = set()
        for statement in self.statements(function):
            actions = _as_list(statement["Action"])
            resources = _as_list(statement["Resource"])
            pairs |= {(a, _compact(r)) for a in actions for r in resources}
        return pairs

    # --- API Gateway -----------------------------------------------------------------------
    def resource_paths(self) -> dict[str, str]:
        """ApiGateway::Resource logical id -> full path rebuilt from the PathPart chain."""
        parts = {k: r["Properties"] for k, r in self.of_type("AWS::ApiGateway::Resource").items()}
        paths: dict[str, str] = {}

        def path_of(logical_id: str) -> str:
            if logical_id not in paths:
                props = parts[logical_id]
                parent = props["ParentId"]
                prefix = path_of(parent["Ref"]) if "Ref" in parent else ""  # else: GetAtt RootResourceId
                paths[logical_id] = f"{prefix}/{props['PathPart']}"
            return paths[logical_id]

        for logical_id in parts:
            path_of(logical_id)
        return paths

    def methods(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(HTTP method, full path, properties) of every ApiGateway::Method."""
        paths = self.resource_paths()
        out = []
        for res in self.of_type("AWS::ApiGateway::Method").values():
            props = res["Properties"]
            ref = props["ResourceId"]
            path = paths[ref["Ref"]] if "Ref" in ref else "/"
            out.append((props["HttpMethod"], path, props))
        return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def synthesize(outdir: Path) -> Synth:
    layer_dirs = build_all()
    started = time.monotonic()
    app = cdk.App(context=cdk_context(), outdir=str(outdir))
    stack = DatasetsApiStack(app, STACK_NAME, layer_dirs=layer_dirs)
    template = Template.from_stack(stack)
    seconds = time.monotonic() - started
    return Synth(app, stack, template, dict(template.to_json()), layer_dirs, seconds)
