"""Weights from a hub straight into S3: each file is streamed into an S3 multipart upload as it downloads
(nothing is written to the build's disk), several files at a time, with bounded memory.

Nothing is trusted that was not verified:
- a file's sha256 is computed on the way and checked against the hub's LFS checksum before the upload is
  completed; a mismatch aborts the upload;
- a build that dies mid-file leaves its multipart upload in S3; the next build lists its parts and downloads
  from the first missing byte (HTTP Range), then reads the completed object back from S3 to check its sha256
  (the hashing state of the dead build is gone);
- the completion marker (every file's path, size, sha256 and S3 ETag) is written last; a cache hit needs the
  marker and a listing of the prefix that matches it (2 S3 calls for up to 1000 files). Objects left by a
  build that died before its marker are reused only after their bytes, read back from S3, match the hub.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from serving.build.sources import RangeIgnored, RemoteFile, WeightsError, WeightsSource

MiB = 1024 * 1024
MIN_PART = 16 * MiB
MAX_PARTS = 9_000  # S3 allows 10,000; the margin keeps the part size a pure function of the file size
PARALLEL_FILES = 4
PARTS_IN_FLIGHT = 2  # per file: memory is PARALLEL_FILES x (PARTS_IN_FLIGHT + 1) x part size
MAX_ATTEMPTS = 5
RETRY_PAUSE = 0.2  # seconds, doubled per failed attempt (at most 1 s)
MARKER_FORMAT = 1
Log = Callable[[str], None]


def part_size(size: int) -> int:
    """Deterministic from the file size, so a later build finds the same part boundaries to resume at."""
    return max(MIN_PART, math.ceil(size / MAX_PARTS / MiB) * MiB)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def is_transient(exc: BaseException) -> bool:
    """Network errors that a Range request from the last byte received can recover from."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "TimeoutException", "ConnectionError", "IncompleteRead"})


@dataclass
class Counters:
    """What moved, for the build log and bench/build_cache.py."""

    downloaded: int = 0
    uploaded: int = 0
    read_back: int = 0
    files_copied: int = 0
    files_resumed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, n: int) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + n)


class Progress:
    """Prints bytes done, MB/s and ETA every `every` seconds from a background thread."""

    def __init__(self, total: int, log: Log, every: float | None = None) -> None:
        self.total = total
        self.done = 0
        self._skipped = 0
        self._log = log
        self._every = every if every is not None else float(os.environ.get("EMD_PROGRESS_SECONDS", "5"))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def skip(self, n: int) -> None:
        with self._lock:
            self.done += n
            self._skipped += n

    def add(self, n: int) -> None:
        with self._lock:
            self.done += n

    def line(self) -> str:
        with self._lock:
            done, moved = self.done, self.done - self._skipped
        elapsed = max(time.monotonic() - self._start, 1e-6)
        rate = moved / elapsed
        pct = 100.0 * done / self.total if self.total else 100.0
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        eta_text = "?" if math.isinf(eta) else f"{int(eta // 60)}m{int(eta % 60):02d}s"
        return (
            f"weights: {human_bytes(done)} / {human_bytes(self.total)} ({pct:.0f}%), "
            f"{rate / 1e6:.1f} MB/s, ETA {eta_text}"
        )

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._log(self.line())

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        if exc[0] is None:
            self._log(self.line())


@dataclass(frozen=True)
class StoredFile:
    path: str
    size: int
    sha256: str
    etag: str


