"""The image step's decisions and commands: which engine image a deployment runs, whether it must be built
(its content-hash tag is not in ECR yet), and the `docker buildx build` command lines.

- The adapter image: serving/engine/Dockerfile on the engine's upstream image, pushed as <engine>-<hash>.
  Builds reuse the layers of the newest image of the same engine in ECR (`--cache-from type=registry`,
  `--cache-to type=inline`: the cache travels inside the pushed image, which suits ECR's immutable tags).
- A user's Dockerfile (engine_params.dockerfile) is built FROM the adapter image, pushed as
  <engine>-custom-<hash>; a user's image (engine_params.image_uri) is used as it is.
- China regions reach neither Docker Hub, ghcr.io nor public ECR: a base-image mirror set at bootstrap (SSM
  parameter /emd/bootstrap/base-image-mirror) rewrites the upstream image reference. Either one prefix
  (`<prefix>/<registry host>/<path>:<tag>`, e.g. an ECR pull-through cache or a registry mirror) or
  per-registry prefixes `docker.io=<prefix>,ghcr.io=<prefix>` (`<prefix>/<path>:<tag>`).

Commands go through an injected runner: the build runs them with subprocess; tests and bench/build_cache.py
record them (there is no Docker daemon there). The ECR password goes to `docker login` on stdin only.
"""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_specs.images import CUSTOM_BASE_ARG, ENGINE_DIR, EngineImage, mirrored
from model_specs.registry import PARAM_BASE_IMAGE_MIRROR

Runner = Callable[[list[str], str | None, Path | None], None]
_ARG_REF = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def run_command(argv: list[str], stdin: str | None, cwd: Path | None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, cwd=cwd)


def read_mirror(ssm: Any, name: str = PARAM_BASE_IMAGE_MIRROR) -> str | None:
    """The bootstrap's base-image mirror, or None when the parameter was never set."""
    try:
        return ssm.get_parameter(Name=name)["Parameter"]["Value"].strip() or None
    except ssm.exceptions.ParameterNotFound:
        return None


def render(dockerfile: str, build_args: dict[str, str]) -> str:
    """The Dockerfile with its ARG references replaced by the build args (what `docker build` resolves)."""
    declared = dict(re.findall(r"^\s*ARG\s+(\w+)(?:=(\S*))?\s*$", dockerfile, re.MULTILINE))
    values = {**declared, **build_args}
    return _ARG_REF.sub(lambda m: values.get(m.group(1) or m.group(2), m.group(0)), dockerfile)


def build_command(
    *, dockerfile: str, context: str, tag: str, build_args: dict[str, str], cache_from: list[str]
) -> list[str]:
    argv = ["docker", "buildx", "build", "--file", dockerfile]
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    for ref in cache_from:
        argv += ["--cache-from", f"type=registry,ref={ref}"]
    return [*argv, "--cache-to", "type=inline", "--tag", tag, "--push", context]


@dataclass
class ImageOutcome:
    uri: str
    builds: list[list[str]] = field(default_factory=list)
    reason: str = ""


class EcrImages:
    """The engine repository in ECR: tag look-ups, the newest image of an engine, the docker login."""

    def __init__(self, ecr: Any, repository_uri: str) -> None:
        self.ecr = ecr
        self.repository_uri = repository_uri
        self.registry, _, self.name = repository_uri.partition("/")

    def has(self, tag: str) -> bool:
        try:
            self.ecr.describe_images(repositoryName=self.name, imageIds=[{"imageTag": tag}])
            return True
        except self.ecr.exceptions.ImageNotFoundException:
            return False

    def newest(self, tag_prefix: str) -> str | None:
        """The most recently pushed tag starting with tag_prefix (the layer cache for the next build)."""
        best: tuple[Any, str] | None = None
        pages = self.ecr.get_paginator("describe_images").paginate(
            repositoryName=self.name, filter={"tagStatus": "TAGGED"}
        )
        for page in pages:
            for image in page["imageDetails"]:
                for tag in image.get("imageTags", []):
                    if tag.startswith(tag_prefix) and "-custom-" not in tag:
                        pushed = image.get("imagePushedAt")
                        if best is None or (pushed and pushed > best[0]):
                            best = (pushed, tag)
        return best[1] if best else None

    def password(self) -> str:
        data = self.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        return base64.b64decode(data).decode().split(":", 1)[1]


def plan_image(
    image: EngineImage, *, engine: str, base_image: str, mirror: str | None, ecr: EcrImages, src: Path
) -> ImageOutcome:
    """What the deployment runs and the builds needed for it (none when ECR has the tags already)."""
    if image.given:
        return ImageOutcome(image.given, reason="engine_params.image_uri, used as it is")
    adapter_uri = f"{ecr.repository_uri}:{image.adapter_tag}"
    outcome = ImageOutcome(f"{ecr.repository_uri}:{image.tag}")
    need_custom = image.custom_tag is not None and not ecr.has(image.custom_tag)
    need_adapter = (image.custom_tag is None or need_custom) and not ecr.has(image.adapter_tag)
    if need_adapter:
        previous = ecr.newest(f"{engine}-")
        outcome.builds.append(
            build_command(
                dockerfile=f"{ENGINE_DIR}/Dockerfile",
                context=".",
                tag=adapter_uri,
                build_args={"BASE_IMAGE": mirrored(base_image, mirror), "ENGINE": engine},
                cache_from=[f"{ecr.repository_uri}:{previous}"] if previous else [],
            )
        )
    if need_custom:
        assert image.dockerfile is not None
        custom_dir = src / ".emd-build" / "custom-image"
        custom_dir.mkdir(parents=True, exist_ok=True)
        (custom_dir / "Dockerfile").write_text(image.dockerfile)
        outcome.builds.append(
            build_command(
                dockerfile=str(custom_dir / "Dockerfile"),
                context=str(custom_dir),
                tag=outcome.uri,
                build_args={CUSTOM_BASE_ARG: adapter_uri},
                cache_from=[adapter_uri],
            )
        )
    outcome.reason = f"{len(outcome.builds)} build(s)" if outcome.builds else "in ECR already"
    return outcome


class ImageBuildError(RuntimeError):
    """An image build failed; the message is one line (docker's own output is above it in the log)."""


def run_builds(
    outcome: ImageOutcome, ecr: EcrImages, runner: Runner, src: Path, log: Callable[[str], None] = print
) -> None:
    """Runs the builds. Tags are content hashes in an immutable repository, so a tag that another build (a
    parallel pipeline execution, a GitOps wave) pushed meanwhile is the same image: it is used, not rebuilt,
    and a push refused because that build got there first is not a failure."""
    if not outcome.builds:
        return
    runner(["docker", "login", "--username", "AWS", "--password-stdin", ecr.registry], ecr.password(), None)
    for argv in outcome.builds:
        tag = argv[argv.index("--tag") + 1].rsplit(":", 1)[1]
        if ecr.has(tag):
            log(f"image: {tag} was pushed by another build meanwhile: no build")
            continue
        try:
            runner(argv, None, src)
        except subprocess.CalledProcessError as exc:
            if ecr.has(tag):
                log(f"image: {tag} was pushed by another build meanwhile: using it")
                continue
            raise ImageBuildError(
                f"docker buildx build of {tag} failed (exit {exc.returncode}): see its output above"
            ) from None
