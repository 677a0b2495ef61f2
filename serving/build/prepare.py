"""Build-stage steps, one per buildspec phase: `check`, `weights`, `image`, `parameters`.

    python3 -m serving.build.prepare weights     # hub -> S3 cache by revision (weights.py, transfer.py)
    python3 -m serving.build.prepare image       # ECR tag = content hash; no build when it exists (images.py)
    python3 -m serving.build.prepare parameters  # parameters.json for the CloudFormation deploy action
    eval "$(python3 -m serving.build.prepare outputs)"  # the same two values as exported build variables

Steps share state through .emd-build/state.json in the source directory. Secrets (the optional Hugging Face
token) are passed to the hub client only, never printed or written.
"""

from __future__ import annotations

import errno
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from model_specs.images import engine_image
from serving.build import contract
from serving.build.images import (
    EcrImages,
    ImageBuildError,
    Runner,
    mirrored,
    plan_image,
    read_mirror,
    run_builds,
    run_command,
)
from serving.build.sources import WeightsError
from serving.build.weights import prepare_weights, publish_location


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
    publish_location(boto3.client("ssm"), result, dep["model_id"], dep["model_tag"], log)
    write_state(model_data_s3_uri=result.uri, weights=result.summary())


# ---------------------------------------------------------------- image


def step_image(runner: Runner = run_command) -> None:
    import boto3

    from model_specs.catalogue import catalogue

    dep = load_deployment()
    engine = catalogue().engine(dep["engine_type"])
    engine_params = (dep.get("extra_params") or {}).get("engine_params") or {}
    try:
        image = engine_image(src_root(), engine.model_dump(mode="json"), engine.base_image, engine_params)
    except ValueError as exc:
        raise BuildError(f"engine_params.dockerfile: {exc}") from None
    ecr = EcrImages(boto3.client("ecr"), env("EMD_ECR_REPOSITORY_URI"))
    mirror_param = os.environ.get("EMD_BASE_IMAGE_MIRROR_PARAM")
    mirror = read_mirror(boto3.client("ssm"), mirror_param) if mirror_param else None
    outcome = plan_image(
        image, engine=engine.name, base_image=engine.base_image, mirror=mirror, ecr=ecr, src=src_root()
    )
    if outcome.builds:
        base = mirrored(engine.base_image, mirror)
        log(f"image: building {outcome.uri} ({len(outcome.builds)} build(s), base {base})")
    else:
        log(f"image: {outcome.uri} ({outcome.reason}): no build")
    run_builds(outcome, ecr, runner, src_root(), log)
    write_state(engine_image_uri=outcome.uri, image_builds=len(outcome.builds))


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


def step_outputs() -> None:
    """Print `export NAME=value` lines for the buildspec to eval: CodeBuild exports these variables with the
    build (BatchGetBuilds' exportedEnvironmentVariables), where a directly deployed stack's custom resource
    reads them (serving/build_resource). Only what the earlier steps prepared; nothing on a failed build."""
    if os.environ.get("CODEBUILD_BUILD_SUCCEEDING") == "0":
        return
    state = read_state()
    for name, key in contract.EXPORTED_OUTPUTS.items():
        if state.get(key):
            print(f"export {name}={shlex.quote(str(state[key]))}")


def step_check() -> None:
    dep = load_deployment()
    log(
        f"deployment {os.environ.get('EMD_DEPLOYMENT_ID', '?')}: {dep['model_id']}/{dep['model_tag']} "
        f"-> {dep['stack_name']}"
    )


STEPS = {
    "check": step_check,
    "weights": step_weights,
    "image": step_image,
    "parameters": step_parameters,
    "outputs": step_outputs,
}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STEPS:
        print(f"usage: python3 -m serving.build.prepare {{{'|'.join(STEPS)}}}", file=sys.stderr)
        return 2
    try:
        STEPS[argv[0]]()
    except (BuildError, WeightsError, ImageBuildError) as exc:
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
