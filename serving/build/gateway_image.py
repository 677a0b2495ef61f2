"""The gateway image for `emd bootstrap`, built by the bootstrap's CodeBuild project (no local Docker):
serving/gateway/Dockerfile pushed to the bootstrap's ECR repository as EMD_GATEWAY_IMAGE_TAG, unless that tag
is there already (the tag is a content hash, and the repository's tags are immutable).

    python3 -m serving.build.gateway_image        # serving/build/gateway_buildspec.yml runs this
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from serving.build.prepare import BuildError, ecr_tag_exists, env, log, src_root

GATEWAY_DOCKERFILE = "serving/gateway/Dockerfile"
TAG = re.compile(r"^gateway-[0-9a-f]{20}$")


def docker_commands(registry: str, uri: str, base_image: str | None) -> list[list[str]]:
    build = ["docker", "build", "--file", GATEWAY_DOCKERFILE, "--tag", uri]
    if base_image:  # a mirror where public.ecr.aws is not reachable
        build += ["--build-arg", f"BASE_IMAGE={base_image}"]
    return [
        ["docker", "login", "--username", "AWS", "--password-stdin", registry],
        [*build, "."],
        ["docker", "push", uri],
    ]


def build_gateway_image() -> str:
    tag = env("EMD_GATEWAY_IMAGE_TAG")
    if not TAG.fullmatch(tag):
        raise BuildError(
            f"EMD_GATEWAY_IMAGE_TAG={tag!r} is not a gateway image tag (gateway-<20 hex digits>)"
        )
    repo_uri, registry = env("EMD_ECR_REPOSITORY_URI"), env("EMD_ECR_REGISTRY")
    uri = f"{repo_uri}:{tag}"
    if ecr_tag_exists(repo_uri.split("/", 1)[1], tag):
        log(f"gateway image: {uri} exists, skipping the build")
        return uri
    password = subprocess.run(
        ["aws", "ecr", "get-login-password"], capture_output=True, text=True, check=True
    ).stdout
    for i, command in enumerate(docker_commands(registry, uri, os.environ.get("EMD_GATEWAY_BASE_IMAGE"))):
        log(f"gateway image: {' '.join(command[:2])}")
        done = subprocess.run(command, cwd=src_root(), input=password if i == 0 else None, text=True)
        if done.returncode != 0:
            step = ' '.join(command[:2])
            raise BuildError(f"gateway image: `{step}` failed (exit status {done.returncode})")
    log(f"gateway image: pushed {uri}")
    return uri


def main() -> int:
    try:
        build_gateway_image()
    except BuildError as exc:
        print(f"[emd-build] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
