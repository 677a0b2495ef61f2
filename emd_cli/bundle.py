"""The zip bundles EMD uploads for CodeBuild: the model bundle (pipeline source: template.json,
deployment.json and what serving/build/buildspec.yml runs) and the gateway bundle (what
serving/gateway/Dockerfile copies, plus the gateway build). Files come from the installed packages, so a wheel
install ships the same bundle as the source tree; fixed timestamps: the same files give the same bytes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import model_specs

# where the project's top-level packages live: the repository root, or site-packages for a wheel install
PACKAGES_ROOT = Path(model_specs.__file__).resolve().parent.parent
MODEL_BUNDLE_DIRS = ("model_specs", "serving/build", "serving/common", "serving/engine")
GATEWAY_BUNDLE_DIRS = ("model_specs", "serving/build", "serving/common", "serving/gateway")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _source_files(root: Path, folders: tuple[str, ...]) -> list[Path]:
    files = [root / "serving" / "__init__.py"]
    for folder in folders:
        files += [
            p
            for p in (root / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        ]
    return sorted(files)


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = (0o755 if name.endswith(".sh") else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, entries[name])
    return buffer.getvalue()


def _tree(root: Path, folders: tuple[str, ...]) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in _source_files(root, folders)}


def model_bundle(template: dict[str, Any], deployment: dict[str, Any], root: Path = PACKAGES_ROOT) -> bytes:
    """template.json + deployment.json (no secret: Deployment.to_public_dict) + the build's sources."""
    return _zip(
        {
            **_tree(root, MODEL_BUNDLE_DIRS),
            "template.json": json.dumps(template, indent=1).encode(),
            "deployment.json": json.dumps(deployment, indent=2).encode(),
        }
    )


def gateway_bundle(root: Path = PACKAGES_ROOT) -> bytes:
    return _zip(_tree(root, GATEWAY_BUNDLE_DIRS))
