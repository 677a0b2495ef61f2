"""The names the build writes and a directly deployed model stack reads (model_specs/weights_cache.py)."""

from __future__ import annotations

import re

import pytest

from model_specs.catalogue import catalogue
from model_specs.weights_cache import file_pattern, weights_parameter_name, weights_prefix

SSM_NAME = re.compile(r"^/[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")


@pytest.mark.parametrize(
    ("revision", "expected"),
    [
        (None, "/emd/weights/m/default"),
        ("main", "/emd/weights/m/main"),
        ("refs/pr/1", "/emd/weights/m/refs/pr/1"),
        ("v1//ü", "/emd/weights/m/v1/_"),
    ],
)
def test_parameter_names_are_valid_ssm_names(revision, expected) -> None:
    assert weights_parameter_name("m", revision) == expected and SSM_NAME.match(expected)


def test_a_file_pattern_gets_the_same_hash_in_the_folder_and_the_parameter() -> None:
    model = catalogue().model("SmolLM2-135M-Instruct-GGUF")
    pattern = file_pattern(model, "llama.cpp")
    assert pattern == "SmolLM2-135M-Instruct.Q4_1.gguf" == file_pattern(model, "ollama")
    assert file_pattern(catalogue().model("Qwen2.5-7B-Instruct"), "vllm") is None  # the whole repository
    folder = weights_prefix(model.id, "0" * 40, pattern)
    suffix = weights_parameter_name(model.id, None, pattern).rsplit("/", 1)[1]
    assert folder == f"models/{model.id}/{'0' * 40}-{suffix}/" and len(suffix) == 8
    assert weights_prefix(model.id, "refs/pr/1") == f"models/{model.id}/refs_pr_1/"
