"""cdk-nag 3.x acknowledgements: each one names the rule and carries a reason a reviewer can accept.

aws-cdk-lib matches acknowledgements by exact finding id, and AwsSolutions-IAM5 reports one finding per
wildcard ("AwsSolutions-IAM5[Action::s3:GetObject*]", "...[Resource::<Bucket.Arn>/*]"). acknowledge_wildcards
reads a policy's resolved document and acknowledges exactly the wildcards it contains, with one reason, so a
wildcard added later without a reason still fails the check.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import aws_cdk.aws_iam as iam
from constructs import IConstruct

from emd_constructs.hygiene import cdk_providers


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))


def _render(value: Any) -> str:
    """A resolved CloudFormation value written the way cdk-nag names it in finding ids."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            return "<" + ".".join(value["Fn::GetAtt"]) + ">"
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(_render(p) for p in parts)
    return str(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_findings(policy: iam.Policy | iam.ManagedPolicy) -> set[str]:
    doc = cdk.Stack.of(policy).resolve(policy.document)
    found: set[str] = set()
    for statement in doc.get("Statement", []):
        if statement.get("Effect") == "Deny":
            continue
        for action in _as_list(statement.get("Action", [])):
            if "*" in action:
                found.add(f"AwsSolutions-IAM5[Action::{action}]")
        for resource in _as_list(statement.get("Resource", [])):
            rendered = _render(resource)
            if "*" in rendered:
                found.add(f"AwsSolutions-IAM5[Resource::{rendered}]")
    return found


def acknowledge_wildcards(policy: iam.Policy | iam.ManagedPolicy | None, reason: str) -> None:
    if policy is None:
        return
    for finding in sorted(wildcard_findings(policy)):
        acknowledge(policy, finding, reason)


def acknowledge_cdk_providers(stack: cdk.Stack, purpose: str) -> None:
    """aws-cdk-lib's own custom-resource Lambdas (`purpose`: what they do in this stack)."""
    for provider in cdk_providers(stack):
        acknowledge(
            provider,
            "AwsSolutions-IAM4",
            f"aws-cdk-lib's custom-resource Lambda ({purpose}) uses AWSLambdaBasicExecutionRole: CloudWatch "
            "Logs only.",
        )
        acknowledge(
            provider,
            "AwsSolutions-L1",
            "The custom-resource Lambda's runtime is chosen by aws-cdk-lib and moves with its upgrades.",
        )


def default_policy(role: iam.IRole | None) -> iam.Policy | None:
    child = role.node.try_find_child("DefaultPolicy") if role is not None else None
    return child if isinstance(child, iam.Policy) else None
