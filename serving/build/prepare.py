"""Build-stage steps, one per buildspec phase: `check`, `weights`, `image`, `parameters`.

    python3 -m serving.build.prepare weights     # S3 cache keyed by model revision, marker written last
    python3 -m serving.build.prepare image       # ECR tag = content hash; skipped when the tag exists
    python3 -m serving.build.prepare parameters  # parameters.json for the CloudFormation deploy action

Steps share state through .emd-build/state.json in the source directory. Secrets (the optional Hugging Face
token) are passed to the hub client only, never printed or written.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from model_specs.images import ENGINE_DIR, image_hash, image_tag
from serving.build import contract
from serving.build.sources import WeightsError
from serving.build.weights import prepare_weights


def src_root() -> Path:
    """The unpacked source bundle (CodeBuild's primary source directory)."""
    return Path(os.environ.get("CODEBUILD_SRC_DIR", ".")).resolve()


def state_path() -> Path:
    return src_root() / ".emd-build" / "state.json"


class BuildError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[emd-build] {message}", flush=True)


def load_deployment(root: Path | None = None) -> dict[str, Any]:
    path = (root or src_root()) / contract.BUNDLE_DEPLOYMENT
    if not path.exists():
        raise BuildError(f"{path} is missing: the source bundle must contain {contract.BUNDLE_DEPLOYMENT}")
    data = json.loads(path.read_text())
    for key in ("model_id", "model_tag", "engine_type", "stack_name"):
        if not data.get(key):
            raise BuildError(f"{contract.BUNDLE_DEPLOYMENT} has no {key!r}")
    # the pipeline variables must describe the same deployment as the bundle (parallel executions)
    for var, key in (
        ("EMD_MODEL_ID", "model_id"),
        ("EMD_MODEL_TAG", "model_tag"),
        ("EMD_STACK_NAME", "stack_name"),
    ):
        given = os.environ.get(var)
        if given and given != data[key]:
            raise BuildError(
                f"pipeline variable {var}={given!r} does not match {contract.BUNDLE_DEPLOYMENT} "
                f"{key}={data[key]!r}"
            )
    return data


def read_state() -> dict[str, Any]:
    path = state_path()
    return json.loads(path.read_text()) if path.exists() else {}


def write_state(**values: Any) -> None:
    state = read_state()
    state.update(values)
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2))


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise BuildError(f"environment variable {name} is not set (it comes from the CodeBuild project)")
    return value


# ---------------------------------------------------------------- weights


def hf_token() -> str | None:
    """The optional token from Secrets Manager (emd/hf-token); None when the secret does not exist."""
    import boto3

    name = os.environ.get("EMD_HF_TOKEN_SECRET")
    if not name:
        return None
    client = boto3.client("secretsmanager")
    try:
        return client.get_secret_value(SecretId=name)["SecretString"].strip() or None
    except client.exceptions.ResourceNotFoundException:
        return None


def step_weights() -> None:
    import boto3

    dep = load_deployment()
    result = prepare_weights(
        dep, bucket=env("EMD_ARTIFACT_BUCKET"), s3=boto3.client("s3"), token=hf_token, log=log
    )
    write_state(model_data_s3_uri=result.uri, weights=result.summary())


# ---------------------------------------------------------------- image


def ecr_tag_exists(repository_name: str, tag: str) -> bool:
    import boto3

    ecr = boto3.client("ecr")
    try:
        ecr.describe_images(repositoryName=repository_name, imageIds=[{"imageTag": tag}])
        return True
    except ecr.exceptions.ImageNotFoundException:
        return False


