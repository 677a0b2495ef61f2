"""The gateway's SageMaker real-time transport (serving/gateway/runtime_client.py) against a SageMaker-runtime
stand-in on 127.0.0.1 that checks SigV4 signatures and speaks the event-stream wire format: signing and
credential refresh, endpoint resolution (China, overrides), exception events, "not ready" holds, a client that
leaves or never reads, and no thread per stream."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import boto3
import pytest
from aiohttp import web
from botocore.credentials import RefreshableCredentials

from serving.gateway.runtime_client import INVOKE_STREAM, RuntimeClient, proxy_for
from tests.entries import sm_entry
from tests.support.sagemaker_wire import (
    TEST_SECRETS,
    aws_error_response,
    model_stream_error,
    payload_part,
    refuse_unsigned,
    signature_problem,
)
from tests.unit.gateway_harness import (
    KEY,
    MemoryStore,
    auth,
    chat_body,
    gateway,
    gateway_config,
    post,
    run,
    runtime_clients,
    serve,
)

CHAT = "/v1/chat/completions"
COMPLETION = {"id": "c", "object": "chat.completion", "model": "served", "choices": []}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def sse_event(content: str) -> bytes:
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "served",
             "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}  # fmt: skip
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


async def event_stream(request: web.Request, *messages: bytes) -> web.StreamResponse:
    """A 200 InvokeEndpointWithResponseStream answer carrying messages, one write each."""
    resp = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
    await resp.prepare(request)
    for message in messages:
        await resp.write(message)
    await resp.write_eof()
    return resp


async def answer_stream(request: web.Request) -> web.StreamResponse:
    return await event_stream(request, payload_part(sse_event("hel")), payload_part(sse_event("lo")),
                              payload_part(b"data: [DONE]\n\n"))  # fmt: skip


async def answer_whole(request: web.Request) -> web.Response:
    return web.json_response(COMPLETION)


def runtime_app(
    stream: Handler = answer_stream,
    invoke: Handler = answer_whole,
    seen: list[web.Request] | None = None,
    secrets: dict[str, str] = TEST_SECRETS,
) -> web.Application:
    """The stand-in: every request's signature checked (403 otherwise), then recorded and answered."""

    def recorded(handler: Handler) -> Handler:
        async def record(request: web.Request) -> web.StreamResponse:
            await request.read()
            if seen is not None:
                seen.append(request)
            return await handler(request)

        return record

    app = web.Application(middlewares=[refuse_unsigned(secrets)], client_max_size=32 * 1024 * 1024)
    app.router.add_post("/endpoints/{name}/invocations-response-stream", recorded(stream))
    app.router.add_post("/endpoints/{name}/invocations", recorded(invoke))
    return app


STORE_ENTRIES = [sm_entry("sm", "dev", "emd-sm")]


def store() -> MemoryStore:
    return MemoryStore(list(STORE_ENTRIES), {"emd/sm/dev/api-key": KEY})


@asynccontextmanager
async def gateway_to_runtime(runtime: web.Application, config: Any = None) -> AsyncIterator[str]:
    """A gateway whose one deployment, sm/dev (key KEY), is an endpoint of the runtime stand-in."""
    async with serve(runtime) as sm, gateway(store(), config, **runtime_clients(sm)) as url:
        yield url


async def chat(url: str, stream: bool, **extra: Any) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as s:
        status, _, data = await post(s, url + CHAT, chat_body("sm", stream=stream, **extra), auth())
    return status, data


# ---------------------------------------------------------------- signing


def test_calls_are_signed_with_sigv4_over_the_body_hash() -> None:
    seen: list[web.Request] = []
    long_message = "x" * (2 * 1024 * 1024)  # hashed off the event loop

    async def scenario() -> list[tuple[int, bytes]]:
        async with gateway_to_runtime(runtime_app(seen=seen)) as url:
            return [await chat(url, True), await chat(url, False), await chat(url, False, note=long_message)]

    (streamed, whole, large) = run(scenario())
    assert streamed[0] == 200 and b"hel" in streamed[1] and streamed[1].rstrip().endswith(b"[DONE]")
    assert whole[0] == 200 and json.loads(whole[1])["model"] == "sm"
    assert large[0] == 200
    assert [r.path for r in seen] == [
        "/endpoints/emd-sm/invocations-response-stream", "/endpoints/emd-sm/invocations",
        "/endpoints/emd-sm/invocations",
    ]  # fmt: skip
    for request in seen:
        authorization = request.headers["Authorization"]
        assert authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/")
        assert "/us-east-1/sagemaker/aws4_request" in authorization
        signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
        assert {"host", "x-amz-date", "x-amz-content-sha256", "content-type"} <= set(signed)
        body = request._read_bytes or b""
        assert request.headers["X-Amz-Content-SHA256"] == hashlib.sha256(body).hexdigest()
        assert signature_problem(request, body) is None
        assert signature_problem(request, body, {"testing": "another secret"}) == "signature mismatch"
        assert signature_problem(request, body + b" ") is not None  # the body is covered
    assert len(seen[2]._read_bytes or b"") > 2 * 1024 * 1024
    assert seen[0].headers["X-Amzn-SageMaker-Accept"] == "text/event-stream"
    assert seen[0].headers["X-Amzn-SageMaker-Custom-Attributes"] == "route=/v1/chat/completions"


