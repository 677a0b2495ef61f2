"""What OpenAI clients see through the gateway (in process, real aiohttp servers on 127.0.0.1): upstream
Retry-After and request ids, /v1/models/{id}, the model they asked for in every response, and a deployment
scaled to zero that is waited for instead of refused."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
from aiohttp import web

from tests.entries import http_entry
from tests.unit.gateway_harness import (
    KEY,
    OTHER_KEY,
    LogCapture,
    MemoryStore,
    auth,
    chat_body,
    engine_app,
    free_port,
    gateway,
    gateway_config,
    gateway_to_engine,
    post,
    run,
)

CHAT = "/v1/chat/completions"
NOWHERE = "http://127.0.0.1:9"  # no engine: the test never reaches one


def chunk(i: int) -> bytes:
    event = {"id": "c", "object": "chat.completion.chunk", "model": "served-name",
             "choices": [{"index": 0, "delta": {"content": f"t{i}"}, "finish_reason": None}]}  # fmt: skip
    return b"data: " + json.dumps(event).encode() + b"\n\n"


async def streaming_engine(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        return web.json_response(
            {"id": "c", "object": "chat.completion", "model": "served-name", "choices": [],
             "usage": {"total_tokens": 1}}, headers={"x-request-id": "engine-req-7"})  # fmt: skip
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "x-request-id": "engine-req-8"})
    await resp.prepare(request)
    for i in range(3):
        data = chunk(i)
        cut = data.index(b'"model"') + 3  # an event split inside the model member, as TCP may split it
        await resp.write(data[:cut])
        await asyncio.sleep(0.01)
        await resp.write(data[cut:])
    await resp.write(b"data: [DONE]\n\n")
    return resp


async def throttled(request: web.Request) -> web.Response:
    return web.json_response(
        {"error": {"message": "too many requests", "type": "rate_limit_error", "code": "rate_limit"}},
        status=429,
        headers={"Retry-After": "7", "x-request-id": "engine-req-9"},
    )


def sse_events(data: bytes) -> list[str]:
    return [line[6:].decode() for line in data.splitlines() if line.startswith(b"data: ")]


def test_response_model_is_the_route_asked_for_and_request_ids_pass_through() -> None:
    async def scenario() -> dict[str, Any]:
        routes = {CHAT: streaming_engine, "/v1/completions": throttled}
        async with gateway_to_engine(routes) as url, aiohttp.ClientSession() as s:
            out: dict[str, Any] = {}
            for asked in ("m", "m/dev"):
                status, headers, data = await post(s, url + CHAT, chat_body(asked), auth())
                out[asked] = (status, headers, json.loads(data))
                status, headers, data = await post(s, url + CHAT, chat_body(asked, stream=True), auth())
                out[asked + " stream"] = (status, headers, sse_events(data))
            out["throttled"] = await post(s, url + "/v1/completions", {"model": "m", "prompt": "x"}, auth())
            return out

    out = run(scenario())
    for asked in ("m", "m/dev"):
        status, headers, body = out[asked]
        assert status == 200 and body["model"] == asked
        assert headers["X-Request-Id"] == "engine-req-7"
        status, headers, events = out[asked + " stream"]
        assert status == 200 and events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert len(chunks) == 3 and {c["model"] for c in chunks} == {asked}
        assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["t0", "t1", "t2"]
        assert headers["X-Request-Id"] == "engine-req-8"
    status, headers, data = out["throttled"]
    assert status == 429 and headers["Retry-After"] == "7" and headers["X-Request-Id"] == "engine-req-9"
    assert json.loads(data)["error"]["type"] == "rate_limit_error"


def test_streamed_responses_carry_the_gateways_request_id() -> None:
    async def plain_stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(chunk(0) + b"data: [DONE]\n\n")
        return resp

    async def scenario() -> dict[str, str]:
        async with gateway_to_engine({CHAT: plain_stream}) as url, aiohttp.ClientSession() as s:
            _, headers, _ = await post(s, url + CHAT, chat_body("m", stream=True), auth())
            return headers

    assert len(run(scenario()).get("X-Request-Id", "")) >= 16


def test_models_retrieve_and_a_wrong_key_is_401_even_beside_a_public_deployment() -> None:
    store = MemoryStore(
        [http_entry("m", "dev", NOWHERE), http_entry("open", "dev", NOWHERE, public=True),
         http_entry("n", "prod", NOWHERE)],
        {"emd/m/dev/api-key": KEY, "emd/n/prod/api-key": OTHER_KEY},
    )  # fmt: skip

    async def scenario() -> dict[str, tuple[int, Any]]:
        async with gateway(store) as url, aiohttp.ClientSession() as s:
            out = {}
            for name, path, key in (
                ("list wrong key", "/v1/models", "sk-wrong"),
                ("list anonymous", "/v1/models", None),
                ("get", "/v1/models/m/dev", KEY),
                ("get default tag", "/v1/models/m", KEY),
                ("get public", "/v1/models/open/dev", KEY),
                ("get other key's", "/v1/models/n/prod", KEY),
                ("get unknown", "/v1/models/nope", KEY),
                ("get wrong key", "/v1/models/m/dev", "sk-wrong"),
                ("get public, wrong key", "/v1/models/open/dev", "sk-wrong"),
                ("get public, no key", "/v1/models/open", None),
            ):
                async with s.get(url + path, headers=auth(key) if key else {}) as resp:
                    out[name] = (resp.status, await resp.json())
            return out

    out = run(scenario())
    assert out["list wrong key"][0] == 401
    assert out["list wrong key"][1]["error"]["code"] == "invalid_api_key"
    assert [m["id"] for m in out["list anonymous"][1]["data"]] == ["open/dev"]
    for name, route in (("get", "m/dev"), ("get default tag", "m/dev"), ("get public", "open/dev")):
        status, body = out[name]
        assert status == 200 and body["id"] == route and body["object"] == "model", name
    assert out["get other key's"][0] == 404 and out["get unknown"][0] == 404
    assert out["get wrong key"][0] == 401 and out["get public, wrong key"][0] == 401
    assert out["get public, no key"][0] == 200


def test_scale_to_zero_holds_the_request_until_the_engine_answers() -> None:
    port = free_port()

    async def scenario() -> dict[str, Any]:
        store = MemoryStore([http_entry("m", "dev", f"http://127.0.0.1:{port}")], {"emd/m/dev/api-key": KEY})
        config = gateway_config(cold_start_wait=20, keepalive_seconds=0.2)
        async with gateway(store, config) as url, aiohttp.ClientSession() as s:
            started = time.monotonic()
            plain = asyncio.create_task(post(s, url + CHAT, chat_body("m"), auth()))
            streamed = asyncio.create_task(post(s, url + CHAT, chat_body("m", stream=True), auth()))
            await asyncio.sleep(1.2)  # no engine yet: the requests wait
            assert not plain.done() and not streamed.done()
            runner = web.AppRunner(engine_app({CHAT: streaming_engine}), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()  # the engine comes up
            try:
                out = {"plain": await plain, "streamed": await streamed, "waited": time.monotonic() - started}
            finally:
                await runner.cleanup()
            return out

    with LogCapture() as logs:
        out = run(scenario())
    status, _, data = out["plain"]
    assert status == 200 and json.loads(data)["model"] == "m"
    status, _, data = out["streamed"]
    assert status == 200
    assert data.startswith(b":")  # SSE comments kept the stream alive while the engine started
    assert sse_events(data)[-1] == "[DONE]"
    no_capacity = [line for line in logs.lines if '"NoCapacity"' in line]
    assert len(no_capacity) >= 1  # the metric that starts a task of a deployment scaled to zero


def test_a_streamed_request_outwaits_a_plain_one_behind_a_short_front() -> None:
    """Behind CloudFront (120 s for a silent response) the stack shortens EMD_COLD_START_WAIT; a streamed
    request, kept alive by SSE comments, still waits EMD_STREAM_COLD_START_WAIT for the engine."""
    port = free_port()

    async def scenario() -> dict[str, Any]:
        store = MemoryStore([http_entry("m", "dev", f"http://127.0.0.1:{port}")], {"emd/m/dev/api-key": KEY})
        config = gateway_config(cold_start_wait=0.5, stream_cold_start_wait=20, keepalive_seconds=0.2)
        async with gateway(store, config) as url, aiohttp.ClientSession() as s:
            plain = await post(s, url + CHAT, chat_body("m"), auth())  # gives up after 0.5 s
            streamed = asyncio.create_task(post(s, url + CHAT, chat_body("m", stream=True), auth()))
            await asyncio.sleep(1.5)
            assert not streamed.done()
            runner = web.AppRunner(engine_app({CHAT: streaming_engine}), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            try:
                return {"plain": plain, "streamed": await streamed}
            finally:
                await runner.cleanup()

    out = run(scenario())
    assert out["plain"][0] == 503
    status, _, data = out["streamed"]
    assert status == 200 and data.startswith(b":") and sse_events(data)[-1] == "[DONE]"


def test_scale_to_zero_answers_503_with_retry_after_when_the_wait_is_over() -> None:
    async def scenario() -> tuple[int, dict[str, str], bytes, float]:
        store = MemoryStore(
            [http_entry("m", "dev", f"http://127.0.0.1:{free_port()}")], {"emd/m/dev/api-key": KEY}
        )
        async with gateway(store, gateway_config(cold_start_wait=0.6)) as url, aiohttp.ClientSession() as s:
            started = time.monotonic()
            status, headers, data = await post(s, url + CHAT, chat_body("m"), auth())
            return status, headers, data, time.monotonic() - started

    status, headers, data, waited = run(scenario())
    assert status == 503 and int(headers["Retry-After"]) > 0
    assert json.loads(data)["error"]["code"] == "backend_not_ready"
    assert waited >= 0.5  # it waited for the engine before giving up
