"""Template checks shared by the stack tests: cfn-lint (zero errors, zero warnings), cdk-nag AwsSolutions
(zero unacknowledged findings) and partition hygiene for China regions.

Usage:
    app = cdk.App(outdir=str(tmp_path))
    ... build stacks ...
    templates = synth_checked(app)               # cdk-nag runs inside synth; raises on any finding
    assert_cfn_lint_clean(templates["EMD-Bootstrap"], regions=["us-east-1"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk

from emd_stacks.template_checks import (  # noqa: F401  (re-exported for the stack tests)
    add_nag,
    cfn_lint_findings,
    nag_violations,
    partition_literals,
    templates_of,
)


class NagFindings(AssertionError):
    pass


def synth_checked(app: cdk.App) -> dict[str, dict[str, Any]]:
    """Synthesize with cdk-nag; fail listing every finding; return {stack_name: template}."""
    findings = nag_violations(app)
    if findings:
        raise NagFindings(f"{len(findings)} cdk-nag finding(s):\n" + "\n".join(findings))
    return templates_of(Path(app.outdir))


def assert_cfn_lint_clean(template: dict[str, Any], regions: list[str]) -> None:
    findings = cfn_lint_findings(template, regions)
    assert not findings, f"{len(findings)} cfn-lint finding(s) for {regions}:\n" + "\n".join(findings)


def assert_partition_clean(template: dict[str, Any]) -> None:
    bad = partition_literals(template)
    assert not bad, "partition-specific literals in a China template:\n" + "\n".join(bad)