def test_a_badly_signed_call_is_refused_by_the_stand_in() -> None:
    """The stand-in's check can fail: with a secret the gateway does not have, SageMaker's 403 comes back as a
    502 that names no AWS detail."""

    async def scenario() -> tuple[int, bytes]:
        async with gateway_to_runtime(runtime_app(secrets={"testing": "not the gateway's secret"})) as url:
            return await chat(url, False)

    status, data = run(scenario())
    assert status == 502 and json.loads(data)["error"]["code"] == "upstream_error"
    assert b"InvalidSignature" not in data and b"signature" not in data


def test_credentials_are_refreshed_as_botocore_refreshes_them_off_the_event_loop() -> None:
    """Credentials near their expiry (inside botocore's advisory window) are refreshed before signing, in a
    worker thread, and the new keys sign the call."""
    refreshed_in: list[str] = []

    def expiry() -> str:
        return (datetime.now(UTC) + timedelta(minutes=5)).isoformat()

    def refresh() -> dict[str, str]:
        refreshed_in.append(threading.current_thread().name)
        n = len(refreshed_in)
        return {"access_key": f"AKID{n}", "secret_key": f"secret{n}", "token": "t", "expiry_time": expiry()}

    first = {"access_key": "AKID0", "secret_key": "secret0", "token": "t", "expiry_time": expiry()}
    credentials = RefreshableCredentials.create_from_metadata(first, refresh, "test")
    seen: list[web.Request] = []
    secrets = {f"AKID{n}": f"secret{n}" for n in range(10)}

    async def scenario() -> list[int]:
        runtime = runtime_app(seen=seen, secrets=secrets)
        async with serve(runtime) as sm, gateway(store(), None, **runtime_clients(sm, credentials)) as url:
            return [(await chat(url, stream))[0] for stream in (False, True)]

    assert run(scenario()) == [200, 200]
    keys = [r.headers["Authorization"].split("Credential=")[1].split("/")[0] for r in seen]
    assert keys == ["AKID1", "AKID2"]
    assert all(r.headers["X-Amz-Security-Token"] == "t" for r in seen)
    assert refreshed_in and all(name.startswith("emd-control") for name in refreshed_in)


# ---------------------------------------------------------------- the endpoint


def runtime_for(region: str) -> RuntimeClient:
    client = boto3.session.Session(region_name=region).client(
        "sagemaker-runtime", aws_access_key_id="AKID", aws_secret_access_key="s"
    )
    credentials = boto3.session.Session(aws_access_key_id="AKID", aws_secret_access_key="s").get_credentials()
    return RuntimeClient(client, credentials, None, connect_timeout=1, read_timeout=1, max_connections=1)  # type: ignore[arg-type]


def signed_url(runtime: RuntimeClient, credentials: Any) -> tuple[str, str]:
    params = {"EndpointName": "emd-x", "Body": b"{}", "ContentType": "application/json"}
    prepared = runtime.prepare(INVOKE_STREAM, params, credentials, hashlib.sha256(b"{}").hexdigest())
    return prepared.url, prepared.headers["Authorization"]


def test_the_endpoint_is_botocores_china_partition_included(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)
    credentials = boto3.session.Session(aws_access_key_id="AKID", aws_secret_access_key="s").get_credentials()
    for region, suffix in (("cn-north-1", "amazonaws.com.cn"), ("cn-northwest-1", "amazonaws.com.cn"),
                           ("eu-west-1", "amazonaws.com")):  # fmt: skip
        url, authorization = signed_url(runtime_for(region), credentials.get_frozen_credentials())
        assert (
            url == f"https://runtime.sagemaker.{region}.{suffix}/endpoints/emd-x/invocations-response-stream"
        )
        assert f"/{region}/sagemaker/aws4_request" in authorization
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "http://127.0.0.1:9/runtime")
    url, _ = signed_url(runtime_for("cn-north-1"), credentials.get_frozen_credentials())
    assert url == "http://127.0.0.1:9/runtime/endpoints/emd-x/invocations-response-stream"


