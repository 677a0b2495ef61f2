"""serving/engine/Dockerfile rendered for every engine of the catalogue with the build args the build passes,
checked the way hadolint would (no Docker daemon here), and the base-image mirror for the China regions."""

from __future__ import annotations

import re
import shlex

import pytest

from model_specs.catalogue import catalogue
from model_specs.images import engine_image, mirrored, split_image
from serving.build.images import build_command, render
from tests.conftest import ROOT

DOCKERFILE = (ROOT / "serving/engine/Dockerfile").read_text()
ENGINES = sorted(e.name for e in catalogue().engines.values())
CN_MIRROR = "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/hub"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [li for li in text.splitlines() if not li.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(li.split(None, 1)[0].upper(), li.split(None, 1)[1]) for li in joined.splitlines() if li.strip()]


def build_args_of(argv: list[str]) -> dict[str, str]:
    return dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--build-arg")


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("mirror", [None, CN_MIRROR])
def test_dockerfile_renders_for_every_engine(engine_name, mirror):
    engine = catalogue().engine(engine_name)
    argv = build_command(
        dockerfile="serving/engine/Dockerfile", context=".", tag="x", cache_from=[],
        build_args={"BASE_IMAGE": mirrored(engine.base_image, mirror), "ENGINE": engine.name},
    )  # fmt: skip
    args = build_args_of(argv)
    declared = set(re.findall(r"^ARG (\w+)", DOCKERFILE, re.MULTILINE))
    assert set(args) == declared, "the build passes exactly the ARGs the Dockerfile declares"
    steps = instructions(render(DOCKERFILE, args))
    base = [a for i, a in steps if i == "FROM"]
    registry, path, _ = split_image(engine.base_image)
    want = engine.base_image if mirror is None else f"{CN_MIRROR}/{registry}/{path}"
    assert len(base) == 1 and base[0].startswith(want)
    assert not base[0].endswith(":latest") and ":" in base[0].rsplit("/", 1)[-1], "pin the base image"
    env = next(a for i, a in steps if i == "ENV")
    assert f"EMD_ENGINE={engine.name}" in env
    assert "${" not in base[0] + env.replace("${PATH}", "")  # every ARG resolved


def test_dockerfile_follows_hadolint_rules():
    steps = instructions(DOCKERFILE)
    kinds = [i for i, _ in steps]
    assert "ADD" not in kinds  # DL3020: COPY for local files
    for instruction, args in steps:
        if instruction == "COPY":  # every source is in the repository (the build context)
            for source in shlex.split(args)[:-1]:
                assert (ROOT / source).exists(), source
        if instruction == "RUN" and "apt-get install" in args:
            assert "--no-install-recommends" in args and "-y" in args  # DL3015, DL3014
            assert "rm -rf /var/lib/apt/lists/*" in args  # DL3009
        if instruction == "RUN" and "pip install" in args:
            assert "--no-cache-dir" in args  # DL3042
        if instruction in ("ENTRYPOINT", "CMD"):
            assert args.startswith("["), f"{instruction} in exec form (DL3025)"
    assert kinds.index("FROM") == 1 and kinds[0] == "ARG"
    entrypoint = ROOT / "serving/engine/entrypoint.sh"
    assert entrypoint.read_text().startswith("#!/bin/sh")


@pytest.mark.parametrize(
    ("ref", "mirror", "pulled"),
    [
        ("vllm/vllm-openai:v0.11.0", "m.example.cn", "m.example.cn/docker.io/vllm/vllm-openai:v0.11.0"),
        ("ubuntu:24.04", "m.example.cn/", "m.example.cn/docker.io/library/ubuntu:24.04"),
        ("ghcr.io/ggml-org/llama.cpp:server-b6500", "m.example.cn",
         "m.example.cn/ghcr.io/ggml-org/llama.cpp:server-b6500"),
        ("public.ecr.aws/neuron/x@sha256:" + "a" * 64, "m.example.cn",
         "m.example.cn/public.ecr.aws/neuron/x@sha256:" + "a" * 64),
        ("ollama/ollama:0.12.3", "docker.io=acr.cn/dh,ghcr.io=acr.cn/gh", "acr.cn/dh/ollama/ollama:0.12.3"),
        ("ghcr.io/a/b:1", "docker.io=acr.cn/dh,ghcr.io=acr.cn/gh", "acr.cn/gh/a/b:1"),
        ("quay.io/a/b:1", "docker.io=acr.cn/dh", "quay.io/a/b:1"),  # no mirror for that registry
        ("localhost:5000/a:1", None, "localhost:5000/a:1"),
    ],
)  # fmt: skip
def test_base_image_mirror(ref, mirror, pulled):
    assert mirrored(ref, mirror) == pulled


def test_engine_image_key_covers_the_users_inputs(tmp_path):
    (tmp_path / "serving/engine").mkdir(parents=True)
    (tmp_path / "serving/engine/adapter.py").write_text("x")
    entry, base = {"name": "vllm"}, "vllm/vllm-openai:v1"
    plain = engine_image(tmp_path, entry, base)
    given = engine_image(tmp_path, entry, base, {"image_uri": "r.example.com/a:1"})
    custom = engine_image(tmp_path, entry, base, {"dockerfile": "RUN true\n"})
    assert plain.tag == plain.adapter_tag == custom.adapter_tag and plain.custom_tag is None
    assert given.given == "r.example.com/a:1"
    assert custom.tag == custom.custom_tag != plain.tag
    with pytest.raises(ValueError, match="its first FROM is 'ubuntu'"):
        engine_image(tmp_path, entry, base, {"dockerfile": "FROM ubuntu\n"})