class S3Prefix:
    """One weights prefix in the artifact bucket and the S3 calls the copy makes (counted)."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self.calls = 0
        self._lock = threading.Lock()

    def call(self, operation: str, **kwargs: Any) -> Any:
        with self._lock:
            self.calls += 1
        return getattr(self.s3, operation)(Bucket=self.bucket, **kwargs)

    def key(self, path: str) -> str:
        return self.prefix + path

    def listing(self) -> dict[str, dict[str, Any]]:
        """Every object under the prefix: relative path -> {Size, ETag}."""
        found: dict[str, dict[str, Any]] = {}
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Prefix": self.prefix}
            if token:
                kwargs["ContinuationToken"] = token
            page = self.call("list_objects_v2", **kwargs)
            for obj in page.get("Contents", []):
                found[obj["Key"][len(self.prefix) :]] = {"Size": obj["Size"], "ETag": obj["ETag"]}
            if not page.get("IsTruncated"):
                return found
            token = page["NextContinuationToken"]

    def read_marker(self, name: str) -> dict[str, Any] | None:
        try:
            body = self.call("get_object", Key=self.key(name))["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        try:
            marker = json.loads(body)
        except ValueError:
            return None
        return marker if isinstance(marker, dict) and marker.get("format") == MARKER_FORMAT else None

    def write_marker(self, name: str, marker: dict[str, Any]) -> None:
        self.call("put_object", Key=self.key(name), Body=json.dumps(marker, indent=1).encode())

    def open_upload(self, key: str) -> tuple[str, list[dict[str, Any]]] | None:
        """The newest unfinished multipart upload of `key` and its parts, if a previous build left one."""
        uploads = self.call("list_multipart_uploads", Prefix=key).get("Uploads", [])
        mine = sorted((u for u in uploads if u["Key"] == key), key=lambda u: u["Initiated"])
        for stale in mine[:-1]:
            self.call("abort_multipart_upload", Key=key, UploadId=stale["UploadId"])
        if not mine:
            return None
        upload_id = mine[-1]["UploadId"]
        parts: list[dict[str, Any]] = []
        marker = 0
        while True:
            page = self.call("list_parts", Key=key, UploadId=upload_id, PartNumberMarker=marker)
            parts += page.get("Parts", [])
            if not page.get("IsTruncated"):
                return upload_id, parts
            marker = page["NextPartNumberMarker"]

    def sha256_of(self, path: str, counters: Counters) -> str:
        digest = hashlib.sha256()
        body = self.call("get_object", Key=self.key(path))["Body"]
        for chunk in body.iter_chunks(MiB):
            digest.update(chunk)
            counters.add("read_back", len(chunk))
        return digest.hexdigest()


def verified_marker(store: S3Prefix, name: str, wanted: Iterable[str] | None = None) -> dict[str, Any] | None:
    """The marker if every file it lists is in S3 with its size and ETag (and it covers `wanted`)."""
    marker = store.read_marker(name)
    if marker is None:
        return None
    listed = {f["path"]: f for f in marker.get("files", [])}
    if wanted is not None and not set(wanted) <= set(listed):
        return None
    present = store.listing()
    for path, entry in listed.items():
        obj = present.get(path)
        if obj is None or obj["Size"] != entry["size"] or obj["ETag"] != entry["etag"]:
            return None
    return marker


class _Upload:
    """One file's multipart upload fed from the download stream, parts uploaded in the background."""

    def __init__(self, store: S3Prefix, key: str, pool: ThreadPoolExecutor, counters: Counters) -> None:
        self.store, self.key, self.pool, self.counters = store, key, pool, counters
        self.upload_id = ""
        self.parts: dict[int, str] = {}
        self._pending: list[Future[None]] = []

    def start(self) -> None:
        self.upload_id = self.store.call("create_multipart_upload", Key=self.key)["UploadId"]

    def send(self, number: int, data: bytes) -> None:
        while len([f for f in self._pending if not f.done()]) >= PARTS_IN_FLIGHT:
            self._pending[0].result()
            self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self.pool.submit(self._put, number, data))

    def _put(self, number: int, data: bytes) -> None:
        etag = self.store.call(
            "upload_part", Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )["ETag"]
        self.parts[number] = etag
        self.counters.add("uploaded", len(data))

    def finish(self) -> str:
        for future in self._pending:
            future.result()
        parts = [{"PartNumber": n, "ETag": e} for n, e in sorted(self.parts.items())]
        result = self.store.call(
            "complete_multipart_upload",
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": parts},
        )
        return result["ETag"]

    def drain(self) -> None:
        for future in self._pending:
            future.exception()

    def abort(self) -> None:
        self.drain()
        self.store.call("abort_multipart_upload", Key=self.key, UploadId=self.upload_id)


