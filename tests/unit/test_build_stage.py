"""The build stage (serving/build/prepare.py) against moto server on 127.0.0.1: content-hash image tags and
the ECR skip, parameters.json from the template's declared parameters (weights: tests/integration/
test_build_weights.py)."""

from __future__ import annotations

import hashlib
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

from model_specs.images import engine_image
from serving.build import contract, prepare
from tests.support.build_env import build_environment

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
    build_environment(monkeypatch, tmp_path, moto_url, BUCKET, EMD_MODEL_ID="Qwen2.5-7B-Instruct")
    return tmp_path


def test_pipeline_variables_must_match_the_bundle(bundle, monkeypatch):
    monkeypatch.setenv("EMD_MODEL_ID", "Other-Model")
    with pytest.raises(prepare.BuildError, match="EMD_MODEL_ID='Other-Model' does not match"):
        prepare.load_deployment()
    assert prepare.main(["check"]) == 1


def _push(ecr, tag):
    """An image manifest under `tag` in moto's ECR (what a finished build leaves)."""
    digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": digest, "size": 1, "mediaType": "x"},
        "layers": [],
    })  # fmt: skip
    ecr.put_image(repositoryName="emd-engines", imageManifest=manifest, imageTag=tag)


@pytest.fixture
def engine_repo(bundle, monkeypatch):
    ecr = boto3.client("ecr")
    repo = ecr.create_repository(repositoryName="emd-engines", imageTagMutability="IMMUTABLE")["repository"]
    monkeypatch.setenv("EMD_ECR_REPOSITORY_URI", repo["repositoryUri"])
    monkeypatch.setenv("EMD_ECR_REGISTRY", repo["repositoryUri"].split("/")[0])
    try:
        yield ecr, repo["repositoryUri"]
    finally:
        ecr.delete_repository(repositoryName="emd-engines", force=True)


class Recorder:
    """The injected command runner: records what the build would run (no Docker daemon here)."""

    def __init__(self):
        self.calls = []

    def __call__(self, argv, stdin, cwd):
        self.calls.append((argv, stdin))


def _adapter_tag(bundle, engine_name="vllm", **params):
    from model_specs.catalogue import catalogue

    engine = catalogue().engine(engine_name)
    return engine_image(bundle, engine.model_dump(mode="json"), engine.base_image, params)


def test_existing_image_tag_skips_docker(bundle, engine_repo):
    ecr, uri = engine_repo
    _push(ecr, _adapter_tag(bundle).adapter_tag)
    runner = Recorder()
    prepare.step_image(runner)
    assert runner.calls == []
    state = prepare.read_state()
    assert state["engine_image_uri"] == f"{uri}:{_adapter_tag(bundle).adapter_tag}"
    assert state["image_builds"] == 0


def test_missing_tag_builds_with_the_registry_cache_and_the_china_mirror(bundle, engine_repo, monkeypatch):
    ecr, uri = engine_repo
    _push(ecr, "vllm-0000000000older")  # an earlier vllm image: its layers are the cache
    _push(ecr, "tgi-00000000000other")
    boto3.client("ssm").put_parameter(
        Name="/emd/bootstrap/base-image-mirror", Value="123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/hub",
        Type="String", Overwrite=True,
    )  # fmt: skip
    monkeypatch.setenv("EMD_BASE_IMAGE_MIRROR_PARAM", "/emd/bootstrap/base-image-mirror")
    runner = Recorder()
    try:
        prepare.step_image(runner)
    finally:
        boto3.client("ssm").delete_parameter(Name="/emd/bootstrap/base-image-mirror")
    tag = _adapter_tag(bundle).adapter_tag
    (login, password), (build, stdin) = runner.calls
    assert login == ["docker", "login", "--username", "AWS", "--password-stdin", uri.split("/")[0]]
    assert password and password not in " ".join(login + build)  # the password only on stdin
    assert build == [
        "docker", "buildx", "build", "--file", "serving/engine/Dockerfile",
        "--build-arg", "BASE_IMAGE=123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/hub/docker.io/"
        "vllm/vllm-openai:v0.11.0",
        "--build-arg", "ENGINE=vllm",
        "--cache-from", f"type=registry,ref={uri}:vllm-0000000000older",
        "--cache-to", "type=inline",
        "--tag", f"{uri}:{tag}", "--push", ".",
    ]  # fmt: skip
    assert prepare.read_state()["image_builds"] == 1 and stdin is None


