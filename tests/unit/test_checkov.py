"""checkov over every template EMD synthesizes (tests/unit/all_templates.py), in one run: every failed check
must be acknowledged with a reason in tests/checkov_acknowledged.py, and every acknowledgement must still
match a finding. checkov lives in its own virtualenv (.venv/checkov, made by `make install`): it pins boto3
and packaging to versions the project does not use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.checkov_acknowledged import ACKNOWLEDGED

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def checkov_binary() -> str:
    for candidate in (os.environ.get("EMD_CHECKOV"), str(ROOT / ".venv/checkov/bin/checkov")):
        if candidate and Path(candidate).exists():
            return candidate
    found = shutil.which("checkov")
    if found is None:
        pytest.fail("checkov is not installed: run `make install` (it creates .venv/checkov)")
    return found


def run_checkov(directory: Path) -> dict:
    result = subprocess.run(
        [checkov_binary(), "-d", str(directory), "--framework", "cloudformation", "-o", "json", "--quiet",
         "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: some check failed
    report = json.loads(result.stdout)
    (report,) = report if isinstance(report, list) else [report]
    assert report["check_type"] == "cloudformation"
    return report


@pytest.fixture(scope="module")
def report(all_templates) -> dict:
    (directory,) = {s.file.parent for s in all_templates.values()}
    report = run_checkov(directory)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] > 500  # every template was read
    return report


def _findings(report: dict) -> list[tuple[str, str, str]]:
    return [
        (f["check_id"], f["resource"], Path(f["file_path"]).name) for f in report["results"]["failed_checks"]
    ]


def test_every_checkov_finding_is_acknowledged_with_a_reason(report):
    unacknowledged = [f for f in _findings(report) if not any(a.matches(*f) for a in ACKNOWLEDGED)]
    summary = report["summary"]
    print(f"checkov {summary['checkov_version']}: {summary['passed']} passed, {summary['failed']} failed")
    assert unacknowledged == [], "\n".join(" ".join(f) for f in unacknowledged)


def test_every_acknowledgement_still_matches_a_finding(report):
    findings = _findings(report)
    stale = [a for a in ACKNOWLEDGED if not any(a.matches(*f) for f in findings)]
    assert stale == []
    assert all(len(a.reason) > 40 for a in ACKNOWLEDGED)


def test_checkov_fails_on_what_emd_fixed(tmp_path):
    """The scan is real: a SageMaker model without network isolation and an open HTTP security group are
    reported, and not acknowledged."""
    template = {
        "Resources": {
            "Model": {
                "Type": "AWS::SageMaker::Model",
                "Properties": {"ExecutionRoleArn": "arn:aws:iam::1:role/r",
                               "PrimaryContainer": {"Image": "1.dkr.ecr.us-east-1.amazonaws.com/x:1"}},
            },
            "Open": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {"GroupDescription": "x", "SecurityGroupIngress": [
                    {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "CidrIp": "0.0.0.0/0"}]},
            },
        }
    }  # fmt: skip
    (tmp_path / "bad.template.json").write_text(json.dumps(template))
    findings = _findings(run_checkov(tmp_path))
    checks = {f[0] for f in findings}
    assert {"CKV_AWS_370", "CKV_AWS_260"} <= checks
    fixed = [f for f in findings if f[0] in ("CKV_AWS_370", "CKV_AWS_260")]
    assert not any(a.matches(*f) for f in fixed for a in ACKNOWLEDGED)
