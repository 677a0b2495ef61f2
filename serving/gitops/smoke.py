"""The smoke test after each wave, through the gateway: `/v1/models` lists the route, and one request of the
model's kind answers (a chat completion, an embedding, a rerank, a transcription of a short silence).

Two halves. `run_smoke_test` (the pipeline's SmokeTest step) uploads a bundle with routes.json and starts the
target's smoke-test project, which sits in the gateway's VPC (the ALB is internal by default) and runs
`check_routes` there. Each API key is read from Secrets Manager inside `check_routes` and never printed: only
routes, status codes and the gateway's error text (which never contains a key) are.
"""

from __future__ import annotations

import io
import json
import os
import struct
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_specs.gitops import PlanEntry, smoke_project_name
from serving.gitops.builds import BUNDLE_PACKAGES, StepError, add_tree, build_log, failure, log, wait_builds

ROUTES_FILE = "routes.json"
DEADLINE_ENV = "EMD_SMOKE_DEADLINE_SECONDS"
DEFAULT_DEADLINE = 1800.0  # an endpoint scaled to zero starts an instance, pulls the image and loads weights
RETRY_STATUSES = frozenset({404, 429, 502, 503, 504})  # not registered yet, busy, cold, starting
REQUEST_TIMEOUT = 600.0  # async endpoints answer within the gateway's EMD_ASYNC_WAIT_SECONDS (540 s)
PROMPT = "Reply with the single word OK."


@dataclass(frozen=True)
class Route:
    route: str
    model_type: str
    api_key_secret_name: str | None


class SmokeFailure(Exception):
    pass


# ---------------------------------------------------------------- pipeline side


