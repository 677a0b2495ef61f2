"""Where the build reads model weights from: Hugging Face (huggingface_hub, HF_ENDPOINT honoured) or
ModelScope (the `modelscope` SDK, installed by the buildspec only when it is the source). Each source lists
a revision's files (path, size, sha256 when the hub knows it) and streams one file from a byte offset (HTTP
Range), so the build copies weights straight into S3 and resumes where a previous build stopped.

Errors from either hub become a one-line WeightsError naming the repository and what to do.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

COMMIT_SHA = re.compile(r"^[0-9a-f]{40}$")
READ_CHUNK = 1024 * 1024
HTTP_TIMEOUT = 60.0
HUGGINGFACE, MODELSCOPE = "huggingface", "modelscope"
DEFAULT_REVISION = {HUGGINGFACE: "main", MODELSCOPE: "master"}
TOKEN_SECRET_HINT = "store a read token as the Secrets Manager secret emd/hf-token"


class WeightsError(RuntimeError):
    """The weights cannot be prepared; the message is one line saying why and what to do."""


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None = None  # the hub's LFS checksum, when it gives one


class RangeIgnored(WeightsError):
    """The server answered a Range request with the whole file: the copy restarts from byte 0."""


class WeightsSource(Protocol):
    hub: str
    repo: str

    def resolve(self, revision: str) -> str: ...

    def list_files(self, revision: str) -> list[RemoteFile]: ...

    def open(self, path: str, revision: str, start: int) -> Any: ...


def select_hub(configured: str | None, region: str | None, modelscope_id: str | None) -> str:
    """The hub to download from: the build project's EMD_WEIGHTS_HUB, else ModelScope in the China regions
    (Hugging Face is unreachable there) and Hugging Face elsewhere; Hugging Face when the model has no
    ModelScope id."""
    hub = configured or (MODELSCOPE if (region or "").startswith("cn-") else HUGGINGFACE)
    if hub not in DEFAULT_REVISION:
        raise WeightsError(f"EMD_WEIGHTS_HUB={hub!r} is not a hub; use {HUGGINGFACE} or {MODELSCOPE}")
    if hub == MODELSCOPE and not modelscope_id:
        return HUGGINGFACE
    return hub


def matching(files: list[RemoteFile], pattern: str | None) -> list[RemoteFile]:
    """Files whose path matches the catalogue's model_file pattern (all files without one)."""
    if not pattern:
        return list(files)
    return [f for f in files if fnmatch.fnmatch(f.path, pattern)]


def _stream_response(response: Any, start: int) -> Iterator[bytes]:
    if start and response.status_code != 206:
        raise RangeIgnored(f"the hub ignored the Range request for byte {start}")
    yield from response.iter_bytes(READ_CHUNK)


class HuggingFaceSource:
    hub = HUGGINGFACE

    def __init__(self, repo: str, token: str | None) -> None:
        from huggingface_hub import HfApi

        self.repo = repo
        self._token = token
        self._endpoint = os.environ.get("HF_ENDPOINT") or None
        self._api = HfApi(endpoint=self._endpoint, token=token or False)

    def resolve(self, revision: str) -> str:
        """A branch or tag becomes the commit it points to, so the cache key never goes stale."""
        if COMMIT_SHA.fullmatch(revision):
            return revision
        with hub_errors(self.hub, self.repo, self._token, revision):
            return self._api.model_info(self.repo, revision=revision).sha or revision

    def list_files(self, revision: str) -> list[RemoteFile]:
        from huggingface_hub.hf_api import RepoFile

        with hub_errors(self.hub, self.repo, self._token, revision):
            tree = self._api.list_repo_tree(self.repo, recursive=True, revision=revision)
            return [
                RemoteFile(f.path, f.size, f.lfs.sha256 if f.lfs else None)
                for f in tree
                if isinstance(f, RepoFile)
            ]

    @contextmanager
    def open(self, path: str, revision: str, start: int) -> Iterator[Iterator[bytes]]:
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        url = hf_hub_url(self.repo, path, revision=revision, endpoint=self._endpoint)
        headers = build_hf_headers(token=self._token or False)
        headers["Accept-Encoding"] = "identity"
        if start:
            headers["Range"] = f"bytes={start}-"
        with hub_errors(self.hub, self.repo, self._token, revision), get_session().stream(
            "GET", url, headers=headers, follow_redirects=True, timeout=HTTP_TIMEOUT
        ) as response:
            hf_raise_for_status(response)
            yield _stream_response(response, start)


