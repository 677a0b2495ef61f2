"""ECR tags of EMD's images: a content hash of what each image is built from.

The engine image: engine name + hash; the build stage (serving/build/prepare.py) tags what it pushes with it,
and a model stack synthesized directly (emd_stacks/model_inputs.py) points at the same tag, so the two agree
without talking to each other. The gateway image: `gateway-` + hash, computed by `emd bootstrap`, which passes
it to the CodeBuild gateway build and to the gateway stack."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

ENGINE_DIR = "serving/engine"
COMMON_DIR = "serving/common"
GATEWAY_DIR = "serving/gateway"
GATEWAY_TAG_PREFIX = "gateway-"


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


def image_hash(root: Path, engine_entry: dict[str, Any], base_image: str) -> str:
    """Content hash of what the engine image copies (serving/engine, serving/common: paths and bytes), the
    catalogue's engine entry and the base image."""
    digest = _tree_digest(root, (ENGINE_DIR, COMMON_DIR))
    digest.update(json.dumps(engine_entry, sort_keys=True).encode())
    digest.update(base_image.encode())
    return digest.hexdigest()


def image_tag(engine: str, content_hash: str) -> str:
    return f"{engine}-{content_hash[:20]}"


def gateway_image_tag(root: Path) -> str:
    """What serving/gateway/Dockerfile copies: model_specs, serving/common and serving/gateway."""
    return GATEWAY_TAG_PREFIX + _tree_digest(root, ("model_specs", COMMON_DIR, GATEWAY_DIR)).hexdigest()[:20]