def routes_bundle(entries: list[PlanEntry], src: Path) -> bytes:
    routes = [
        {"route": e.route, "model_type": e.model_type, "api_key_secret_name": e.api_key_secret_name}
        for e in entries
    ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(ROUTES_FILE, json.dumps(routes, indent=2))
        for package in BUNDLE_PACKAGES:
            add_tree(zf, src, package)
    return buf.getvalue()


def run_smoke_test(
    session: Any,
    stage: str,
    entries: list[PlanEntry],
    *,
    pipeline: str,
    bucket: str,
    src: Path,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    s3, codebuild, logs = session.client("s3"), session.client("codebuild"), session.client("logs")
    key = f"gitops/{pipeline}/smoke/{stage}/source.zip"
    s3.put_object(Bucket=bucket, Key=key, Body=routes_bundle(entries, src))
    build_id = codebuild.start_build(
        projectName=smoke_project_name(pipeline),
        sourceTypeOverride="S3",
        sourceLocationOverride=f"{bucket}/{key}",
    )["build"]["id"]
    log(f"smoke test of {stage}: build {build_id} ({', '.join(e.route for e in entries)})")
    build = wait_builds(codebuild, [build_id], sleep=sleep)[build_id]
    lines = build_log(logs, build)
    for line in lines:
        if line.startswith("[emd-smoke]"):
            print(line, flush=True)
    if build.get("buildStatus") != "SUCCEEDED":
        raise StepError(f"smoke test of {stage} failed: " + failure(build, lines[-30:]))


# ---------------------------------------------------------------- target side (in the gateway's VPC)


def say(message: str) -> None:
    print(f"[emd-smoke] {message}", flush=True)


def silent_wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    frames = int(seconds * rate)
    data = b"\x00\x00" * frames
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
    header += (
        struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(data))
    )
    return header + data


def request_for(route: Route) -> dict[str, Any]:
    """httpx.request keyword arguments for one request of the model's kind."""
    kind = route.model_type
    if kind in ("llm", "vlm"):
        body = {"model": route.route, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 8}
        return {"method": "POST", "url": "/v1/chat/completions", "json": body}
    if kind == "embedding":
        return {"method": "POST", "url": "/v1/embeddings", "json": {"model": route.route, "input": "ok"}}
    if kind == "rerank":
        body = {"model": route.route, "query": "ok", "documents": ["ok", "no"]}
        return {"method": "POST", "url": "/v1/rerank", "json": body}
    if kind == "asr":
        files = {"file": ("silence.wav", silent_wav(), "audio/wav")}
        return {
            "method": "POST",
            "url": "/v1/audio/transcriptions",
            "files": files,
            "data": {"model": route.route},
        }
    raise SmokeFailure(f"{route.route}: no smoke request for model type {kind!r}")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _retry_after(response: Any, default: float) -> float:
    try:
        return min(float(response.headers.get("Retry-After", default)), 60.0)
    except ValueError:
        return default


def check_route(
    client: Any,
    route: Route,
    key: str | None,
    *,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """'<route>: listed, <status> in <s> s' or SmokeFailure naming what went wrong (never the key)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    started = clock()
    while True:
        listed = client.get("/v1/models", headers=headers)
        if listed.status_code == 401:
            raise SmokeFailure(f"{route.route}: the gateway refused the key from {route.api_key_secret_name}")
        ids = [m.get("id") for m in listed.json().get("data", [])] if listed.status_code == 200 else []
        if route.route in ids:
            break
        if clock() > deadline:
            raise SmokeFailure(
                f"{route.route}: not in /v1/models after {clock() - started:.0f} s (status "
                f"{listed.status_code})"
            )
        sleep(5.0)
    while True:
        response = client.request(headers=headers, **request_for(route))
        if response.status_code < 300:
            return f"{route.route}: listed, {response.status_code} in {clock() - started:.0f} s"
        if response.status_code not in RETRY_STATUSES or clock() > deadline:
            raise SmokeFailure(f"{route.route}: HTTP {response.status_code}: {_short(response.text)}")
        sleep(_retry_after(response, 10.0))


def check_routes(
    routes: list[Route],
    base_url: str,
    read_key: Callable[[str], str],
    *,
    deadline_seconds: float = DEFAULT_DEADLINE,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Check every route; SmokeFailure listing every failure (one line each)."""
    import httpx

    deadline = time.monotonic() + deadline_seconds
    results, failures = [], []
    with httpx.Client(
        base_url=base_url.rstrip("/"), timeout=httpx.Timeout(REQUEST_TIMEOUT, connect=10.0)
    ) as client:
        for route in routes:
            key = read_key(route.api_key_secret_name) if route.api_key_secret_name else None
            try:
                results.append(check_route(client, route, key, deadline=deadline, sleep=sleep))
                say(results[-1])
            except (SmokeFailure, httpx.HTTPError) as exc:
                message = (
                    str(exc) if isinstance(exc, SmokeFailure) else f"{route.route}: {type(exc).__name__}"
                )
                failures.append(message)
                say(f"FAILED {message}")
    if failures:
        raise SmokeFailure("; ".join(failures))
    return results


def key_from_secret(value: str) -> str:
    """The key itself, or {"api_key": "..."} (both forms the gateway accepts)."""
    value = value.strip()
    if value.startswith("{"):
        try:
            return str(json.loads(value)["api_key"]).strip()
        except (ValueError, KeyError, TypeError):
            return value
    return value


def load_routes(path: Path) -> list[Route]:
    return [Route(**r) for r in json.loads(path.read_text())]


def main_check(routes_path: Path) -> None:
    """Inside the smoke-test project: gateway URL from SSM, keys from Secrets Manager (boto3 defaults)."""
    import boto3

    url = boto3.client("ssm").get_parameter(Name=os.environ["EMD_GATEWAY_URL_PARAMETER"])["Parameter"][
        "Value"
    ]
    secrets = boto3.client("secretsmanager")

    def read_key(name: str) -> str:
        return key_from_secret(str(secrets.get_secret_value(SecretId=name)["SecretString"]))

    deadline = float(os.environ.get(DEADLINE_ENV, DEFAULT_DEADLINE))
    check_routes(load_routes(routes_path), url, read_key, deadline_seconds=deadline)
