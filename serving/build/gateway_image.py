"""The gateway image for `emd bootstrap`, built by the bootstrap's CodeBuild project (no local Docker):
serving/gateway/Dockerfile pushed to the bootstrap's ECR repository as EMD_GATEWAY_IMAGE_TAG, unless that tag
is there already (the tag is a content hash, and the repository's tags are immutable). The base image goes
through the bootstrap's base-image mirror, as the engine images' do (serving/build/images.py).

    python3 -m serving.build.gateway_image        # serving/build/gateway_buildspec.yml runs this
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from model_specs.images import mirrored
from serving.build.images import (
    EcrImages,
    ImageOutcome,
    Runner,
    build_command,
    read_mirror,
    run_builds,
    run_command,
)
from serving.build.prepare import BuildError, env, log, src_root

GATEWAY_DOCKERFILE = "serving/gateway/Dockerfile"
TAG = re.compile(r"^gateway-[0-9a-f]{20}$")
_BASE_ARG = re.compile(r"^\s*ARG\s+BASE_IMAGE=(\S+)\s*$", re.MULTILINE)


def default_base_image(root: Path) -> str:
    """The Dockerfile's own BASE_IMAGE default (one place says which Python image the gateway runs on)."""
    found = _BASE_ARG.search((root / GATEWAY_DOCKERFILE).read_text())
    if not found:
        raise BuildError(f"{GATEWAY_DOCKERFILE} declares no default for ARG BASE_IMAGE")
    return found.group(1)


def build_gateway_image(runner: Runner = run_command) -> str:
    import boto3

    tag = env("EMD_GATEWAY_IMAGE_TAG")
    if not TAG.fullmatch(tag):
        raise BuildError(
            f"EMD_GATEWAY_IMAGE_TAG={tag!r} is not a gateway image tag (gateway-<20 hex digits>)"
        )
    ecr = EcrImages(boto3.client("ecr"), env("EMD_ECR_REPOSITORY_URI"))
    uri = f"{ecr.repository_uri}:{tag}"
    if ecr.has(tag):
        log(f"gateway image: {uri} exists, skipping the build")
        return uri
    mirror_param = os.environ.get("EMD_BASE_IMAGE_MIRROR_PARAM")
    mirror = read_mirror(boto3.client("ssm"), mirror_param) if mirror_param else None
    base = mirrored(default_base_image(src_root()), mirror)
    build = build_command(
        dockerfile=GATEWAY_DOCKERFILE, context=".", tag=uri, build_args={"BASE_IMAGE": base}, cache_from=[]
    )
    log(f"gateway image: building {uri} on {base}")
    run_builds(ImageOutcome(uri, builds=[build]), ecr, runner, src_root())
    log(f"gateway image: pushed {uri}")
    return uri


def main() -> int:
    try:
        build_gateway_image()
    except BuildError as exc:
        print(f"[emd-build] error: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:  # docker said why on stderr already
        print(
            f"[emd-build] error: `{' '.join(exc.cmd[:3])}` failed (exit status {exc.returncode})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
