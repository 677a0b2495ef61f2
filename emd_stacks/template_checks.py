"""Checks on synthesized templates, shared by the GitOps synth step (emd_stacks.gitops_synth) and the test
suite (tests/cdk_checks.py): cdk-nag AwsSolutions findings (collected during synth), cfn-lint (errors and
warnings count) and the literals that break in the aws-cn partition.

cfn-lint is imported only when a template is linted (the GitOps synth step installs it; it is a dev extra).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

# Rules whose findings are informational in cfn-lint ("I...") are not failures; E and W are.
_FAILING_SEVERITIES = {"error", "warning"}
# 'amazonaws.com' that is not followed by '.cn' (China uses amazonaws.com.cn)
_GLOBAL_SUFFIX = re.compile(r"amazonaws\.com(?!\.cn)")


def add_nag(app: cdk.App) -> None:
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def nag_violations(app: cdk.App) -> list[str]:
    """Synthesize with AwsSolutions checks; return 'RULE at construct/path: description' for each finding."""
    add_nag(app)
    try:
        app.synth()
        return []
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc) and "Validation failed" not in str(exc):
            raise
    report = json.loads((Path(app.outdir) / "validation-report.json").read_text())
    found = []
    for plugin in report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            if _is_annotation_warning(violation):
                continue
            for construct in violation.get("violatingConstructs", []):
                rule, path = violation["ruleName"], construct["constructPath"]
                found.append(f"{rule} at {path}: {violation['description']}")
    return found


def _is_annotation_warning(violation: dict[str, Any]) -> bool:
    """A construct's warning annotation, which @aws-cdk/core:annotationsInValidationReport adds to the report:
    CDK's advice, shown by synth anyway, not a cdk-nag finding."""
    annotation = violation.get("ruleMetadata", {}).get("cdk:annotation") == "true"
    return annotation and violation.get("severity") != "error"


def templates_of(outdir: Path) -> dict[str, dict[str, Any]]:
    """{stack name: template} of a cloud assembly, nested assemblies (CDK stages) included."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    out: dict[str, dict[str, Any]] = {}
    for name, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") == "aws:cloudformation:stack":
            template_file = artifact["properties"]["templateFile"]
            stack_name = artifact["properties"].get("stackName", name)
            out[stack_name] = json.loads((outdir / template_file).read_text())
        elif artifact.get("type") == "cdk:cloud-assembly":
            nested = templates_of(outdir / artifact["properties"]["directoryName"])
            out.update({f"{name}/{stack}": template for stack, template in nested.items()})
    return out


def cfn_lint_findings(template: dict[str, Any], regions: list[str]) -> list[str]:
    from cfnlint.api import ManualArgs, lint

    matches = lint(json.dumps(template), config=ManualArgs(regions=regions))
    return [
        f"{m.rule.id} {'/'.join(str(p) for p in m.path)}: {m.message}"
        for m in matches
        if str(m.rule.severity).lower() in _FAILING_SEVERITIES
    ]


# keys whose values name AWS services ('<service>.amazonaws.com' in every partition, aws-cn included): they
# are identifiers, not endpoints
_SERVICE_NAME_KEYS = ("Service", "iam:AWSServiceName", "iam:PassedToService", "ec2:AuthorizedService")


def china_partition_literals(template: dict[str, Any]) -> list[str]:
    """partition_literals without IAM service principals, service names in conditions and service-linked role
    paths (role/aws-service-role/<service>.amazonaws.com/...)."""
    return partition_literals(_strip_service_names(template))


def _strip_service_names(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_service_names(v) for k, v in node.items() if k not in _SERVICE_NAME_KEYS}
    if isinstance(node, list):
        return [_strip_service_names(v) for v in node]
    if isinstance(node, str):
        return re.sub(r"aws-service-role/[a-z0-9.-]+\.amazonaws\.com/", "aws-service-role/<service>/", node)
    return node


def partition_literals(template: dict[str, Any]) -> list[str]:
    """Literals that break in aws-cn: 'arn:aws:' and a global 'amazonaws.com' suffix."""
    text = json.dumps(template)
    bad = [m.group(0) for m in re.finditer(r".{0,40}arn:aws:.{0,40}", text)]
    bad += [m.string[max(m.start() - 40, 0) : m.end() + 10] for m in _GLOBAL_SUFFIX.finditer(text)]
    return bad
