"""The local hub (tests/support/hf_server.py) speaks what the real huggingface_hub client expects:
snapshot_download, hf_hub_download, list_repo_files, model_info, gated and missing repositories with the
hub's errors, Range requests, and a body cut mid-way that the client resumes."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.support.hf_server import DEFAULT_TOKEN, HubServer

REPO = "emd-test/tiny-model"
GATED = "emd-test/gated-model"
MiB = 1024 * 1024
FILES = {
    "config.json": '{"model_type": "llama"}',
    "model.safetensors": os.urandom(300_000),
    "gguf/tiny-Q4_K_M.gguf": b"GGUF" + os.urandom(200_000),
}


@pytest.fixture(scope="module")
def repos(hf_hub_server: HubServer) -> HubServer:
    hf_hub_server.add_repo(REPO, FILES)
    hf_hub_server.add_repo(GATED, {"config.json": "{}", "model.safetensors": b"\1" * 1000}, gated=True)
    return hf_hub_server


def test_snapshot_download_model_info_and_file_list(repos, hf_hub, tmp_path):
    info = HfApi().model_info(REPO, files_metadata=True)
    assert info.sha == hf_hub.commit(REPO)
    sizes = {s.rfilename: s.size for s in info.siblings}
    assert sizes == {name: len(c.encode() if isinstance(c, str) else c) for name, c in FILES.items()}
    assert next(s for s in info.siblings if s.rfilename == "model.safetensors").lfs.sha256

    hf_hub.page_size = 1  # the client follows the Link header page by page
    assert sorted(HfApi().list_repo_files(REPO)) == sorted(FILES)

    folder = snapshot_download(REPO, local_dir=tmp_path / "snap")
    for name, content in FILES.items():
        want = content.encode() if isinstance(content, str) else content
        assert (tmp_path / "snap" / name).read_bytes() == want
    assert hf_hub.stats.requests["GET cdn"] == 2  # the two LFS files through the redirect
    assert folder == str((tmp_path / "snap").resolve())

    only_gguf = snapshot_download(REPO, local_dir=tmp_path / "gguf", allow_patterns=["*.gguf"])
    assert [p.name for p in (tmp_path / "gguf").rglob("*.gguf")] == ["tiny-Q4_K_M.gguf"]
    assert not (tmp_path / "gguf" / "model.safetensors").exists() and only_gguf


def test_hf_hub_download_by_commit_and_without_redirect(repos, hf_hub, tmp_path):
    hf_hub.redirect_lfs = False
    path = hf_hub_download(REPO, "model.safetensors", revision=hf_hub.commit(REPO), cache_dir=tmp_path)
    assert Path(path).read_bytes() == FILES["model.safetensors"]
    assert hf_hub.stats.requests["GET cdn"] == 0 and hf_hub.stats.requests["GET resolve"] == 1


def test_gated_repository_needs_a_token(repos, hf_hub, tmp_path):
    with pytest.raises(GatedRepoError) as no_token:
        hf_hub_download(GATED, "config.json", cache_dir=tmp_path, token=False)
    assert no_token.value.response.status_code == 401
    with pytest.raises(GatedRepoError) as wrong:
        HfApi(token="hf_not_allowed").model_info(GATED)
    assert wrong.value.response.status_code == 403
    path = hf_hub_download(GATED, "model.safetensors", cache_dir=tmp_path, token=DEFAULT_TOKEN)
    assert Path(path).read_bytes() == b"\1" * 1000


def test_missing_repository_file_and_revision(repos, hf_hub, tmp_path):
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("emd-test/does-not-exist")
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("emd-test/does-not-exist", local_dir=tmp_path / "x")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "nope.bin", cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        HfApi().model_info(REPO, revision="v9")


def test_range_requests_and_a_cut_body_that_the_client_resumes(repos, hf_hub, tmp_path):
    url = f"{hf_hub.url}/{REPO}/resolve/main/model.safetensors"
    part = httpx.get(url, headers={"Range": "bytes=10-19"}, follow_redirects=True)
    assert part.status_code == 206 and part.content == FILES["model.safetensors"][10:20]
    assert part.headers["Content-Range"] == "bytes 10-19/300000"
    head = httpx.head(url)
    assert head.status_code == 302 and head.headers["X-Linked-Size"] == "300000"
    assert head.headers["X-Repo-Commit"] == hf_hub.commit(REPO)

    # the client writes 10 MiB chunks: a cut after 10.5 MiB resumes from 10 MiB with a Range request
    big = os.urandom(12 * MiB)
    hf_hub.add_repo("emd-test/resume", {"weights.bin": big})
    hf_hub.stats.reset()
    hf_hub.drop_after(10 * MiB + MiB // 2)
    path = hf_hub_download("emd-test/resume", "weights.bin", cache_dir=tmp_path)
    assert Path(path).read_bytes() == big
    assert hf_hub.stats.requests["GET cdn"] == 2
    assert hf_hub.stats.ranges == [f"bytes={10 * MiB}-"]
    assert hf_hub.stats.bytes_sent == 10 * MiB + MiB // 2 + 2 * MiB
