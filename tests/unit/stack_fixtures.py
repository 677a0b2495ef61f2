"""Shared by the bootstrap/gateway stack tests: an App with EMD's shipped feature flags, synthesized once per
variant with cdk-nag attached, plus the partition check adjusted for IAM service principals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from emd_stacks.context import shipped_context
from emd_stacks.template_checks import china_partition_literals  # noqa: F401  (used by the stack tests)
from tests.cdk_checks import cfn_lint_findings, nag_violations, templates_of

ROOT = Path(__file__).resolve().parents[2]


def make_app(outdir: Path, extra_context: dict[str, Any] | None = None) -> cdk.App:
    context = shipped_context()
    context.update(extra_context or {})
    return cdk.App(outdir=str(outdir), context=context)


@dataclass
class Synth:
    template: dict[str, Any]
    nag: list[str]


def findings(synth: Synth, region: str) -> list[str]:
    """cdk-nag violations, cfn-lint errors and warnings of the synthesized stack (both must be none)."""
    return synth.nag + cfn_lint_findings(synth.template, [region])


def synth_stack(app: cdk.App, stack_name: str) -> Synth:
    findings = nag_violations(app)
    return Synth(template=templates_of(Path(app.outdir))[stack_name], nag=findings)


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


def unbounded_logs(template: dict[str, Any]) -> list[str]:
    """Where logs would be kept forever: a log group without retention, a CodeBuild project or a Lambda
    function writing to the default group its service creates (no retention), not one of the template's."""
    found = []
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Logs::LogGroup" and not props.get("RetentionInDays"):
            found.append(f"{name}: log group without retention")
        if res["Type"] == "AWS::CodeBuild::Project":
            group = props.get("LogsConfig", {}).get("CloudWatchLogs", {}).get("GroupName")
            if not (isinstance(group, dict) and "Ref" in group):
                found.append(f"{name}: CodeBuild project logging to its default group")
        if res["Type"] == "AWS::Lambda::Function":
            group = props.get("LoggingConfig", {}).get("LogGroup")
            if not (isinstance(group, dict) and "Ref" in group):
                found.append(f"{name}: Lambda function logging to its default group")
    return found


def run_app(outdir: Path, context: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """app.py as `npx cdk synth` runs it: a process of its own, the context in CDK_CONTEXT_JSON."""
    env = dict(os.environ)
    env.update(
        CDK_CONTEXT_JSON=json.dumps(context),
        CDK_OUTDIR=str(outdir),
        AWS_EC2_METADATA_DISABLED="true",
        CDK_DISABLE_CLI_TELEMETRY="true",
    )
    env.pop("CDK_DEFAULT_ACCOUNT", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