def test_a_proxy_is_used_as_botocore_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "https://runtime.sagemaker.cn-north-1.amazonaws.com.cn"
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert proxy_for(url) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert proxy_for(url) == "http://proxy.internal:3128"
    assert proxy_for("http://127.0.0.1:9") is None  # HTTPS_PROXY is for https URLs
    monkeypatch.setenv("NO_PROXY", ".amazonaws.com.cn")
    assert proxy_for(url) is None


# ---------------------------------------------------------------- stream errors and holds


def test_an_exception_event_mid_stream_ends_the_clients_stream_with_an_error_event() -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        died = model_stream_error("container of arn:aws:sagemaker:x:123456789012 died")
        return await event_stream(
            request, payload_part(sse_event("hel")), payload_part(sse_event("lo")), died
        )

    async def scenario() -> tuple[int, bytes]:
        async with gateway_to_runtime(runtime_app(stream=broken)) as url:
            return await chat(url, True)

    status, data = run(scenario())
    assert status == 200  # the stream had started
    events = [e for e in data.split(b"\n\n") if e.strip()]
    assert b"hel" in events[0] and b"lo" in events[1]
    error = json.loads(events[-1].removeprefix(b"data: "))["error"]
    assert "failed during the stream" in error["message"] and b"123456789012" not in data


@pytest.mark.parametrize("code", ["InternalStreamFailure", "ModelStreamError"])
def test_an_exception_event_before_any_data_is_an_error_answer(code: str) -> None:
    async def failing(request: web.Request) -> web.StreamResponse:
        return await event_stream(request, model_stream_error("gone", code))

    async def scenario() -> tuple[int, bytes]:
        async with gateway_to_runtime(runtime_app(stream=failing)) as url:
            return await chat(url, True)

    status, data = run(scenario())
    assert status == 502 and json.loads(data)["error"]["code"] == "upstream_error"


@pytest.mark.parametrize("stream", [False, True])
def test_no_capacity_yet_is_held_then_sent_again(stream: bool) -> None:
    """ModelNotReadyException (a deployment scaled to zero): the request was not run, so it is held and sent
    again until capacity answers."""
    calls: list[str] = []

    def not_ready_twice(answer: Handler) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            calls.append(request.path)
            if len(calls) <= 2:
                return aws_error_response(429, "ModelNotReadyException", "no instance of arn:aws:x yet")
            return await answer(request)

        return handle

    async def scenario() -> tuple[int, bytes]:
        runtime = runtime_app(stream=not_ready_twice(answer_stream), invoke=not_ready_twice(answer_whole))
        config = gateway_config(cold_start_wait=10, stream_cold_start_wait=10)
        async with gateway_to_runtime(runtime, config) as url:
            return await chat(url, stream)

    status, data = run(scenario())
    assert status == 200 and len(calls) == 3
    assert data.rstrip().endswith(b"[DONE]") if stream else json.loads(data)["model"] == "sm"


def test_a_model_error_arriving_in_pieces_keeps_the_engines_4xx() -> None:
    """ModelError (HTTP 424): the engine's own status and OpenAI error, however its body arrives."""
    engine_error = {"error": {"message": "temperature must be a number", "type": "invalid_request_error",
                              "param": "temperature", "code": None}}  # fmt: skip

    async def model_error(request: web.Request) -> web.StreamResponse:
        original = json.dumps(engine_error)
        body = json.dumps({"Message": "Received client error (400) from primary container",
                           "OriginalStatusCode": 400, "OriginalMessage": original}).encode()  # fmt: skip
        resp = web.StreamResponse(status=424, headers={"Content-Type": "application/json",
                                                       "x-amzn-ErrorType": "ModelError"})  # fmt: skip
        await resp.prepare(request)
        for start in range(0, len(body), 40):
            await resp.write(body[start : start + 40])
            await asyncio.sleep(0.01)
        await resp.write_eof()
        return resp

    async def scenario() -> tuple[int, bytes]:
        async with gateway_to_runtime(runtime_app(invoke=model_error)) as url:
            return await chat(url, False)

    status, data = run(scenario())
    assert status == 400 and json.loads(data)["error"]["message"] == "temperature must be a number"
    assert json.loads(data)["error"]["param"] == "temperature"


