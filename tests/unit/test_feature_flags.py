"""EMD runs on today's CDK defaults: every feature flag the installed aws-cdk-lib knows is set, in the one
shipped file (emd_stacks/cdk_context.json), to the value the library recommends (what `cdk init` writes), and
nothing else is in that file. The flags come from the installed library itself: the feature-flag report it
writes into every cloud assembly, which is what `cdk flags` and synth's "N feature flags are not configured"
notice read (tests/unit/test_cdk_entry.py runs `npx cdk synth` and checks that the notice is absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from emd_stacks.context import shipped_context
from emd_stacks.template_checks import nag_violations


@pytest.fixture(scope="module")
def library_flags(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """{flag: {recommendedValue, userValue, …}} of an App given the shipped context."""
    outdir = tmp_path_factory.mktemp("flags")
    cdk.App(outdir=str(outdir), context=shipped_context()).synth()
    manifest = json.loads((outdir / "manifest.json").read_text())
    (report,) = [a for a in manifest["artifacts"].values() if a["type"] == "cdk:feature-flag-report"]
    return report["properties"]["flags"]


def test_the_library_reports_its_flags(library_flags: dict[str, dict[str, Any]]) -> None:
    # a report this small would mean the manifest format changed and the checks below prove nothing
    assert len(library_flags) > 50
    assert all("recommendedValue" in meta for meta in library_flags.values())


def test_every_flag_is_configured_to_its_recommended_value(library_flags: dict[str, dict[str, Any]]) -> None:
    shipped = shipped_context()
    unset = sorted(flag for flag in library_flags if flag not in shipped)
    assert not unset, f"add to emd_stacks/cdk_context.json (value: the library's recommendedValue): {unset}"
    differing = {
        flag: (shipped[flag], meta["recommendedValue"])
        for flag, meta in library_flags.items()
        if shipped[flag] != meta["recommendedValue"]
    }
    assert not differing, f"shipped value vs recommended: {differing}"
    # the App saw them: the report carries them as the user's values
    assert all(meta.get("userValue") == shipped[flag] for flag, meta in library_flags.items())


def test_the_shipped_file_holds_only_flags_the_library_knows(library_flags: dict[str, Any]) -> None:
    unknown = sorted(set(shipped_context()) - set(library_flags))
    assert not unknown, f"not a feature flag of the installed aws-cdk-lib (renamed or removed?): {unknown}"


def test_nag_findings_leave_out_construct_warnings(tmp_path: Path) -> None:
    """@aws-cdk/core:annotationsInValidationReport puts construct warnings into the validation report that
    cdk-nag's findings are read from: a failing check lists its findings, not CDK's advice."""
    import aws_cdk.aws_s3 as s3

    app = cdk.App(outdir=str(tmp_path), context=shipped_context())
    stack = cdk.Stack(app, "Insecure")
    s3.Bucket(stack, "Open")
    cdk.Annotations.of(stack).add_warning_v2("emd:test-warning", "advice, not a finding")
    found = nag_violations(app)
    assert any(f.startswith("AwsSolutions-S10 at Insecure/Open") for f in found), found
    assert not [f for f in found if "advice" in f or "Annotation::" in f]
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert "advice, not a finding" in json.dumps(report)  # the warning is in the report: the filter is needed


@pytest.mark.slow
def test_synth_reports_no_construct_warning(all_templates: dict[str, Any]) -> None:
    """With annotationsInValidationReport CDK prints its report whenever it is not empty, `emd plan` included:
    every kind of template EMD synthesizes leaves it empty (the imported subnets' warning is acknowledged)."""
    assembly = next(iter(all_templates.values())).file.parents[1] / "assembly"
    report = json.loads((assembly / "validation-report.json").read_text())
    assert [v["ruleName"] for p in report["pluginReports"] for v in p["violations"]] == []
