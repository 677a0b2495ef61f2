"""The engine image's ECR tag: engine name + a content hash of what the image is built from. The build stage
(serving/build/prepare.py) tags what it pushes with it, and a model stack synthesized directly
(emd_stacks/model_inputs.py) points at the same tag, so the two agree without talking to each other.

A user's own Dockerfile (engine_params.dockerfile, from `--dockerfile-local-path`) is built on top of that
adapter image and tagged `<engine>-custom-<hash>`, the hash covering the adapter image and the Dockerfile;
a user's image (engine_params.image_uri) is used as it is, and its reference is part of the key too.

The gateway image `emd bootstrap` has the bootstrap's CodeBuild project build: `gateway-` + a content hash of
what serving/gateway/Dockerfile copies; the CLI passes it to the build and to the gateway stack."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENGINE_DIR = "serving/engine"
COMMON_DIR = "serving/common"
GATEWAY_DIR = "serving/gateway"
GATEWAY_TAG_PREFIX = "gateway-"
DOCKER_HUB = "docker.io"
CUSTOM_BASE_ARG = "EMD_BASE_IMAGE"  # the build arg a user's Dockerfile starts FROM
_MIRROR_PREFIX = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*/?$")
_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)", re.IGNORECASE | re.MULTILINE)


def _tree_digest(root: Path, folders: tuple[str, ...]) -> hashlib._Hash:
    """sha256 over serving/__init__.py and every file under `folders` (paths and bytes, caches excluded)."""
    digest = hashlib.sha256()
    files = [p for p in [root / "serving" / "__init__.py"] if p.is_file()]
    for folder in folders:
        files += [
            p
            for p in (root / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest


def gateway_image_tag(root: Path) -> str:
    """What serving/gateway/Dockerfile copies: model_specs, serving/common and serving/gateway."""
    return GATEWAY_TAG_PREFIX + _tree_digest(root, ("model_specs", COMMON_DIR, GATEWAY_DIR)).hexdigest()[:20]


def image_hash(
    root: Path, engine_entry: dict[str, Any], base_image: str, custom: dict[str, str] | None = None
) -> str:
    """Content hash of what the engine image copies (serving/engine, serving/common: paths and bytes), the
    catalogue's engine entry, the base image and the user's custom image inputs (Dockerfile, image URI)."""
    digest = _tree_digest(root, (ENGINE_DIR, COMMON_DIR))
    digest.update(json.dumps(engine_entry, sort_keys=True).encode())
    digest.update(base_image.encode())
    if custom:
        digest.update(json.dumps(custom, sort_keys=True).encode())
    return digest.hexdigest()


def image_tag(engine: str, content_hash: str, custom: bool = False) -> str:
    return f"{engine}-{'custom-' if custom else ''}{content_hash[:20]}"


def custom_dockerfile(text: str) -> str:
    """The user's Dockerfile, starting FROM the EMD engine image: `FROM ${EMD_BASE_IMAGE}` is added when it
    has no FROM; any other base is refused (the adapter would be lost). Raises ValueError."""
    bases = _FROM.findall(text)
    wanted = {f"${{{CUSTOM_BASE_ARG}}}", f"${CUSTOM_BASE_ARG}"}
    if not bases:
        return f"ARG {CUSTOM_BASE_ARG}\nFROM ${{{CUSTOM_BASE_ARG}}}\n{text}"
    if bases[0] not in wanted:
        raise ValueError(
            f"its first FROM is {bases[0]!r}: a custom Dockerfile builds on the EMD engine image, so start "
            f"it with 'ARG {CUSTOM_BASE_ARG}' and 'FROM ${{{CUSTOM_BASE_ARG}}}', or leave FROM out"
        )
    return text


@dataclass(frozen=True)
class EngineImage:
    """What a deployment runs: `given` (the user's image URI), else the adapter image's tag and, with a user
    Dockerfile, the custom tag built on top of it."""

    adapter_tag: str
    custom_tag: str | None = None
    given: str | None = None
    dockerfile: str | None = None

    @property
    def tag(self) -> str:
        return self.custom_tag or self.adapter_tag


def engine_image(
    root: Path, engine_entry: dict[str, Any], base_image: str, engine_params: dict[str, Any] | None = None
) -> EngineImage:
    params = engine_params or {}
    name = engine_entry["name"]
    adapter_hash = image_hash(root, engine_entry, base_image)
    adapter = image_tag(name, adapter_hash)
    if params.get("image_uri"):
        return EngineImage(adapter, given=params["image_uri"])
    if params.get("dockerfile"):
        dockerfile = custom_dockerfile(params["dockerfile"])
        custom = image_hash(root, engine_entry, base_image, {"dockerfile": dockerfile})
        return EngineImage(adapter, image_tag(name, custom, custom=True), dockerfile=dockerfile)
    return EngineImage(adapter)


# ---------------------------------------------------------------- base-image mirror (China regions)


def split_image(ref: str) -> tuple[str, str, str]:
    """(registry host, repository path, ':tag' or '@digest'); Docker Hub's official images get library/."""
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, ref
        if "/" not in path:
            path = "library/" + path
    if "@" in path:
        path, digest = path.split("@", 1)
        return registry, path, "@" + digest
    name, sep, tag = path.rpartition(":")
    if sep and "/" not in tag:
        return registry, name, ":" + tag
    return registry, path, ":latest"


def mirrored(ref: str, mirror: str | None) -> str:
    """The upstream image reference as the build must pull it (see the module docstring)."""
    if not mirror:
        return ref
    registry, path, suffix = split_image(ref)
    if "=" in mirror:
        prefixes = dict(item.split("=", 1) for item in mirror.split(",") if "=" in item)
        prefix = prefixes.get(registry)
        return f"{prefix.rstrip('/')}/{path}{suffix}" if prefix else ref
    return f"{mirror.rstrip('/')}/{registry}/{path}{suffix}"


def check_mirror(value: str) -> str:
    """A base-image mirror as bootstrap accepts it: `<registry>[/<path>]`, or `<upstream>=<prefix>,...`
    with upstreams docker.io, ghcr.io, public.ecr.aws, quay.io, ... Raises ValueError naming the bad part."""
    pairs = [item.split("=", 1) for item in value.split(",")] if "=" in value else [["", value]]
    for pair in pairs:
        if len(pair) != 2 or not _MIRROR_PREFIX.fullmatch(pair[1].strip()):
            raise ValueError(
                f"{value!r} is not a registry prefix: use e.g. "
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/hub, or docker.io=<prefix>,ghcr.io=<prefix>"
            )
    return value.strip()
