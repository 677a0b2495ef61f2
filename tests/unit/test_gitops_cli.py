"""`emd gitops` without AWS: validate, refusals before any AWS call, the starter models.yaml, the pipeline
settings, and the wheel of this EMD that the pipeline's synth step installs."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from emd_cli.gitops_starter import starter_models_yaml
from emd_cli.gitops_wheel import build_wheel
from emd_cli.main import cli
from model_specs.errors import EmdUserError
from model_specs.gitops import pipeline_settings, settings_from_json
from model_specs.models_file import load_models_file

NO_AWS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["gitops", *args], env=NO_AWS)
    return result.exit_code, result.output


def test_validate_summarizes_the_stages(tmp_path: Path):
    models = tmp_path / "models.yaml"
    models.write_text(
        starter_models_yaml(region="us-east-1", pipeline="EMD-GitOps", source="s3", branch="main")
    )
    code, out = run("validate", str(models), "--region", "us-east-1")
    assert code == 0
    assert out.splitlines() == [
        f"{models}: valid, 1 deployment(s), prune true",
        "  stage us-east-1-wave1 (us-east-1): Qwen2.5-0.5B-Instruct/dev",
    ]


def test_validate_prints_every_problem_and_exits_2(tmp_path: Path):
    models = tmp_path / "models.yaml"
    models.write_text("deployments:\n  - {model_id: bge-m4, instance: g4dn.xlarge, service: ecs}\n  - {}\n")
    code, out = run("validate", str(models))
    assert code == 2
    assert (
        f"{models}:2: deployments[0] (bge-m4/dev): model_id: unknown model id 'bge-m4'. Did you mean" in out
    )
    assert f"{models}:3: deployments[1]: model_id: missing (required)" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--source", "github:my-org/models"], "needs --connection-arn"),
        (["--source", "gitlab:my-org/models"], "is not one of github:<owner>/<repo>, codecommit:<repo>, s3"),
        (
            ["--source", "s3", "--connection-arn", "arn:aws:codeconnections:us-east-1:1:connection/x"],
            "goes with",
        ),
        (["--source", "github:o/r", "--connection-arn", "nope"], "is not a connection ARN"),
        (["--name", "9lives"], "name: String should match pattern"),
        (["--region", "us-east-9"], "unknown region 'us-east-9'"),
    ],
)
def test_init_refuses_bad_flags_before_writing_or_calling_aws(tmp_path: Path, args: list[str], message: str):
    code, out = run("init", *args, "--models", str(tmp_path / "models.yaml"))
    assert code == 2 and message in out, out
    assert not any(tmp_path.rglob("models.yaml"))


def test_init_refuses_an_invalid_existing_file_before_calling_aws(tmp_path: Path):
    (tmp_path / "models.yaml").write_text(
        "deployments:\n  - {model_id: bge-m3, instance: g4dn.xlarg, service: ecs}\n"
    )
    code, out = run("init", "--models", str(tmp_path / "models.yaml"))
    assert code == 2 and "instance: unknown instance type 'g4dn.xlarg'" in out


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "cn-north-1", "cn-northwest-1"])
def test_the_starter_is_valid_and_priced_in_every_region(region: str):
    text = starter_models_yaml(
        region=region, pipeline="EMD-GitOps", source="codecommit:models", branch="main"
    )
    (entry,) = load_models_file("models.yaml", default_region=region, text=text).entries
    assert entry.route == "Qwen2.5-0.5B-Instruct/dev"
    assert ("¥" if region.startswith("cn-") else "$") in text
    assert "prune: true" in text and "# environments:" in text


def test_the_starters_key_command_can_be_copied_whole():
    text = starter_models_yaml(region="us-east-1", pipeline="EMD-GitOps", source="s3", branch="main")
    lines = text.splitlines()
    command = [line.lstrip("# ") for line in lines if "get-secret-value" in line or "--query" in line]
    assert command == [
        "aws secretsmanager get-secret-value --secret-id emd/Qwen2.5-0.5B-Instruct/dev/api-key \\",
        "--query SecretString --output text",
    ]


def test_settings_travel_as_json_and_bad_json_is_one_line():
    settings = pipeline_settings(region="cn-north-1", account="111111111111", source="s3", emd_install="emd")
    assert settings_from_json(settings.to_json()) == settings
    with pytest.raises(EmdUserError, match="EMD_GITOPS_SETTINGS is not JSON"):
        settings_from_json("{")


def test_synth_reads_settings_from_the_pipeline_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("EMD_GITOPS_SETTINGS", '{"region": "us-east-1", "source": "ftp"}')
    code, out = run("synth", str(tmp_path / "models.yaml"))
    assert code == 2 and "emd_install: Field required" in out


def test_the_wheel_is_reproducible_and_installs(tmp_path: Path):
    first = build_wheel(tmp_path / "a")
    second = build_wheel(tmp_path / "b")
    assert first.name == second.name and first.read_bytes() == second.read_bytes()
    names = set(zipfile.ZipFile(first).namelist())
    info = first.name.split("-py3")[0] + ".dist-info"
    assert {
        "emd_cli/gitops.py",
        "serving/gitops/smoke_buildspec.yml",
        "serving/build/buildspec.yml",
        "model_specs/data/prices.yaml",
        "emd_stacks/gitops.py",
        f"{info}/METADATA",
        f"{info}/RECORD",
        f"{info}/entry_points.txt",
    } <= names
    assert not any("__pycache__" in n for n in names)
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    subprocess.run([*pip, "--target", str(target), str(first)], check=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = (
        "import emd_cli.gitops, model_specs.models_file, serving.gitops.smoke; print(emd_cli.gitops.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().startswith(str(target))
    assert (target / "bin" / "emd").exists()