class ModelScopeSource:
    """ModelScope through its SDK: the file list from HubApi, the bytes from the SDK's download URL."""

    hub = MODELSCOPE

    def __init__(self, repo: str, token: str | None = None) -> None:
        self.repo = repo
        self._token = token

    def resolve(self, revision: str) -> str:
        return revision  # ModelScope revisions are tags or branches: pin a tag for a stable cache key

    def list_files(self, revision: str) -> list[RemoteFile]:
        from modelscope.hub.api import HubApi

        with hub_errors(self.hub, self.repo, self._token, revision):
            entries = HubApi().get_model_files(self.repo, revision=revision, recursive=True)
        return [
            RemoteFile(e["Path"], int(e["Size"]), e.get("Sha256") or None)
            for e in entries
            if e.get("Type", "blob") == "blob"
        ]

    @contextmanager
    def open(self, path: str, revision: str, start: int) -> Iterator[Iterator[bytes]]:
        import httpx
        from modelscope.hub.file_download import get_file_download_url

        url = get_file_download_url(self.repo, path, revision)
        headers = {"Range": f"bytes={start}-"} if start else {}
        with hub_errors(self.hub, self.repo, self._token, revision), httpx.stream(
            "GET", url, headers=headers, follow_redirects=True, timeout=HTTP_TIMEOUT
        ) as response:
            response.raise_for_status()
            yield _stream_response(response, start)


def make_source(hub: str, repo: str, token: str | None) -> WeightsSource:
    return ModelScopeSource(repo, token) if hub == MODELSCOPE else HuggingFaceSource(repo, token)


def describe_hub_error(
    exc: BaseException, hub: str, repo: str, token: str | None, revision: str
) -> str | None:
    """One line for a hub error a user can act on, or None for anything else (a broken download is retried by
    the transfer)."""
    name = type(exc).__name__
    if is_network_error(exc):
        return (
            f"cannot reach {site_name(hub)} ({hub_endpoint(hub)}) for {repo}: {one_line(exc)}; the build "
            "needs outbound HTTPS to it (through a NAT gateway or proxy when it runs in a VPC), or give "
            "model_params.model_files_s3_path; a rerun keeps the files already copied"
        )
    status = getattr(getattr(exc, "response", None), "status_code", None)
    site = site_name(hub)
    denied = name in ("AuthenticationError", "PermissionDeniedError") or (
        name == "HTTPStatusError" and status in (401, 403)
    )
    if name == "GatedRepoError" or (hub == MODELSCOPE and denied):
        if token:
            return (
                f"{repo} on {site} is gated and the token in emd/hf-token has no access to it: request "
                "access on the model's page with the account that owns the token"
            )
        return f"{repo} on {site} is gated: accept its terms on the model's page and {TOKEN_SECRET_HINT}"
    if name == "RevisionNotFoundError":
        return (
            f"revision {revision!r} of {repo} was not found on {site}: set model_params.revision to a "
            "branch, tag or commit"
        )
    if name in ("RepositoryNotFoundError", "NotExistError") or (
        hub == MODELSCOPE and name == "HTTPStatusError" and status == 404
    ):
        return (
            f"repository {repo} was not found on {site} (or it is private: {TOKEN_SECRET_HINT}); check the "
            f"model's hub id or give model_params.model_files_s3_path"
        )
    if name == "RemoteEntryNotFoundError" or name == "EntryNotFoundError":
        return f"a file of {repo}@{revision} disappeared from {site} during the build: run the deploy again"
    return None


# Failures to connect at all (httpx's, and the socket's: gaierror is a name that does not resolve). A
# connection that breaks mid-file is not one of them: the transfer retries it and resumes (transfer.py).
NETWORK_ERROR_NAMES = frozenset(
    {"ConnectError", "ConnectTimeout", "ProxyError", "gaierror", "ConnectionRefusedError"}
)


def is_network_error(exc: BaseException) -> bool:
    return any(cls.__name__ in NETWORK_ERROR_NAMES for cls in type(exc).__mro__)


def site_name(hub: str) -> str:
    return "Hugging Face" if hub == HUGGINGFACE else "ModelScope"


def hub_endpoint(hub: str) -> str:
    if hub == HUGGINGFACE:
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    return os.environ.get("MODELSCOPE_DOMAIN", "www.modelscope.cn")


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


@contextmanager
def hub_errors(hub: str, repo: str, token: str | None, revision: str) -> Iterator[None]:
    try:
        yield
    except WeightsError:
        raise
    except Exception as exc:
        message = describe_hub_error(exc, hub, repo, token, revision)
        if message is None:
            raise
        raise WeightsError(message) from None