class IncompleteRead(Exception):
    """The hub closed the response before the file's last byte."""


class _PartWriter:
    """Cuts the download stream into parts of one size and hashes it (unless resumed mid-file)."""

    def __init__(self, upload: _Upload, psize: int, first_part: int, hashing: bool) -> None:
        self.upload, self.psize, self.number = upload, psize, first_part
        self.digest = hashlib.sha256() if hashing else None
        self.buffer = bytearray()

    def write(self, chunk: bytes) -> None:
        if self.digest is not None:
            self.digest.update(chunk)
        self.buffer.extend(chunk)
        while len(self.buffer) >= self.psize:
            self.upload.send(self.number, bytes(self.buffer[: self.psize]))
            del self.buffer[: self.psize]
            self.number += 1

    def flush(self) -> None:
        if self.buffer:
            self.upload.send(self.number, bytes(self.buffer))
            self.buffer.clear()


class WeightsCopier:
    """Copies a list of hub files into an S3 prefix (see the module docstring)."""

    def __init__(
        self, source: WeightsSource, revision: str, store: S3Prefix, log: Log, progress: Progress
    ) -> None:
        self.source, self.revision, self.store = source, revision, store
        self.log, self.progress = log, progress
        self.counters = Counters()
        self._uploads = ThreadPoolExecutor(max_workers=PARALLEL_FILES * PARTS_IN_FLIGHT)

    def copy_all(self, files: list[RemoteFile], present: dict[str, dict[str, Any]]) -> list[StoredFile]:
        ordered = sorted(files, key=lambda f: -f.size)  # big files first: the tail is short
        try:
            with ThreadPoolExecutor(max_workers=PARALLEL_FILES) as pool:
                futures = [pool.submit(self.copy_one, f, present.get(f.path)) for f in ordered]
                stored = [future.result() for future in futures]
        finally:
            self._uploads.shutdown()
        return sorted(stored, key=lambda s: s.path)

    def copy_one(self, remote: RemoteFile, present: dict[str, Any] | None) -> StoredFile:
        if present is not None and present["Size"] == remote.size and remote.sha256:
            # left by a build that died before its marker: reuse only if its bytes match the hub
            if self.store.sha256_of(remote.path, self.counters) == remote.sha256:
                self.progress.skip(remote.size)
                return StoredFile(remote.path, remote.size, remote.sha256, present["ETag"])
            self.log(f"weights: {remote.path} in S3 does not match the hub's checksum: copying it again")
        if remote.size < MIN_PART:
            return self._copy_small(remote)
        try:
            return self._copy_multipart(remote)
        except RangeIgnored:
            self.log(f"weights: {remote.path}: the hub cannot resume; copying it from the start")
            return self._copy_multipart(remote)

    def _download(self, remote: RemoteFile, start: int, sink: Callable[[bytes], None]) -> None:
        """Stream remote[start:] into sink, asking again from the last byte received after a network error."""
        position, attempts = start, 0
        while True:
            try:
                with self.source.open(remote.path, self.revision, position) as chunks:
                    for chunk in chunks:
                        sink(chunk)
                        position += len(chunk)
                        self.counters.add("downloaded", len(chunk))
                        self.progress.add(len(chunk))
                        attempts = 0
                if position < remote.size:
                    raise IncompleteRead(f"{position} of {remote.size} bytes")
                break
            except Exception as exc:
                attempts += 1
                if not is_transient(exc):
                    raise
                if attempts >= MAX_ATTEMPTS:
                    raise WeightsError(
                        f"{remote.path}: the download failed {attempts} times at byte {position} ({exc})"
                    ) from None
                self.log(f"weights: {remote.path}: {type(exc).__name__} at byte {position}; resuming")
                time.sleep(min(RETRY_PAUSE * 2 ** (attempts - 1), 1.0))
        if position != remote.size:
            raise WeightsError(f"{remote.path}: the hub sent {position} bytes, its list says {remote.size}")

    def _copy_small(self, remote: RemoteFile) -> StoredFile:
        buffer = bytearray()
        self._download(remote, 0, buffer.extend)
        sha = self._check(remote, hashlib.sha256(buffer).hexdigest())
        etag = self.store.call("put_object", Key=self.store.key(remote.path), Body=bytes(buffer))["ETag"]
        self.counters.add("uploaded", len(buffer))
        self.counters.add("files_copied", 1)
        return StoredFile(remote.path, remote.size, sha, etag)

    def _resume_point(self, key: str, psize: int, size: int) -> tuple[str | None, dict[int, str]]:
        """An unfinished upload of this key and its contiguous full-size parts from part 1 (never the last
        part, which may be short)."""
        found = self.store.open_upload(key)
        if found is None:
            return None, {}
        upload_id, parts = found
        by_number = {p["PartNumber"]: p for p in parts}
        kept: dict[int, str] = {}
        number = 1
        while number in by_number and by_number[number]["Size"] == psize and number * psize < size:
            kept[number] = by_number[number]["ETag"]
            number += 1
        return upload_id, kept

    def _copy_multipart(self, remote: RemoteFile) -> StoredFile:
        key = self.store.key(remote.path)
        psize = part_size(remote.size)
        upload = _Upload(self.store, key, self._uploads, self.counters)
        upload_id, kept = self._resume_point(key, psize, remote.size)
        if upload_id:
            upload.upload_id, upload.parts = upload_id, dict(kept)
        else:
            upload.start()
        start = len(kept) * psize
        if start:
            self.log(f"weights: {remote.path}: resuming at {human_bytes(start)} ({len(kept)} parts in S3)")
            self.progress.skip(start)
            self.counters.add("files_resumed", 1)
        writer = _PartWriter(upload, psize, len(kept) + 1, hashing=not start)
        try:
            self._download(remote, start, writer.write)
            writer.flush()
            if writer.digest is not None:
                self._check(remote, writer.digest.hexdigest())
        except (RangeIgnored, ChecksumMismatch):
            upload.abort()  # these bytes must not be resumed from
            raise
        except BaseException:
            upload.drain()  # the parts stay in S3 for the next build to resume from
            raise
        etag = upload.finish()
        if writer.digest is not None:
            sha = writer.digest.hexdigest()
        else:  # resumed: the first bytes went through a previous build's hasher, so read them back
            sha = self.store.sha256_of(remote.path, self.counters)
            try:
                self._check(remote, sha)
            except ChecksumMismatch:
                self.store.call("delete_object", Key=key)
                raise
        self.counters.add("files_copied", 1)
        return StoredFile(remote.path, remote.size, sha, etag)

    @staticmethod
    def _check(remote: RemoteFile, sha: str) -> str:
        if remote.sha256 and sha != remote.sha256:
            raise ChecksumMismatch(
                f"{remote.path}: sha256 {sha[:12]}… does not match the hub's {remote.sha256[:12]}…: "
                "the download was corrupted; run the deploy again"
            )
        return sha


class ChecksumMismatch(WeightsError):
    """The bytes copied are not the bytes the hub lists."""


def marker_for(source: WeightsSource, revision: str, pattern: str | None, stored: list[StoredFile]) -> dict:
    return {
        "format": MARKER_FORMAT,
        "hub": source.hub,
        "repo": source.repo,
        "revision": revision,
        "pattern": pattern,
        "bytes": sum(s.size for s in stored),
        "files": [asdict(s) for s in stored],
    }
