"""`emd status` on a machine without AWS credentials: the local deployments (none here), and one line saying
why AWS's are not listed and what to run, not a botocore exception name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from emd_cli.main import cli


@pytest.fixture
def no_aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def test_status_says_in_one_line_why_aws_deployments_are_missing(no_aws: None) -> None:
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 0, result.output
    assert "note: aws deployments not listed: no AWS credentials found: run `aws configure`" in result.output
    assert "NoCredentialsError" not in result.output
    assert "No deployments." in result.output


def test_status_json_names_the_same_reason(no_aws: None) -> None:
    result = CliRunner().invoke(cli, ["status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["deployments"] == []
    (problem,) = data["unavailable"]
    assert problem["target"] == "aws" and problem["error"].startswith("no AWS credentials found")
