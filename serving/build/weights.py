"""The weights step: a model revision from its hub into the artifact bucket's cache, or a user's S3 prefix
used in place.

Cache layout: s3://<bucket>/models/<model-id>/<revision>/ (a branch is resolved to its commit first), with a
suffix naming the engine's file pattern when it takes a subset (a GGUF quantization). A cache hit costs two
S3 calls and no hub bytes; see transfer.py for what makes a copy count as complete. Once the copy is complete
(or found complete), its folder is published in SSM for model stacks deployed without the pipeline
(model_specs/weights_cache.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any

from model_specs.registry import split_s3_uri
from model_specs.weights_cache import file_pattern, weights_parameter_name, weights_prefix
from serving.build import contract
from serving.build.sources import DEFAULT_REVISION, WeightsError, make_source, matching, select_hub
from serving.build.transfer import (
    Counters,
    Progress,
    S3Prefix,
    WeightsCopier,
    human_bytes,
    marker_for,
    verified_marker,
)

Log = Callable[[str], None]
COUNTED = tuple(f.name for f in fields(Counters) if f.name != "lock")
ACCESS_DENIED = frozenset({"AccessDenied", "403", "AllAccessDisabled", "KMS.AccessDenied"})


@dataclass
class WeightsResult:
    uri: str
    cached: bool
    s3_calls: int
    counters: Counters
    # the cache folder (key prefix) and the SSM parameter that publishes it; None for a user's S3 prefix
    prefix: str | None = None
    parameter: str | None = None

    def summary(self) -> dict[str, Any]:
        moved = {name: getattr(self.counters, name) for name in COUNTED}
        return {"uri": self.uri, "cached": self.cached, "s3_calls": self.s3_calls, **moved}


def publish_location(ssm: Any, result: WeightsResult, model_id: str, model_tag: str, log: Log) -> None:
    """Write the verified cache folder to its SSM parameter (a directly deployed stack reads it), tagged."""
    if result.parameter is None or result.prefix is None:
        return
    ssm.put_parameter(
        Name=result.parameter,
        Value=result.prefix,
        Type="String",
        Overwrite=True,
        Description=f"EMD weights cache folder of {model_id} in the artifact bucket (written by the build)",
    )
    tags = [{"Key": "emd:model-id", "Value": model_id}, {"Key": "emd:tag", "Value": model_tag}]
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=result.parameter, Tags=tags)
    log(f"weights: published {result.prefix} in {result.parameter}")


@contextmanager
def s3_errors(bucket: str, prefix: str) -> Iterator[None]:
    """S3 errors a user can act on as one line; anything else propagates."""
    from botocore.exceptions import ClientError

    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        where = f"s3://{bucket}/{prefix}"
        if code in ACCESS_DENIED:
            raise WeightsError(
                f"access denied on {where} ({exc.operation_name}): the EMD build role must be allowed to "
                "read and write it (a bucket policy or KMS key of another account must grant the build role)"
            ) from None
        if code == "NoSuchBucket":
            raise WeightsError(f"bucket {bucket} does not exist (reading {where})") from None
        raise


def use_given_location(s3: Any, uri: str, log: Log) -> WeightsResult:
    """model_params.model_files_s3_path: used where it is, after checking it holds at least one object."""
    location = uri.rstrip("/") + "/"
    bucket, prefix = split_s3_uri(location)
    store = S3Prefix(s3, bucket, prefix)
    with s3_errors(bucket, prefix):
        found = store.call("list_objects_v2", Prefix=prefix, MaxKeys=1).get("KeyCount", 0)
    if not found:
        raise WeightsError(f"model_params.model_files_s3_path {location} holds no objects")
    log(f"weights: using {location} in place (model_params.model_files_s3_path)")
    return WeightsResult(location, True, store.calls, Counters())


def prepare_weights(
    dep: dict[str, Any], *, bucket: str, s3: Any, token: Callable[[], str | None], log: Log
) -> WeightsResult:
    from model_specs.catalogue import catalogue

    params = (dep.get("extra_params") or {}).get("model_params") or {}
    if params.get("model_files_s3_path"):
        return use_given_location(s3, params["model_files_s3_path"], log)
    model = catalogue().model(dep["model_id"])
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    hub = select_hub(os.environ.get("EMD_WEIGHTS_HUB"), region, model.modelscope_id)
    repo = model.modelscope_id if hub == "modelscope" and model.modelscope_id else model.hf_id
    pattern = file_pattern(model, dep["engine_type"])
    parameter = weights_parameter_name(model.id, params.get("revision"), pattern)
    secret = token() if hub == "huggingface" else None
    source = make_source(hub, repo, secret)
    revision = source.resolve(params.get("revision") or DEFAULT_REVISION[hub])
    prefix = weights_prefix(model.id, revision, pattern)
    uri = f"s3://{bucket}/{prefix}"
    store = S3Prefix(s3, bucket, prefix)
    with s3_errors(bucket, prefix):
        marker = verified_marker(store, contract.COMPLETION_MARKER)
        if marker is not None and marker.get("pattern") == pattern:
            log(f"weights: cached at {uri} ({len(marker['files'])} files, {human_bytes(marker['bytes'])})")
            return WeightsResult(uri, True, store.calls, Counters(), prefix, parameter)
        if marker is None:
            log(f"weights: no verified copy at {uri} yet")
        files = matching(source.list_files(revision), pattern)
        if not files:
            raise WeightsError(f"no file of {repo}@{revision} matches the engine's model_file {pattern!r}")
        present = store.listing()
        total = sum(f.size for f in files)
        log(f"weights: {repo}@{revision} from {hub}: {len(files)} files, {human_bytes(total)} -> {uri}")
        started = time.monotonic()
        with Progress(total, log) as progress:
            copier = WeightsCopier(source, revision, store, log, progress)
            stored = copier.copy_all(files, present)
        store.write_marker(contract.COMPLETION_MARKER, marker_for(source, revision, pattern, stored))
    seconds = max(time.monotonic() - started, 1e-6)
    moved = copier.counters.downloaded
    rate = moved / seconds / 1e6
    log(f"weights: done in {seconds:.0f} s, {human_bytes(moved)} downloaded ({rate:.1f} MB/s)")
    return WeightsResult(uri, False, store.calls, copier.counters, prefix, parameter)
