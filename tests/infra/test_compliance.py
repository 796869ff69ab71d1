"""cfn-lint finds no error; cdk-nag's AwsSolutions pack finds nothing unacknowledged."""

from __future__ import annotations

import json

from aws_cdk import Validations
from aws_cdk.assertions import Annotations, Match
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import lint

from tests.infra.cfn import Synth


def test_cfn_lint_reports_no_errors(synth: Synth) -> None:
    # Given the synthesized template, when cfn-lint checks it,
    matches = lint(json.dumps(synth.data))
    errors = [m for m in matches if m.rule.id.startswith("E")]
    for match in matches:
        if match not in errors:
            print(f"cfn-lint warning: {match}")
    # then nothing is an error (warnings such as W3005 on CDK's DependsOn are tolerated).
    assert not errors, "\n".join(str(e) for e in errors)


def test_cdk_nag_aws_solutions_has_no_unacknowledged_findings(synth: Synth) -> None:
    # cdk-nag v3 is a policy-validation plugin: run its pack over the synthesized tree.
    report = AwsSolutionsChecks(verbose=True).validate_scope(synth.stack)
    findings = [
        f"{v.severity} {v.rule_name}: {[r.construct_path for r in v.violating_resources]}"
        for v in report.violations
    ]
    assert report.success, "\n".join(findings)


def test_cdk_nag_acknowledgments_all_have_reasons(synth: Synth) -> None:
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    acknowledged: dict[str, str] = {}
    for construct in synth.stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == key:
                acknowledged.update(entry.data)
    assert acknowledged, "expected the stack to carry its cdk-nag acknowledgments"
    for rule_id, reason in acknowledged.items():
        assert "AwsSolutions-" in rule_id
        assert len(reason) > 40, f"{rule_id}: reason too short: {reason!r}"


def test_no_error_annotations(synth: Synth) -> None:
    annotations = Annotations.from_stack(synth.stack)
    assert annotations.find_error("*", Match.any_value()) == []
    assert annotations.find_error("*", Match.string_like_regexp("AwsSolutions-.*")) == []
    assert annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-.*")) == []
    for warning in annotations.find_warning("*", Match.any_value()):
        print(f"CDK warning: {warning.id}: {warning.entry.data}")
