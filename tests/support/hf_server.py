"""A local Hugging Face Hub that the real `huggingface_hub` client (1.x/2.x) accepts through HF_ENDPOINT.

Repositories are folders the test writes under `server.root/<org>/<name>/`; every file in the folder is in
the repository. The routes are the ones `snapshot_download`, `hf_hub_download`, `list_repo_files`,
`list_repo_tree` and `model_info` call:

    GET  /api/models/<repo>[/revision/<rev>]          model info: sha, siblings (+ sizes and LFS with ?blobs)
    GET  /api/models/<repo>/tree/<rev>[/<path>]       tree listing (?recursive), paginated with a Link header
    HEAD|GET /<repo>/resolve/<rev>/<path>             X-Repo-Commit, ETag, Content-Length, Accept-Ranges;
                                                      LFS files answer 302 to /cdn/... with X-Linked-Etag
                                                      and X-Linked-Size, as the hub redirects to its CDN
    HEAD|GET /cdn/<repo>/<commit>/<path>              the bytes, with Range (206 + Content-Range)

Revisions: "main" and the commit sha (a content hash of the repository). Errors carry the hub's headers
(X-Error-Code / X-Error-Message), so the client raises its own exceptions: a missing repository is 404
RepoNotFound, a gated one 401 GatedRepo without a token and 403 GatedRepo with a token not in
`server.tokens`, a missing file 404 EntryNotFound, an unknown revision 404 RevisionNotFound.

`server.stats` counts requests per route and body bytes sent; `server.drop_after(n)` cuts the next file
body after n bytes (the connection is closed mid-body) for resume tests. Use `server.env()` for a subprocess
and `server.patch_client(monkeypatch)` in-process (huggingface_hub reads HF_ENDPOINT/HF_HUB_OFFLINE at
import time). hf_transfer and Xet stay off: the server never sends Xet headers.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from aiohttp import web

from tests.support.servers import ServerThread

LFS_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".h5", ".onnx", ".msgpack")
LFS_MIN_BYTES = 10 * 1024 * 1024  # larger files are LFS whatever their suffix
CHUNK = 1024 * 1024
DEFAULT_TOKEN = "hf_test_token_0123456789"
_API = re.compile(r"^/api/models/(?P<repo>[^/]+(?:/[^/]+)?)(?:/revision/(?P<rev>[^/]+))?$")
_TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+|[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+|[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")
_CDN = re.compile(r"^/cdn/(?P<repo>[^/]+/[^/]+|[^/]+)/(?P<rev>[0-9a-f]{40})/(?P<path>.+)$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class HubFile:
    path: str
    size: int
    blob_id: str  # git blob sha1
    sha256: str | None  # set for LFS files

    @property
    def etag(self) -> str:
        return self.sha256 or self.blob_id

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": self.blob_id, "size": self.size, "path": self.path}
        if self.sha256:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": 134}
        return entry


Snapshot = tuple[str, dict[str, HubFile]]  # (commit, path -> file)


@dataclass
class HubStats:
    requests: Counter[str] = field(default_factory=Counter)  # "GET resolve", "HEAD cdn", "GET tree", ...
    bytes_sent: int = 0
    ranges: list[str] = field(default_factory=list)  # Range headers of file requests, in order
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def request(self, key: str) -> None:
        with self.lock:
            self.requests[key] += 1

    def sent(self, nbytes: int) -> None:
        with self.lock:
            self.bytes_sent += nbytes

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.ranges.clear()
            self.bytes_sent = 0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def _hash_file(path: Path, algo: str, prefix: bytes = b"") -> str:
    digest = hashlib.new(algo)
    digest.update(prefix)
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class HubServer:
    def __init__(self, root: Path, tokens: set[str] | None = None, redirect_lfs: bool = True) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.tokens = set(tokens) if tokens is not None else {DEFAULT_TOKEN}
        self.gated: set[str] = set()
        self.redirect_lfs = redirect_lfs
        self.page_size = 1000
        self.ignore_ranges = False  # answer Range requests with the whole file (as some CDNs do)
        self.stats = HubStats()
        self._drops: list[tuple[int, str | None]] = []
        self._hash_cache: dict[tuple[str, int, int], HubFile] = {}
        self._lock = threading.Lock()
        self._thread: ServerThread | None = None
        self.url = ""

    # ------------------------------------------------------------ what tests call

    def start(self) -> HubServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._thread = ServerThread(app).__enter__()
        self.url = self._thread.url
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._thread.__exit__(None, None, None)
            self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_repo(self, repo_id: str, files: dict[str, bytes | str], gated: bool = False) -> Path:
        """Write a repository (path -> content) and return its folder."""
        folder = self.root / repo_id
        for name, content in files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode() if isinstance(content, str) else content)
        if gated:
            self.gated.add(repo_id)
        return folder

    def add_sparse_file(self, repo_id: str, name: str, size: int) -> Path:
        """A file of `size` zero bytes that takes no disk (sparse) and no memory to write."""
        target = self.root / repo_id / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as fh:
            fh.truncate(size)
        return target

    def drop_after(self, nbytes: int, times: int = 1, path: str | None = None) -> None:
        """Close the connection after `nbytes` of the next `times` file bodies (GET resolve or cdn) longer
        than `nbytes`, of the file `path` only when given."""
        with self._lock:
            self._drops.extend([(nbytes, path)] * times)

    def _take_drop(self, item: HubFile, length: int) -> int | None:
        with self._lock:
            for i, (nbytes, path) in enumerate(self._drops):
                if (path is None or path == item.path) and length > nbytes:
                    del self._drops[i]
                    return nbytes
        return None

    def commit(self, repo_id: str) -> str:
        return self._snapshot(repo_id)[0]

    def files(self, repo_id: str) -> list[HubFile]:
        return list(self._snapshot(repo_id)[1].values())

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that uses huggingface_hub against this server."""
        return {
            "HF_ENDPOINT": self.url,
            "HF_HUB_OFFLINE": "0",
            "HF_HUB_ENABLE_HF_TRANSFER": "0",
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }

    def patch_client(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point an already-imported huggingface_hub at this server (its constants are read at import)."""
        from huggingface_hub import constants

        for key, value in self.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr(constants, "ENDPOINT", self.url)
        template = self.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(constants, "HF_URL_HOSTS", constants.HF_URL_HOSTS | {"127.0.0.1"}, raising=False)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True, raising=False)

    # ------------------------------------------------------------ repository content

    def _file(self, folder: Path, path: Path) -> HubFile:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            cached = self._hash_cache.get(key)
        if cached:
            return cached
        rel = path.relative_to(folder).as_posix()
        lfs = path.suffix in LFS_SUFFIXES or stat.st_size >= LFS_MIN_BYTES
        blob = _hash_file(path, "sha1", f"blob {stat.st_size}\0".encode())
        item = HubFile(rel, stat.st_size, blob, _hash_file(path, "sha256") if lfs else None)
        with self._lock:
            self._hash_cache[key] = item
        return item

    def _snapshot(self, repo_id: str) -> Snapshot:
        folder = self.root / repo_id
        paths = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
        files = {f.path: f for f in (self._file(folder, p) for p in paths)}
        commit = hashlib.sha1(
            "\n".join(f"{f.path} {f.etag}" for f in files.values()).encode()
        ).hexdigest()
        return commit, files

    # ------------------------------------------------------------ HTTP

    @staticmethod
    def _error(status: int, code: str | None, message: str, **headers: str) -> web.Response:
        hdrs = {"X-Error-Message": message, **headers}
        if code:
            hdrs["X-Error-Code"] = code
        return web.json_response({"error": message}, status=status, headers=hdrs)

    def _access(self, request: web.Request, repo_id: str) -> web.Response | None:
        """None when the request may read the repository, else the hub's answer."""
        if not (self.root / repo_id).is_dir():
            return self._error(404, "RepoNotFound", "Repository not found")
        if repo_id in self.gated:
            auth = request.headers.get("Authorization", "")
            token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
            if token is None:
                return self._error(
                    401,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted. You must have access to it and be "
                    "authenticated to access it. Please log in.",
                )
            if token not in self.tokens:
                return self._error(
                    403,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted and you are not in the authorized list. "
                    f"Visit {self.url}/{repo_id} to ask for access.",
                )
        return None

    def _open(self, request: web.Request, repo_id: str, rev: str) -> Snapshot | web.Response:
        """(commit, files) of a revision the request may read, else the hub's error answer."""
        denied = self._access(request, repo_id)
        if denied:
            return denied
        commit, files = self._snapshot(repo_id)
        if unquote(rev) not in ("main", commit):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(rev)}")
        return commit, files

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        for pattern, kind, handler in (
            (_TREE, "tree", self._tree),
            (_API, "api", self._model_info),
            (_RESOLVE, "resolve", self._resolve),
            (_CDN, "cdn", self._cdn),
        ):
            match = pattern.match(path)
            if match:
                self.stats.request(f"{request.method} {kind}")
                groups = {k: unquote(v) if v else v for k, v in match.groupdict().items()}
                return await handler(request, **groups)
        self.stats.request(f"{request.method} other")
        return self._error(404, None, "Not found")

    async def _model_info(self, request: web.Request, repo: str, rev: str | None) -> web.Response:
        found = self._open(request, repo, rev or "main")
        if isinstance(found, web.Response):
            return found
        commit, files = found
        blobs = request.query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for f in files.values():
            sibling: dict[str, Any] = {"rfilename": f.path}
            if blobs:
                sibling.update({"size": f.size, "blobId": f.blob_id})
                if f.sha256:
                    sibling["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": 134}
            siblings.append(sibling)
        return web.json_response(
            {
                "_id": commit[:24],
                "id": repo,
                "modelId": repo,
                "author": repo.split("/")[0],
                "sha": commit,
                "lastModified": "2026-11-01T00:00:00.000Z",
                "createdAt": "2026-10-01T00:00:00.000Z",
                "private": False,
                "gated": "manual" if repo in self.gated else False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "library_name": "transformers",
                "siblings": siblings,
                "usedStorage": sum(f.size for f in files.values()),
            }
        )

    async def _tree(self, request: web.Request, repo: str, rev: str, path: str | None) -> web.Response:
        found = self._open(request, repo, rev)
        if isinstance(found, web.Response):
            return found
        _, files = found
        base = (path or "").strip("/")
        recursive = request.query.get("recursive", "").lower() in ("1", "true")
        entries: dict[str, dict[str, Any]] = {}
        for f in files.values():
            if base and not f.path.startswith(base + "/"):
                continue
            rest = f.path[len(base) + 1 :] if base else f.path
            parts = rest.split("/")
            # the folders on the way, then the file itself when listing recursively or at this level
            for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
                folder = "/".join(([base] if base else []) + parts[:depth])
                entries.setdefault(folder, {"type": "directory", "oid": "0" * 40, "size": 0, "path": folder})
            if recursive or len(parts) == 1:
                entries[f.path] = f.tree_entry()
        if base and not entries:
            return self._error(404, "EntryNotFound", f"{base} does not exist on \"{rev}\"")
        ordered = [entries[k] for k in sorted(entries)]
        start = int(request.query.get("cursor", "0"))
        page = ordered[start : start + self.page_size]
        headers = {}
        if start + self.page_size < len(ordered):
            query = dict(request.query, cursor=str(start + self.page_size))
            next_url = request.url.with_query(query)
            headers["Link"] = f'<{next_url}>; rel="next"'
        return web.json_response(page, headers=headers)

    async def _resolve(self, request: web.Request, repo: str, rev: str, path: str) -> web.StreamResponse:
        found = self._open(request, repo, rev)
        if isinstance(found, web.Response):
            return found
        commit, files = found
        item = files.get(path)
        if item is None:
            return self._error(404, "EntryNotFound", "Entry not found", **{"X-Repo-Commit": commit})
        if item.sha256 and self.redirect_lfs:
            location = f"{self.url}/cdn/{repo}/{commit}/{quote(path)}"
            return web.Response(
                status=302,
                headers={
                    "Location": location,
                    "X-Repo-Commit": commit,
                    "X-Linked-Etag": f'"{item.sha256}"',
                    "X-Linked-Size": str(item.size),
                    "ETag": f'"{item.blob_id}"',
                },
            )
        return await self._send(request, repo, commit, item)

    async def _cdn(self, request: web.Request, repo: str, rev: str, path: str) -> web.StreamResponse:
        commit, files = self._snapshot(repo)
        item = files.get(path)
        if rev != commit or item is None:
            return web.Response(status=404, text="NoSuchKey")
        return await self._send(request, repo, commit, item)

    async def _send(self, request: web.Request, repo: str, commit: str, item: HubFile) -> web.StreamResponse:
        start, end = 0, item.size - 1
        status = 200
        header = request.headers.get("Range")
        if header and request.method == "GET":
            with self.stats.lock:
                self.stats.ranges.append(header)
        if header and not self.ignore_ranges:
            m = _RANGE.match(header.strip())
            if not m or (not m.group(1) and not m.group(2)):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{item.size}"})
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), item.size - 1) if m.group(2) else item.size - 1
            else:  # suffix range: the last n bytes
                start = max(item.size - int(m.group(2)), 0)
            if start >= item.size or start > end:
                return web.Response(status=416, headers={"Content-Range": f"bytes */{item.size}"})
            status = 206
        length = end - start + 1 if item.size else 0
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{item.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Length": str(length),
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'inline; filename="{Path(item.path).name}";',
        }
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{item.size}"
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        drop = self._take_drop(item, length)
        budget = length if drop is None else min(drop, length)
        sent = 0
        try:
            with (self.root / repo / item.path).open("rb") as fh:
                fh.seek(start)
                while sent < budget:
                    chunk = fh.read(min(CHUNK, budget - sent))
                    if not chunk:
                        break
                    await response.write(chunk)
                    sent += len(chunk)
        except ConnectionError:  # the client went away (e.g. it did not want the whole file)
            self.stats.sent(sent)
            return response
        self.stats.sent(sent)
        if drop is not None and sent < length:
            assert request.transport is not None
            request.transport.close()  # the client sees the body end early
            return response
        await response.write_eof()
        return response


@pytest.fixture(scope="session")
def hf_hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    """A running local hub (empty: tests add their repositories with add_repo)."""
    with HubServer(tmp_path_factory.mktemp("hf-hub")) as server:
        yield server


@pytest.fixture
def hf_hub(hf_hub_server: HubServer, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    """The session hub, with this test's huggingface_hub pointed at it and its counters reset."""
    hf_hub_server.patch_client(monkeypatch)
    hf_hub_server.stats.reset()
    hf_hub_server.redirect_lfs = True
    hf_hub_server.page_size = 1000
    hf_hub_server.ignore_ranges = False
    with hf_hub_server._lock:
        hf_hub_server._drops.clear()
    return hf_hub_server