def step_image() -> None:
    from model_specs.catalogue import catalogue

    dep = load_deployment()
    engine = catalogue().engine(dep["engine_type"])
    repo_uri = env("EMD_ECR_REPOSITORY_URI")
    registry = env("EMD_ECR_REGISTRY")
    repository_name = repo_uri.split("/", 1)[1]
    tag = image_tag(engine.name, image_hash(src_root(), engine.model_dump(mode="json"), engine.base_image))
    uri = f"{repo_uri}:{tag}"
    if ecr_tag_exists(repository_name, tag):
        log(f"image: {uri} exists, skipping the build")
    else:
        log(f"image: building {uri} from {engine.base_image}")
        password = subprocess.run(
            ["aws", "ecr", "get-login-password"], capture_output=True, text=True, check=True
        ).stdout
        subprocess.run(
            ["docker", "login", "--username", "AWS", "--password-stdin", registry],
            input=password,
            text=True,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                "docker",
                "build",
                "--file",
                f"{ENGINE_DIR}/Dockerfile",
                "--build-arg",
                f"BASE_IMAGE={engine.base_image}",
                "--build-arg",
                f"ENGINE={engine.name}",
                "--tag",
                uri,
                ".",
            ],
            cwd=src_root(),
            check=True,
        )
        subprocess.run(["docker", "push", uri], check=True)
    write_state(engine_image_uri=uri)


# ---------------------------------------------------------------- parameters


def template_configuration(
    template: dict[str, Any], state: dict[str, Any], dep: dict[str, Any]
) -> dict[str, Any]:
    """Fill the parameters the template declares; fail naming required ones the build cannot fill."""
    known = {
        contract.PARAM_ENGINE_IMAGE_URI: state.get("engine_image_uri"),
        contract.PARAM_MODEL_DATA_S3_URI: state.get("model_data_s3_uri"),
    }
    declared = template.get("Parameters", {}) or {}
    values: dict[str, str] = {}
    missing = []
    for name, spec in declared.items():
        if known.get(name):
            values[name] = str(known[name])
        elif "Default" not in spec:
            missing.append(name)
    if missing:
        raise BuildError(
            f"template parameters with no default that the build cannot fill: {', '.join(sorted(missing))}; "
            f"the build provides {', '.join(sorted(known))}"
        )
    return {
        "Parameters": values,
        "Tags": {"emd:model-id": dep["model_id"], "emd:tag": dep["model_tag"]},
    }


def step_parameters() -> None:
    if os.environ.get("CODEBUILD_BUILD_SUCCEEDING") == "0":
        raise BuildError("an earlier build phase failed; not writing parameters.json")
    dep = load_deployment()
    template_path = src_root() / contract.BUNDLE_TEMPLATE
    if not template_path.exists():
        raise BuildError(f"{template_path} is missing from the bundle")
    config = template_configuration(json.loads(template_path.read_text()), read_state(), dep)
    (src_root() / contract.OUTPUT_PARAMETERS).write_text(json.dumps(config, indent=2))
    log(f"parameters: {', '.join(sorted(config['Parameters'])) or '(none)'}")


def step_check() -> None:
    dep = load_deployment()
    log(
        f"deployment {os.environ.get('EMD_DEPLOYMENT_ID', '?')}: {dep['model_id']}/{dep['model_tag']} "
        f"-> {dep['stack_name']}"
    )


STEPS = {"check": step_check, "weights": step_weights, "image": step_image, "parameters": step_parameters}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STEPS:
        print(f"usage: python3 -m serving.build.prepare {{{'|'.join(STEPS)}}}", file=sys.stderr)
        return 2
    try:
        STEPS[argv[0]]()
    except (BuildError, WeightsError) as exc:
        print(f"[emd-build] error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        print(f"[emd-build] error: {disk_full_message(exc)}", file=sys.stderr)
        return 1
    return 0


def disk_full_message(exc: OSError) -> str:
    where = exc.filename or str(src_root())
    free = shutil.disk_usage(Path(str(where)).anchor or "/").free if os.path.exists(str(where)) else 0
    return (
        f"disk full on the build host writing {where} ({free / 2**30:.1f} GiB free): bootstrap again with "
        "a larger CodeBuild compute type (-c codebuild_compute_type=2xlarge)"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
