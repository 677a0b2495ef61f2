"""Shared by the bootstrap/gateway stack tests: an App with EMD's shipped feature flags, synthesized once per
variant with cdk-nag attached, plus the partition check adjusted for IAM service principals."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from emd_stacks.context import shipped_context
from tests.cdk_checks import nag_violations, partition_literals, templates_of

ROOT = Path(__file__).resolve().parents[2]


def make_app(outdir: Path, extra_context: dict[str, Any] | None = None) -> cdk.App:
    context = shipped_context()
    context.update(extra_context or {})
    return cdk.App(outdir=str(outdir), context=context)


@dataclass
class Synth:
    template: dict[str, Any]
    nag: list[str]


def synth_stack(app: cdk.App, stack_name: str) -> Synth:
    findings = nag_violations(app)
    return Synth(template=templates_of(Path(app.outdir))[stack_name], nag=findings)


def _strip_service_principals(node: Any) -> Any:
    """IAM service principals (trust policies, iam:PassedToService) and service-linked-role service names
    are '<service>.amazonaws.com' in every
    partition (aws-cn included): they are identifiers, not endpoints, so the URL-suffix check skips them."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("Service", "iam:AWSServiceName", "iam:PassedToService"):
                continue
            out[key] = _strip_service_principals(value)
        return out
    if isinstance(node, list):
        return [_strip_service_principals(v) for v in node]
    if isinstance(node, str):
        # service-linked role paths: role/aws-service-role/<service>.amazonaws.com/AWSServiceRoleFor...
        return re.sub(r"aws-service-role/[a-z0-9.-]+\.amazonaws\.com/", "aws-service-role/<service>/", node)
    return node


def china_partition_literals(template: dict[str, Any]) -> list[str]:
    return partition_literals(_strip_service_principals(template))


def resources_of(template: dict[str, Any], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == cfn_type}


def policy_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for res in template["Resources"].values():
        props = res.get("Properties", {})
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            out += props["PolicyDocument"]["Statement"]
        if res["Type"] == "AWS::IAM::Role":
            for p in props.get("Policies", []):
                out += p["PolicyDocument"]["Statement"]
    return out


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    tags = resource.get("Properties", {}).get("Tags", [])
    if isinstance(tags, dict):
        return tags
    return {t["Key"]: t["Value"] for t in tags}
