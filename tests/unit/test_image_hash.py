"""The engine image tag must change whenever anything the engine image copies changes."""

from __future__ import annotations

import shutil

from model_specs.images import image_hash
from tests.conftest import ROOT


def _tree(tmp_path):
    for folder in ("serving/engine", "serving/common"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "serving/__init__.py", tmp_path / "serving/__init__.py")
    return tmp_path


def test_hash_follows_engine_common_and_package_marker(tmp_path):
    root = _tree(tmp_path)
    entry, base = {"name": "vllm"}, "vllm/vllm-openai:v0.11.0"
    first = image_hash(root, entry, base)
    assert image_hash(root, entry, base) == first
    for changed in ("serving/common/__init__.py", "serving/engine/__init__.py", "serving/__init__.py"):
        path = root / changed
        path.write_text(path.read_text() + "\n# changed\n")
        now = image_hash(root, entry, base)
        assert now != first, f"editing {changed} did not change the image hash"
        first = now
    assert image_hash(root, entry, "vllm/vllm-openai:v0.12.0") != first
    assert image_hash(root, {"name": "vllm", "x": 1}, base) != first
