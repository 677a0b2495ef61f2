"""Answers an OpenAI request through llama-cpp-python as serving.engine.openai_compat plans it: a refusal
is a 400; otherwise one engine call per choice (one after another: the engine runs one generation at a time),
merged into one answer or one stream, and the engine's 5xx text (its file paths) never reaches the client.
A stream asked to include usage ends with OpenAI's usage chunk, counted by the engine: the prompt by a
one-token unstreamed twin of the request, the streamed text by the engine's tokenizer."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import aiohttp
from aiohttp import web

from serving.common.openai_format import SSE_CONTENT_TYPE, TIMEOUT_ERRORS, error_response, sse_error_event
from serving.common.sse_relay import stream_headers
from serving.engine import openai_compat as oc
from serving.engine.command import LLAMA_CPP_PYTHON

log = logging.getLogger("emd.engine.compat")

TOKEN_COUNT_PATH = "/extras/tokenize/count"  # llama-cpp-python's tokenizer, as the engine tokenizes a prompt


def bridges(api_dialect: str | None, path: str) -> bool:
    """Whether requests to `path` of an engine speaking `api_dialect` go through the bridge."""
    return api_dialect == LLAMA_CPP_PYTHON and path in oc.REQUEST_MODELS


class EngineFailure(Exception):
    """The engine refused or failed a call: `response` for the client, `summary` for a stream under way."""

    def __init__(self, response: web.Response, summary: str) -> None:
        super().__init__(summary)
        self.response = response
        self.summary = summary


def engine_error(status: int, data: bytes) -> EngineFailure:
    """The engine's 4xx answers in OpenAI's error shape (context_length_exceeded …) pass; anything else, such
    as its 5xx text with file paths and stack frames, is logged here and replaced."""
    if 400 <= status < 500 and _is_openai_error(data):
        return EngineFailure(
            web.Response(body=data, status=status, content_type="application/json"), "the engine refused"
        )
    log.warning("engine error %s: %s", status, data[:2000].decode(errors="replace"))
    return _failure("the engine failed to process the request", 500, "engine_error")


def _is_openai_error(data: bytes) -> bool:
    try:
        parsed = json.loads(data)
    except ValueError:
        return False
    return isinstance(parsed, dict) and isinstance(parsed.get("error"), dict)


def _failure(message: str, status: int, code: str) -> EngineFailure:
    return EngineFailure(error_response(message, status, code), message)


class SseEvents:
    """Splits an SSE byte stream into the data of its events; comments (the engine's pings) are dropped."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer = (self._buffer + chunk).replace(b"\r\n", b"\n")
        events = []
        while b"\n\n" in self._buffer:
            event, self._buffer = self._buffer.split(b"\n\n", 1)
            data = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
            if data:
                events.append(b"\n".join(data).decode())
        return events


class EngineClient:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self._session = session
        self._base = base

    async def _post(self, path: str, body: dict[str, Any]) -> aiohttp.ClientResponse:
        try:
            return await self._session.post(self._base + path, json=body)
        except TIMEOUT_ERRORS:
            raise _failure("the engine did not answer in time", 504, "engine_timeout") from None
        except aiohttp.ClientError:
            raise _failure("the engine is unavailable", 502, "engine_unavailable") from None

    async def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The engine's JSON answer; EngineFailure when there is none."""
        upstream = await self._post(path, body)
        try:
            data = await upstream.read()
        except (aiohttp.ClientError, *TIMEOUT_ERRORS):
            raise _failure("the engine failed mid-response", 502, "engine_failed") from None
        finally:
            upstream.release()
        if upstream.status != 200:
            raise engine_error(upstream.status, data)
        try:
            answer = json.loads(data)
        except ValueError:
            raise _failure("the engine answered with invalid JSON", 502, "engine_failed") from None
        if not isinstance(answer, dict):
            raise _failure("the engine answered with invalid JSON", 502, "engine_failed")
        return answer

    async def events(self, path: str, body: dict[str, Any]) -> AsyncIterator[str]:
        """The data of each event the engine streams for `body`, up to [DONE] (not included)."""
        upstream = await self._post(path, body)
        try:
            if upstream.status != 200 or upstream.content_type != SSE_CONTENT_TYPE:
                raise engine_error(upstream.status, await upstream.read())
            parser = SseEvents()
            while True:
                try:
                    chunk = await upstream.content.readany()
                except (aiohttp.ClientError, *TIMEOUT_ERRORS):
                    raise _failure("the engine failed during the stream", 502, "engine_failed") from None
                if not chunk:
                    raise _failure("the engine ended the stream early", 502, "engine_failed")
                for data in parser.feed(chunk):
                    if data == "[DONE]":
                        return
                    yield data
        finally:
            # a stream read to its end frees the connection; one left early is closed, so the engine stops
            if upstream.content.at_eof():
                upstream.release()
            else:
                upstream.close()

    async def count_tokens(self, text: str, model: Any) -> int:
        """Tokens in `text` by the engine's tokenizer, without the BOS token it adds to a prompt."""
        counts = await asyncio.gather(
            *(self.answer(TOKEN_COUNT_PATH, {"input": t, "model": model}) for t in (text, ""))
        )
        return int(counts[0]["count"]) - int(counts[1]["count"])


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def serve(
    request: web.Request, session: aiohttp.ClientSession, engine_base: str, route: str, body: Any
) -> web.StreamResponse:
    plan = oc.plan_request(route, body)
    if isinstance(plan, oc.Refusal):
        return error_response(plan.message, 400, plan.code, plan.param)
    engine = EngineClient(session, engine_base)
    if plan.stream:
        return await _stream(request, engine, plan)
    try:
        answers = [await engine.answer(plan.route, call.body) for call in plan.calls]
    except EngineFailure as failure:
        return failure.response
    if plan.route == oc.EMBEDDINGS:
        # per-token vectors of a long input are megabytes: pooled off the event loop
        fixed = await asyncio.to_thread(oc.pooled_embeddings, answers[0], plan.encoding_format)
        return web.json_response(fixed)
    return web.json_response(oc.merge_answers(plan, answers))


async def _stream(request: web.Request, engine: EngineClient, plan: oc.Plan) -> web.StreamResponse:
    """Headers go out with the first chunk: an engine refusing the first call answers with its status."""
    resp = web.StreamResponse(status=200, headers=stream_headers())
    first: dict[str, Any] | None = None
    choices = [oc.ChoiceStream(c.index, plan.include_usage, plan.keep_function_call) for c in plan.calls]
    try:
        for call, choice in zip(plan.calls, choices, strict=True):
            async with aclosing(engine.events(plan.route, call.body)) as events:
                async for data in events:
                    chunk = json.loads(data)
                    if not isinstance(chunk, dict) or "error" in chunk:
                        raise _failure("the engine failed during the stream", 502, "engine_failed")
                    first = first or dict(chunk)
                    choice.restamp(chunk, first.get("id", ""))
                    if not resp.prepared:
                        await resp.prepare(request)
                    await resp.write(b"data: " + _encode(chunk) + b"\n\n")
        if not resp.prepared:
            await resp.prepare(request)
        if plan.include_usage and first is not None:
            totals = await _streamed_usage(engine, plan, choices)
            await resp.write(b"data: " + _encode(oc.usage_chunk(first, totals)) + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
    except (EngineFailure, ValueError) as exc:
        if not resp.prepared:
            return exc.response if isinstance(exc, EngineFailure) else _bad_chunk()
        summary = exc.summary if isinstance(exc, EngineFailure) else "the engine sent an unreadable chunk"
        try:
            await resp.write(sse_error_event(summary, "engine_failed"))
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass
    except ConnectionError:
        pass  # the client went away; the engine's stream was closed on the way out
    return resp


def _bad_chunk() -> web.Response:
    return error_response("the engine sent an unreadable chunk", 502, "engine_failed")


async def _streamed_usage(
    engine: EngineClient, plan: oc.Plan, choices: list[oc.ChoiceStream]
) -> dict[str, int]:
    counts = []
    try:
        for call, choice in zip(plan.calls, choices, strict=True):
            prompt = 0
            if call.counts_prompt:
                probe = await engine.answer(plan.route, oc.usage_probe(call.body))
                prompt = int(probe["usage"]["prompt_tokens"])
            counted = await engine.count_tokens(choice.text, call.body.get("model"))
            max_tokens = call.body.get("max_tokens")
            counts.append((prompt, oc.completion_tokens(counted, choice.finish_reason, max_tokens)))
    except (KeyError, TypeError, ValueError):
        raise _failure("the engine did not report token counts", 502, "engine_failed") from None
    return oc.usage(plan, counts)