def test_users_image_is_used_as_is(bundle, engine_repo):
    dep = json.loads((bundle / "deployment.json").read_text())
    dep["extra_params"]["engine_params"] = {"image_uri": "registry.example.com/team/engine:v3"}
    (bundle / "deployment.json").write_text(json.dumps(dep))
    runner = Recorder()
    prepare.step_image(runner)
    assert runner.calls == []
    assert prepare.read_state()["engine_image_uri"] == "registry.example.com/team/engine:v3"


def test_users_dockerfile_is_built_on_the_adapter_image(bundle, engine_repo):
    ecr, uri = engine_repo
    dockerfile = "RUN pip install --no-cache-dir flash-attn\n"
    dep = json.loads((bundle / "deployment.json").read_text())
    dep["extra_params"]["engine_params"] = {"dockerfile": dockerfile}
    (bundle / "deployment.json").write_text(json.dumps(dep))
    image = _adapter_tag(bundle, dockerfile=dockerfile)
    assert image.custom_tag.startswith("vllm-custom-") and image.custom_tag != image.adapter_tag
    assert _adapter_tag(bundle, dockerfile=dockerfile + "ENV X=1\n").custom_tag != image.custom_tag
    _push(ecr, image.adapter_tag)
    runner = Recorder()
    prepare.step_image(runner)
    (_, _), (build, _) = runner.calls
    written = bundle / ".emd-build" / "custom-image" / "Dockerfile"
    assert written.read_text() == "ARG EMD_BASE_IMAGE\nFROM ${EMD_BASE_IMAGE}\n" + dockerfile
    assert build[build.index("--build-arg") + 1] == f"EMD_BASE_IMAGE={uri}:{image.adapter_tag}"
    assert build[-4:] == ["--tag", f"{uri}:{image.custom_tag}", "--push", str(written.parent)]
    assert prepare.read_state()["engine_image_uri"] == f"{uri}:{image.custom_tag}"

    _push(ecr, image.custom_tag)  # the redeploy: both tags exist
    runner.calls.clear()
    prepare.step_image(runner)
    assert runner.calls == [] and prepare.read_state()["image_builds"] == 0


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


def test_a_tag_pushed_by_a_parallel_build_is_used_and_a_real_failure_is_one_line(
    bundle, engine_repo, capsys, monkeypatch
):
    ecr, uri = engine_repo
    tag = _adapter_tag(bundle).adapter_tag

    def pushed_first_by_another_build(argv, stdin, cwd):
        if argv[:3] == ["docker", "buildx", "build"]:
            _push(ecr, tag)  # the other execution's push lands, then ECR refuses ours: the tag is immutable
            raise subprocess.CalledProcessError(1, argv)

    prepare.step_image(pushed_first_by_another_build)
    assert prepare.read_state()["engine_image_uri"] == f"{uri}:{tag}"
    assert f"{tag} was pushed by another build meanwhile: using it" in capsys.readouterr().out

    ecr.batch_delete_image(repositoryName="emd-engines", imageIds=[{"imageTag": tag}])

    def broken(argv, stdin, cwd):
        if argv[:3] == ["docker", "buildx", "build"]:
            raise subprocess.CalledProcessError(17, argv)

    monkeypatch.setitem(prepare.STEPS, "image", lambda: prepare.step_image(broken))
    assert prepare.main(["image"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"[emd-build] error: docker buildx build of {tag} failed (exit 17): see its output above"
