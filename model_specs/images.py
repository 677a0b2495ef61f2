"""The engine image's ECR tag: engine name + a content hash of what the image is built from. The build stage
(serving/build/prepare.py) tags what it pushes with it, and a model stack synthesized directly
(emd_stacks/model_inputs.py) points at the same tag, so the two agree without talking to each other."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

ENGINE_DIR = "serving/engine"
COMMON_DIR = "serving/common"


def image_hash(root: Path, engine_entry: dict[str, Any], base_image: str) -> str:
    """Content hash of what the engine image copies (serving/engine, serving/common: paths and bytes), the
    catalogue's engine entry and the base image."""
    digest = hashlib.sha256()
    files = [p for p in [root / "serving" / "__init__.py"] if p.is_file()]
    for folder in (ENGINE_DIR, COMMON_DIR):
        files += [p for p in (root / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(json.dumps(engine_entry, sort_keys=True).encode())
    digest.update(base_image.encode())
    return digest.hexdigest()


def image_tag(engine: str, content_hash: str) -> str:
    return f"{engine}-{content_hash[:20]}"
