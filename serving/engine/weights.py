"""`<engine image> fetch-weights s3://bucket/prefix/ /opt/ml/model`: copy a model's weights from S3 before the
engine starts (the ECS init container, the EC2 unit's ExecStartPre).

It runs in the engine image itself, so a host needs no AWS CLI image from a public registry (which China
regions cannot reach). Files already present with the right size are kept, so a restarted task resumes instead
of downloading a 140 GB model again; each file is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

log = logging.getLogger("emd.weights")

PARALLEL_FILES = 8


class WeightsError(Exception):
    """The weights cannot be copied: the message says why."""


@dataclass
class FetchReport:
    files: int = 0
    skipped: int = 0
    bytes: int = 0
    seconds: float = 0.0


def split_s3_folder(uri: str) -> tuple[str, str]:
    """s3://bucket/prefix -> (bucket, 'prefix/'): a prefix is a folder, never a partial key name. Not
    model_specs.registry.split_s3_uri: the engine image ships serving/ only, and this one normalizes."""
    if not uri.startswith("s3://") or not uri[len("s3://") :].split("/", 1)[0]:
        raise WeightsError(f"{uri!r} is not an s3://bucket/prefix URI")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _relative_path(key: str, prefix: str) -> PurePosixPath | None:
    """The key's path below the prefix; None for folder markers. Refuses keys that would leave the folder."""
    rel = key[len(prefix) :]
    if not rel or rel.endswith("/"):
        return None
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts:
        raise WeightsError(f"refusing object key {key!r}: it would be written outside the model folder")
    return path


def plan(s3: Any, bucket: str, prefix: str) -> list[tuple[str, PurePosixPath, int]]:
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = _relative_path(obj["Key"], prefix)
            if rel is not None:
                objects.append((obj["Key"], rel, int(obj["Size"])))
    return objects


def fetch_weights(s3: Any, uri: str, dest: Path, parallel_files: int = PARALLEL_FILES) -> FetchReport:
    bucket, prefix = split_s3_folder(uri)
    started = time.monotonic()
    objects = plan(s3, bucket, prefix)
    if not objects:
        raise WeightsError(f"no objects under {uri}: the build stage has not prepared these weights")
    total = sum(size for _, _, size in objects)
    log.info("copying %d files (%.2f GiB) from %s to %s", len(objects), total / 2**30, uri, dest)
    report = FetchReport()
    lock = threading.Lock()

    def copy(item: tuple[str, PurePosixPath, int]) -> None:
        key, rel, size = item
        target = dest.joinpath(*rel.parts)
        if target.is_file() and target.stat().st_size == size:
            with lock:
                report.skipped += 1
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        s3.download_file(bucket, key, str(partial))
        os.replace(partial, target)
        with lock:
            report.files += 1
            report.bytes += size
        log.info("%s (%.1f MiB)", rel, size / 2**20)

    with ThreadPoolExecutor(max_workers=parallel_files) as pool:
        for _ in pool.map(copy, objects):
            pass
    report.seconds = time.monotonic() - started
    log.info(
        "done: %d copied (%.2f GiB), %d already present, %.1f s",
        report.files,
        report.bytes / 2**30,
        report.skipped,
        report.seconds,
    )
    return report


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: fetch-weights s3://bucket/prefix/ /local/model/dir", file=sys.stderr)
        return 2
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        fetch_weights(boto3.client("s3"), argv[0], Path(argv[1]))
    except WeightsError as exc:
        log.error("%s", exc)
        return 1
    except (BotoCoreError, ClientError) as exc:  # no permission, no bucket, no network: one line, then exit 1
        log.error("cannot copy %s: %s", argv[0], exc)
        return 1
    return 0
