"""emd as a real process: light commands never import aws_cdk/boto3, bad input exits 2 without a traceback,
and plan synthesizes the model stack through emd_stacks.synth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import sys\n"
    "from emd_cli.main import main\n"
    "rc = main(sys.argv[1:])\n"
    "loaded = [m in sys.modules for m in ('aws_cdk', 'boto3', 'emd_stacks')]\n"
    "print('\\nMODULES', *loaded, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    env.update(
        AWS_EC2_METADATA_DISABLED="true",
        CDK_DISABLE_CLI_TELEMETRY="true",
        JSII_NODE=str(ROOT / "node_modules/.bin/node"),
    )
    return env


def _emd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["list-supported-models"],
        ["list-supported-models", "--json", "--region", "cn-north-1"],
        ["cost", "--model-id", "Qwen2.5-7B-Instruct", "-i", "g5.2xlarge", "-s", "sagemaker_realtime"],
        ["plan", "--model-id", "Qwen2.5-7B-Instruct", "-i", "g5.2xlarge", "-s", "ec2", "--no-synth"],
    ],
)
def test_light_commands_do_not_import_aws_cdk_or_boto3(args: list[str]) -> None:
    proc = _emd(*args)
    assert proc.returncode == 0, proc.stderr
    assert "MODULES False False False" in proc.stderr


def test_console_script_and_module_entry_points() -> None:
    emd = Path(sys.executable).parent / "emd"
    commands = [[sys.executable, "-m", "emd_cli"]] + ([[str(emd)]] if emd.exists() else [])
    for cmd in commands:
        proc = subprocess.run(
            [*cmd, "list-supported-models", "--json"],
            cwd=ROOT,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["models"]


@pytest.mark.parametrize(
    "command",
    [
        "plan --model-id Qwen2.5-7B-Instruc -i g5.2xlarge -s ec2",
        "plan --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -s ec2 --extra-params [1]",
        "plan --model-id Qwen2.5-7B-Instruct",  # missing flags, no TTY
        "cost --model-id Qwen2.5-7B-Instruct -i p9.xlarge -s ec2",
    ],
)
def test_bad_input_exits_2_without_traceback(command: str) -> None:
    proc = _emd(*command.split())
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Error:" in proc.stderr
    assert "MODULES False False False" in proc.stderr


@pytest.mark.slow
def test_plan_synthesizes_the_model_stack(tmp_path: Path) -> None:
    out = tmp_path / "cdk.out"
    plan = (
        "plan --model-id Qwen2.5-7B-Instruct -i g5.2xlarge -e vllm -s sagemaker_realtime "
        "--region us-east-1"
    )
    secret = '{"service_params": {"api_key": "sk-never-in-a-template"}}'
    proc = _emd(*plan.split(), "--outdir", str(out), "--json", "--extra-params", secret, timeout=180)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["synth"] == "synthesized"
    template = Path(d["template"])
    assert template.is_file() and template.parent == out
    text = template.read_text()
    body = json.loads(text)
    assert d["registry_parameter"] in text and "sk-never-in-a-template" not in text
    assert any(r["Type"].startswith("AWS::SageMaker::") for r in body["Resources"].values())
