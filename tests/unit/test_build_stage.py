"""The build stage (serving/build/prepare.py) against moto server on 127.0.0.1: content-hash image tags and
the ECR skip, parameters.json from the template's declared parameters (weights: tests/integration/
test_build_weights.py)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import pytest

from serving.build import contract, prepare

ROOT = Path(__file__).resolve().parents[2]
SHA = "a" * 40
BUCKET = "emd-artifacts-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_url():
    port = _free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(url + "/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def bundle(tmp_path, monkeypatch, moto_url):
    """An unpacked source bundle and the environment CodeBuild would give the build."""
    shutil.copytree(ROOT / "serving" / "engine", tmp_path / "serving" / "engine",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    deployment = {
        "model_id": "Qwen2.5-7B-Instruct",
        "model_tag": "dev",
        "engine_type": "vllm",
        "instance_type": "g5.2xlarge",
        "service_type": "sagemaker_realtime",
        "region": "us-east-1",
        "stack_name": "EMD-Model-qwen2-5-7b-instruct-dev-12345678",
        "extra_params": {"model_params": {"revision": SHA}},
    }
    (tmp_path / "deployment.json").write_text(json.dumps(deployment))
    for key, value in {
        "CODEBUILD_SRC_DIR": str(tmp_path),
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "EMD_ARTIFACT_BUCKET": BUCKET,
        "EMD_WEIGHTS_HUB": "huggingface",
        "EMD_HF_TOKEN_SECRET": "emd/hf-token",
        "EMD_MODEL_ID": "Qwen2.5-7B-Instruct",
    }.items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3")
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    return tmp_path


def test_pipeline_variables_must_match_the_bundle(bundle, monkeypatch):
    monkeypatch.setenv("EMD_MODEL_ID", "Other-Model")
    with pytest.raises(prepare.BuildError, match="EMD_MODEL_ID='Other-Model' does not match"):
        prepare.load_deployment()
    assert prepare.main(["check"]) == 1


def test_image_hash_follows_engine_files_entry_and_base_image(tmp_path):
    (tmp_path / "serving" / "engine").mkdir(parents=True)
    f = tmp_path / "serving" / "engine" / "adapter.py"
    f.write_text("a")
    base = prepare.image_hash(tmp_path, {"name": "vllm"}, "vllm/vllm-openai:v1")
    assert prepare.image_hash(tmp_path, {"name": "vllm"}, "vllm/vllm-openai:v1") == base
    assert prepare.image_hash(tmp_path, {"name": "vllm"}, "vllm/vllm-openai:v2") != base
    assert prepare.image_hash(tmp_path, {"name": "vllm", "port": 1}, "vllm/vllm-openai:v1") != base
    f.write_text("b")
    assert prepare.image_hash(tmp_path, {"name": "vllm"}, "vllm/vllm-openai:v1") != base
    assert prepare.image_tag("vllm", base).startswith("vllm-") and len(prepare.image_tag("vllm", base)) == 25


def test_existing_image_tag_skips_docker(bundle, monkeypatch):
    from model_specs.catalogue import catalogue

    ecr = boto3.client("ecr")
    repo = ecr.create_repository(repositoryName="emd-engines", imageTagMutability="IMMUTABLE")["repository"]
    engine = catalogue().engine("vllm")
    tag = prepare.image_tag(
        engine.name, prepare.image_hash(bundle, engine.model_dump(mode="json"), engine.base_image)
    )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"digest": "sha256:" + "0" * 64, "size": 1, "mediaType": "x"},
            "layers": [],
        }
    )
    ecr.put_image(repositoryName="emd-engines", imageManifest=manifest, imageTag=tag)
    monkeypatch.setenv("EMD_ECR_REPOSITORY_URI", repo["repositoryUri"])
    monkeypatch.setenv("EMD_ECR_REGISTRY", repo["repositoryUri"].split("/")[0])
    monkeypatch.setattr(prepare.subprocess, "run", lambda *a, **k: pytest.fail(f"ran {a[0]}"))
    try:
        prepare.step_image()
        assert prepare.read_state()["engine_image_uri"] == f"{repo['repositoryUri']}:{tag}"
        assert prepare.ecr_tag_exists("emd-engines", "vllm-doesnotexist") is False
    finally:
        ecr.delete_repository(repositoryName="emd-engines", force=True)


def test_parameters_fill_declared_parameters_and_tag_the_stack(bundle):
    template = {
        "Parameters": {
            contract.PARAM_ENGINE_IMAGE_URI: {"Type": "String"},
            contract.PARAM_MODEL_DATA_S3_URI: {"Type": "String"},
            "Optional": {"Type": "String", "Default": "x"},
        }
    }
    (bundle / "template.json").write_text(json.dumps(template))
    prepare.write_state(engine_image_uri="123.dkr.ecr/x:vllm-1", model_data_s3_uri="s3://b/models/m/r/")
    assert prepare.main(["parameters"]) == 0
    config = json.loads((bundle / "parameters.json").read_text())
    assert config == {
        "Parameters": {"EngineImageUri": "123.dkr.ecr/x:vllm-1", "ModelDataS3Uri": "s3://b/models/m/r/"},
        "Tags": {"emd:model-id": "Qwen2.5-7B-Instruct", "emd:tag": "dev"},
    }


def test_parameters_name_what_the_build_cannot_fill(bundle, monkeypatch):
    (bundle / "template.json").write_text(json.dumps({"Parameters": {"VpcId": {"Type": "String"}}}))
    with pytest.raises(prepare.BuildError, match="cannot fill: VpcId; the build provides EngineImageUri"):
        prepare.step_parameters()
    monkeypatch.setenv("CODEBUILD_BUILD_SUCCEEDING", "0")
    with pytest.raises(prepare.BuildError, match="earlier build phase failed"):
        prepare.step_parameters()


def test_usage():
    assert prepare.main([]) == 2 and prepare.main(["deploy"]) == 2
