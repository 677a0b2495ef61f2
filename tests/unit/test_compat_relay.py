"""serving.engine.compat_relay against a stand-in engine on 127.0.0.1 speaking llama-cpp-python's wire format
(SSE with CRLF and ping comments, the tokenizer route): merged streams, the usage chunk arithmetic, and the
engine's failures as a client sees them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web

from serving.engine.compat_relay import SseEvents, serve

ENGINE_TRACE = 'File "/srv/venv/lib/python3.11/site-packages/llama_cpp/server/app.py", line 376'


def sse(payloads: list[str]) -> bytes:
    return b"".join(f"data: {p}\r\n\r\n".encode() for p in payloads)


def engine_app(seen: list[dict[str, Any]]) -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        seen.append(body)
        said = body["messages"][-1]["content"]
        if said == "boom":
            return web.json_response(
                {"error": {"message": ENGINE_TRACE, "type": "internal_server_error"}}, status=500
            )
        if said == "long":
            error = {
                "message": "This model's maximum context length is 2048 tokens.",
                "code": "context_length_exceeded",
            }
            return web.json_response({"error": error}, status=400)
        if not body.get("stream"):
            usage = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
            choice = {"index": 0, "message": {"role": "assistant", "content": "H"}, "finish_reason": "length"}
            return web.json_response({"id": "c", "choices": [choice], "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        deltas = [
            ({"role": "assistant"}, None),
            ({"content": "Hel"}, None),
            ({"content": "lo"}, None),
            ({}, "stop"),
        ]
        for n, (delta, finish) in enumerate(deltas):
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            chunk = {"id": f"engine-{len(seen)}", "object": "chat.completion.chunk", "choices": [choice]}
            await resp.write(sse([json.dumps(chunk)]))
            if n == 0:
                await resp.write(b": ping - 2026-11-26 10:00:00\r\n\r\n")
            if said == "cut" and n == 1:
                return resp
        await resp.write(sse(["[DONE]"]))
        return resp

    async def count(request: web.Request) -> web.Response:
        return web.json_response(
            {"count": len((await request.json())["input"]) + 1}
        )  # a char a token, plus BOS

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/extras/tokenize/count", count)
    return app


@asynccontextmanager
async def running(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def relay() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """(URL of an adapter-like front serving /v1/* through the relay, the bodies the engine received)."""
    seen: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session, running(engine_app(seen)) as engine_url:

        async def front(request: web.Request) -> web.StreamResponse:
            return await serve(request, session, engine_url, request.path, await request.json())

        app = web.Application()
        app.router.add_post("/v1/{tail:.*}", front)
        async with running(app) as url:
            yield url, seen


async def post(url: str, body: dict[str, Any]) -> tuple[int, str, bytes]:
    async with (
        aiohttp.ClientSession() as client,
        client.post(url + "/v1/chat/completions", json=body) as resp,
    ):
        return resp.status, resp.content_type, await resp.read()


def events(raw: bytes) -> list[Any]:
    return [json.loads(d) if d != "[DONE]" else d for d in SseEvents().feed(raw)]


def ask(said: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": said}], **extra}


def test_engine_5xx_text_never_reaches_the_client_and_its_4xx_does() -> None:
    async def scenario() -> None:
        async with relay() as (url, _):
            for stream in (False, True):
                status, _, body = await post(url, ask("boom", stream=stream))
                assert status == 500 and json.loads(body)["error"]["code"] == "engine_error"
                assert b"site-packages" not in body and b"app.py" not in body
                status, ctype, body = await post(url, ask("long", stream=stream))
                assert (status, ctype) == (400, "application/json")
                assert json.loads(body)["error"]["code"] == "context_length_exceeded"

    asyncio.run(scenario())


def test_n_streams_merge_under_one_id_and_end_with_the_usage_chunk() -> None:
    async def scenario() -> None:
        async with relay() as (url, seen):
            body = ask("hi", n=2, stream=True, stream_options={"include_usage": True}, max_tokens=9)
            status, ctype, raw = await post(url, body)
        assert (status, ctype) == (200, "text/event-stream")
        got = events(raw)
        assert got[-1] == "[DONE]"
        chunks, usage = got[:-2], got[-2]
        assert [c["choices"][0]["index"] for c in chunks] == [0] * 4 + [1] * 4
        assert {c["id"] for c in chunks} == {"engine-1"} and all(c["usage"] is None for c in chunks)
        # prompt from the unstreamed one-token probe (5, counted once), "Hello" = 5 tokens per choice
        assert usage["choices"] == [] and usage["usage"] == {
            "prompt_tokens": 5,
            "completion_tokens": 10,
            "total_tokens": 15,
        }
        streamed, probe = seen[:2], seen[2]
        assert [b.get("seed") for b in streamed] == [None, None] and all("n" not in b for b in streamed)
        assert probe["max_tokens"] == 1 and "stream" not in probe

    asyncio.run(scenario())


def test_a_stream_the_engine_cuts_ends_with_an_error_event() -> None:
    async def scenario() -> None:
        async with relay() as (url, _):
            status, _, raw = await post(url, ask("cut", stream=True, stream_options={"include_usage": True}))
        got = events(raw)
        assert status == 200 and "[DONE]" not in got
        assert got[-1]["error"]["message"] == "the engine ended the stream early"

    asyncio.run(scenario())


def test_refusals_never_reach_the_engine() -> None:
    async def scenario() -> None:
        async with relay() as (url, seen):
            status, _, body = await post(url, ask("hi", temperature="hot"))
        assert status == 400 and json.loads(body)["error"]["param"] == "temperature" and seen == []

    asyncio.run(scenario())


def test_sse_events_split_anywhere() -> None:
    raw = b'data: {"a": 1}\r\n\r\n: ping\r\n\r\ndata: {"b": 2}\n\ndata: [DONE]\r\n\r\n'
    for cut in range(len(raw)):
        parser = SseEvents()
        assert parser.feed(raw[:cut]) + parser.feed(raw[cut:]) == ['{"a": 1}', '{"b": 2}', "[DONE]"]
