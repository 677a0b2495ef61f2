"""The bundles `emd deploy` and `emd bootstrap` upload for CodeBuild: what they hold, that the image tags the
build computes from them are the ones the stacks expect, no secret in them, the same bytes every time."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from emd_constructs.bundles import PACKAGES_ROOT, gateway_bundle, model_bundle
from emd_stacks.model_inputs import engine_image_tag
from model_specs.catalogue import catalogue
from model_specs.deployment import resolve_deployment
from model_specs.images import gateway_image_tag, image_hash, image_tag

KEY = "emd-bundle-test-key-0123456789"


def _deployment():
    return resolve_deployment(
        model_id="SmolLM2-135M-Instruct-GGUF",
        instance_type="g4dn.xlarge",
        service_type="sagemaker_realtime",
        region="us-east-1",
        extra_params={"service_params": {"api_key": KEY}},
    )


def _unpack(data: bytes, dest: Path) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        zf.extractall(dest)
        return zf.namelist()


def test_model_bundle_has_what_the_buildspec_runs_and_no_key(tmp_path):
    dep = _deployment()
    data = model_bundle({"Resources": {}}, dep.to_public_dict())
    names = _unpack(data, tmp_path)
    assert {
        "template.json",
        "deployment.json",
        "serving/build/prepare.py",
        "serving/engine/Dockerfile",
    } <= set(names)
    assert any(n.startswith("model_specs/data/") for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert KEY.encode() not in data and KEY not in (tmp_path / "deployment.json").read_text()
    assert json.loads((tmp_path / "deployment.json").read_text())["stack_name"] == dep.stack_name


def test_the_build_computes_the_engine_tag_the_stack_expects(tmp_path):
    dep = _deployment()
    _unpack(model_bundle({}, dep.to_public_dict()), tmp_path)
    engine = catalogue().engine(dep.engine_type)
    built = image_tag(engine.name, image_hash(tmp_path, engine.model_dump(mode="json"), engine.base_image))
    assert built == engine_image_tag(dep)


def test_gateway_bundle_tag_and_determinism(tmp_path):
    data = gateway_bundle()
    names = _unpack(data, tmp_path)
    assert {
        "serving/gateway/Dockerfile",
        "serving/build/gateway_image.py",
        "serving/build/gateway_buildspec.yml",
    } <= set(names)
    assert gateway_image_tag(tmp_path) == gateway_image_tag(PACKAGES_ROOT)
    assert gateway_bundle() == data


def test_gateway_tag_follows_the_gateway_code(tmp_path):
    _unpack(gateway_bundle(), tmp_path)
    before = gateway_image_tag(tmp_path)
    (tmp_path / "serving" / "gateway" / "app.py").write_text("changed")
    assert gateway_image_tag(tmp_path) != before
