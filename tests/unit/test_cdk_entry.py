"""`npx cdk …` as users run it: unknown context keys are refused with a did-you-mean (CDK's own keys pass),
outside the venv the launcher finds .venv or says in one line what to do, and the feature flags live in one
shipped file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from emd_stacks.context import (
    APP_CONTEXT_KEYS,
    SHIPPED_CONTEXT_FILE,
    is_cdk_key,
    parse_context,
    refuse_unknown_context,
    shipped_context,
)
from emd_stacks.model_context import MODEL_CONTEXT_KEYS, model_context
from model_specs.errors import EmdUserError

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules/.bin/cdk"
OURS = (*APP_CONTEXT_KEYS, *MODEL_CONTEXT_KEYS)
# what the cdk CLI 2.1148 put in CDK_CONTEXT_JSON (measured), plus cdk.context.json lookups and notices
CDK_INJECTED = {
    "aws:cdk:enable-path-metadata": True,
    "aws:cdk:enable-asset-metadata": True,
    "aws:cdk:version-reporting": True,
    "aws:cdk:bundling-stacks": ["**"],
    "@aws-cdk/core:failSynthOnValidationErrors": False,
    "@cdklabs/generative-ai-cdk-constructs:someFlag": True,
    "availability-zones:account=123456789012:region=us-east-1": ["us-east-1a", "us-east-1b"],
    "vpc-provider:account=123456789012:filter.vpc-id=vpc-0123456789abcdef0:region=us-east-1": {},
    "acknowledged-issue-numbers": [32775],
    "cdk-migrate": True,
    "aws-cdk:enableDiffNoFail": True,
}


def test_every_key_the_parsers_read_is_declared() -> None:
    asked: set[str] = set()
    full = {
        "model_id": "Qwen2.5-7B-Instruct",
        "instance_type": "g5.2xlarge",
        "service_type": "sagemaker_realtime",
    }

    def get(key: str):  # type: ignore[no-untyped-def]
        asked.add(key)
        return full.get(key)

    parse_context(get, {})
    model_context(get, region="us-east-1")
    assert asked == set(OURS)


def test_ours_and_cdks_pass_anything_else_is_refused() -> None:
    refuse_unknown_context({**dict.fromkeys(OURS, "x"), **CDK_INJECTED, **shipped_context()}, OURS)
    assert not any(is_cdk_key(k) for k in OURS)
    with pytest.raises(EmdUserError) as one:
        refuse_unknown_context({"model-id": "Qwen2.5-7B-Instruct", **CDK_INJECTED}, OURS)
    assert str(one.value).startswith("unknown context key 'model-id'. Did you mean 'model_id'? Accepted: ")
    assert "@aws-cdk" not in str(one.value) and "\n" not in str(one.value)
    with pytest.raises(
        EmdUserError, match=r"keys 'foo', 'regoin' \(did you mean 'region'\?\)\. Accepted"
    ):
        refuse_unknown_context({"regoin": "us-west-2", "foo": "1"}, OURS)


def test_the_shipped_flags_are_the_only_ones() -> None:
    flags = json.loads(SHIPPED_CONTEXT_FILE.read_text())
    assert flags and all(is_cdk_key(k) for k in flags)  # which ones: tests/unit/test_feature_flags.py
    # cdk.json carries none: app.py gives the shipped file to the App, as emd_stacks.synth does
    assert "context" not in json.loads((ROOT / "cdk.json").read_text())


def _cdk_env(path_prefix: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDK_", "VIRTUAL_ENV"))}
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        CDK_DISABLE_CLI_TELEMETRY="true",
        JSII_NODE=str(ROOT / "node_modules/.bin/node"),
    )
    env["PATH"] = os.pathsep.join(
        [*([str(path_prefix)] if path_prefix else []), str(CDK.parent), os.environ.get("PATH", "")]
    )
    return env


def _cdk(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CDK), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_npx_cdk_synth_refuses_a_misspelled_key(tmp_path: Path) -> None:
    out = tmp_path / "cdk.out"
    result = _cdk(
        "synth", "-q", "-o", str(out), "-c", "model-id=Qwen2.5-7B-Instruct", cwd=ROOT, env=_cdk_env()
    )
    assert result.returncode != 0
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: unknown context key 'model-id'. Did you mean 'model_id'?"), result.stderr
    assert "Subprocess exited with error 2" in result.stderr  # app.py's exit code, as the cdk CLI reports it
    assert "Traceback" not in result.stderr
    assert not list(out.glob("*.template.json"))


def _no_deps_python3(bin_dir: Path) -> Path:
    """A `python3` first on PATH that sees no site-packages: a shell outside the venv."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "python3"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
    wrapper.chmod(0o755)
    return bin_dir


@pytest.mark.slow
def test_npx_cdk_outside_the_venv_runs_the_app_with_dot_venv_and_cdk_keys_pass(tmp_path: Path) -> None:
    if not (ROOT / ".venv/bin/python").exists():
        pytest.skip("needs `make install` (.venv)")
    project = tmp_path / "project"
    project.mkdir()
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    cdk_json["app"] = cdk_json["app"].replace("cdk_launcher.py", str(ROOT / "cdk_launcher.py"))
    (project / "cdk.json").write_text(json.dumps(cdk_json))
    lookups = {k: v for k, v in CDK_INJECTED.items() if ":account=" in k or k == "acknowledged-issue-numbers"}
    (project / "cdk.context.json").write_text(json.dumps(lookups))
    env = _cdk_env(_no_deps_python3(tmp_path / "bin"))
    out = tmp_path / "cdk.out"
    result = _cdk(
        "synth", "-q", "-o", str(out), "-c", "gateway=false", "-c", "@aws-cdk/core:someFutureFlag=true",
        cwd=project, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "EMD-Bootstrap.template.json").is_file()
    assert not (out / "EMD-Gateway.template.json").exists()
    # the CLI read the App's feature-flag report and found every flag configured (it says 'N feature flags
    # are not configured' otherwise)
    assert (out / "manifest.json").read_text().count("cdk:feature-flag-report") == 1
    assert "feature flags are not configured" not in result.stderr + result.stdout


def test_without_a_venv_the_launcher_says_what_to_do(tmp_path: Path) -> None:
    shutil.copy(ROOT / "cdk_launcher.py", tmp_path)
    result = subprocess.run(
        [sys.executable, "-S", str(tmp_path / "cdk_launcher.py")], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "cannot import aws_cdk" in result.stderr and "run `make install`" in result.stderr


def test_a_broken_venv_is_tried_once_not_forever(tmp_path: Path) -> None:
    shutil.copy(ROOT / "cdk_launcher.py", tmp_path)
    venv_python = tmp_path / ".venv/bin/python"
    venv_python.parent.mkdir(parents=True)
    runs = tmp_path / "venv-python-runs"
    venv_python.write_text(f'#!/bin/sh\necho run >> "{runs}"\nexec "{sys.executable}" -S "$@"\n')
    venv_python.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "EMD_CDK_LAUNCHER_RELAUNCHED"}
    result = subprocess.run(
        [sys.executable, "-S", str(tmp_path / "cdk_launcher.py")],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert result.returncode == 2 and "run `make install`" in result.stderr
    assert runs.read_text() == "run\n"