def test_a_read_timeout_is_504_and_the_call_is_not_repeated() -> None:
    calls: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        calls.append(request.path)
        await asyncio.sleep(3)
        return web.json_response(COMPLETION)

    async def scenario() -> tuple[int, bytes]:
        config = gateway_config(read_timeout=0.3)
        async with gateway_to_runtime(runtime_app(invoke=slow), config) as url:
            return await chat(url, False)

    status, data = run(scenario())
    assert status == 504 and json.loads(data)["error"]["code"] == "upstream_timeout"
    assert len(calls) == 1


# ---------------------------------------------------------------- clients that leave or never read


def endless(events: list[str], part: bytes, pause: float) -> Handler:
    """A stream that never ends; events records how its writes ended."""

    async def handle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
        await resp.prepare(request)
        sent = 0
        try:
            while sent < 512 * 1024 * 1024:
                await resp.write(part)
                sent += len(part)
                await asyncio.sleep(pause)
        except ConnectionError:
            events.append(f"gone after {sent} bytes")
            raise
        events.append("all sent")
        return resp

    return handle


def test_a_client_that_leaves_stops_the_upstream_read_at_once() -> None:
    events: list[str] = []

    async def scenario() -> float:
        runtime = runtime_app(stream=endless(events, payload_part(sse_event("tok")), 0.01))
        async with gateway_to_runtime(runtime) as url:
            async with aiohttp.ClientSession() as s:
                body = json.dumps(chat_body("sm", stream=True)).encode()
                hdrs = {"Content-Type": "application/json", **auth()}
                async with s.post(url + CHAT, data=body, headers=hdrs) as resp:
                    assert resp.status == 200
                    await resp.content.readany()
            left = time.monotonic()  # the connection is closed
            while not events and time.monotonic() - left < 5:
                await asyncio.sleep(0.02)
            return time.monotonic() - left

    took = run(scenario())
    assert events and events[0].startswith("gone") and took < 2


def test_a_client_that_never_reads_bounds_what_is_read_upstream_then_stops_it() -> None:
    """Backpressure: what the endpoint could send (512 MiB) is read only as fast as the client takes it; a
    client that takes nothing is dropped after the write timeout, and the upstream read with it."""
    events: list[str] = []
    big = payload_part(b"data: " + json.dumps({"model": "served", "x": "y" * 65_000}).encode() + b"\n\n")

    async def scenario() -> None:
        runtime = runtime_app(stream=endless(events, big, 0))
        config = gateway_config(client_write_timeout=0.5)
        async with gateway_to_runtime(runtime, config) as url:
            body = json.dumps(chat_body("sm", stream=True)).encode()
            head = (
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n" % (KEY.encode(), len(body))
            )
            host, port = url.removeprefix("http://").split(":")
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            loop = asyncio.get_running_loop()
            await loop.sock_connect(sock, (host, int(port)))
            await loop.sock_sendall(sock, head + body)  # and never read
            deadline = time.monotonic() + 15
            while not events and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            sock.close()

    run(scenario())
    assert events and events[0].startswith("gone after")
    assert int(events[0].split()[2]) < 32 * 1024 * 1024  # socket buffers and a few parts, not the stream


# ---------------------------------------------------------------- no thread per stream


def test_no_thread_is_started_per_stream() -> None:
    """50 concurrent streams to an endpoint that holds them open: the gateway's thread count stays flat."""
    started: list[str] = []
    release = asyncio.Event()

    async def held(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/vnd.amazon.eventstream"})
        await resp.prepare(request)
        await resp.write(payload_part(sse_event("first")))
        started.append(request.path)
        await release.wait()
        await resp.write(payload_part(b"data: [DONE]\n\n"))
        await resp.write_eof()
        return resp

    async def scenario() -> tuple[int, int, list[int]]:
        async with gateway_to_runtime(runtime_app(stream=held)) as url:
            release.set()
            assert (await chat(url, True))[0] == 200  # warm: registry, key, connection pool
            release.clear()
            baseline = threading.active_count()
            tasks = [asyncio.create_task(chat(url, True)) for _ in range(50)]
            deadline = time.monotonic() + 20
            while len(started) < 51 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            during = threading.active_count()
            release.set()
            statuses = [status for status, _ in await asyncio.gather(*tasks)]
            return baseline, during, statuses

    baseline, during, statuses = run(scenario())
    assert len(started) == 51 and statuses == [200] * 50
    assert during <= baseline + 2, (baseline, during)
