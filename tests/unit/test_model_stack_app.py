"""`cdk deploy -c model_id=...`: context -> Deployment (no synth), app.py as the cdk CLI runs it (exactly
one model stack; the CLI's message and exit 2 on bad context), and synth_model_stack for `emd plan` and the
pipeline bundle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emd_stacks.model_context import model_context
from model_specs.deployment import resolve_deployment
from model_specs.errors import EmdUserError
from tests.unit.stack_fixtures import run_app

ROOT = Path(__file__).resolve().parents[2]
BASE = {
    "model_id": "Qwen2.5-7B-Instruct",
    "instance_type": "g5.2xlarge",
    "engine_type": "vllm",
    "service_type": "sagemaker_realtime",
}


def test_no_model_id_means_no_model_stack():
    assert model_context({"model_tag": "dev"}.get, region="us-east-1") is None


def test_context_resolves_the_same_deployment_as_the_cli():
    ctx = {**BASE, "model_tag": "prod", "extra_params": '{"service_params": {"min_capacity": 0}}'}
    got = model_context(ctx.get, region="us-west-2")
    assert got is not None
    expected = resolve_deployment(
        model_id="Qwen2.5-7B-Instruct",
        instance_type="g5.2xlarge",
        engine_type="vllm",
        service_type="sagemaker_realtime",
        region="us-west-2",
        model_tag="prod",
        extra_params={"service_params": {"min_capacity": 0}},
    )
    assert got.deployment == expected and got.image_uri is None


def test_context_extra_params_as_object_and_artifact_overrides():
    ctx = {
        **BASE,
        "extra_params": {"service_params": {"public": True}},
        "image_uri": "r/x:1",
        "model_data_s3_uri": "s3://b/w/",
    }
    got = model_context(ctx.get, region="us-east-1")
    assert got is not None and got.deployment.api_key_secret_name is None
    assert (got.image_uri, got.model_data_s3_uri) == ("r/x:1", "s3://b/w/")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model_id": "Qwen2.5-7B-Instruc"}, "Qwen2.5-7B-Instruct"),
        ({"instance_type": None}, "-c instance_type=..."),
        ({"service_type": "sagemaker"}, "sagemaker_realtime"),
        ({"extra_params": '{"service_params": {"min_capacty": 0}}'}, "invalid context extra_params: "),
        ({"extra_params": '{"service_params": {"min_capacty": 0}}'}, "min_capacity"),
        ({"extra_params": "{bad"}, "context extra_params is not valid JSON"),
        ({"instance_type": "g4dn.xlarge"}, "refused"),
    ],
)
def test_bad_context_raises_the_cli_error(change, message):
    ctx = {**BASE, **change}
    with pytest.raises(EmdUserError, match=message.replace(".", r"\.")):
        model_context(ctx.get, region="us-east-1")


@pytest.mark.slow
def test_app_with_model_context_synthesizes_exactly_one_model_stack(tmp_path):
    result = run_app(tmp_path, {**BASE, "model_tag": "dev", "region": "us-west-2"})
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    stacks = [k for k, a in manifest["artifacts"].items() if a["type"] == "aws:cloudformation:stack"]
    d = resolve_deployment(**BASE, region="us-west-2")
    assert stacks == [d.stack_name]
    assert manifest["artifacts"][d.stack_name]["environment"].endswith("/us-west-2")


@pytest.mark.slow
def test_app_with_bad_model_context_exits_2_without_traceback(tmp_path):
    result = run_app(tmp_path, {**BASE, "model_id": "Qwen2.5-7B-Instruc"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Qwen2.5-7B-Instruct" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "manifest.json").exists()


@pytest.mark.slow
def test_synth_model_stack_returns_the_template_with_build_parameters(tmp_path):
    from emd_stacks.synth import synth_model_stack

    d = resolve_deployment(**{**BASE, "service_type": "ecs"}, region="us-east-1", model_tag="plan")
    path = synth_model_stack(d, tmp_path / "out")
    assert path.is_file() and path.name == f"{d.stack_name}.template.json"
    template = json.loads(path.read_text())
    assert {"EngineImageUri", "ModelDataS3Uri"} <= set(template["Parameters"])
    given = synth_model_stack(d, tmp_path / "given", image_uri="r/x:1", model_data_s3_uri="s3://my-bucket/w/")
    assert "EngineImageUri" not in json.loads(given.read_text()).get("Parameters", {})
