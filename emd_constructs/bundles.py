"""The zip bundles CodeBuild runs on: the model bundle (the pipeline's source, which the CLI uploads, or a
directly deployed model stack's build inputs, a CDK asset: template.json, deployment.json and what
serving/build/buildspec.yml runs) and the gateway bundle (what serving/gateway/Dockerfile copies, plus the
gateway build). Files come from the installed packages, so a wheel install ships the same bundle as the source
tree; fixed timestamps: the same files give the same bytes. No aws_cdk here (the CLI imports this module)."""

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


# What a directly deployed stack takes from its build (serving/build/contract.py): the build fills these in
# parameters.json like a pipeline template's, and exports them to the stack's custom resource.
DIRECT_BUILD_TEMPLATE = {
    "Description": "The parameters a directly deployed EMD model stack takes from its build (cdk deploy)",
    "Parameters": {
        "EngineImageUri": {"Type": "String"},
        "ModelDataS3Uri": {"Type": "String"},
    },
}
# deployment.json keys the build reads (serving/build/prepare.py, weights.py): a change to anything else (the
# instance type, scaling) changes no build input, so it starts no build
BUILD_KEYS = ("model_id", "model_tag", "engine_type", "region", "stack_name")
BUILD_EXTRA_PARAMS = ("model_params", "engine_params")


def direct_build_bundle(deployment: dict[str, Any], root: Path = PACKAGES_ROOT) -> bytes:
    """A directly deployed stack's build inputs: the model bundle with what the build reads of the deployment
    (Deployment.to_public_dict: no secret) and DIRECT_BUILD_TEMPLATE."""
    extra = deployment.get("extra_params") or {}
    build_inputs = {
        **{k: deployment[k] for k in BUILD_KEYS},
        "extra_params": {k: extra[k] for k in BUILD_EXTRA_PARAMS if extra.get(k)},
    }
    return model_bundle(DIRECT_BUILD_TEMPLATE, build_inputs, root)


def gateway_bundle(root: Path = PACKAGES_ROOT) -> bytes:
    return _zip(_tree(root, GATEWAY_BUNDLE_DIRS))
