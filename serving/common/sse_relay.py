"""Pass an upstream SSE response through to a client chunk by chunk, with no buffering.

A stream that breaks, or ends without [DONE], is closed with an OpenAI-format error event so the client
raises instead of waiting for more.
"""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web

from serving.common.openai_format import (
    SSE_CONTENT_TYPE,
    TIMEOUT_ERRORS,
    error_response,
    is_event_boundary,
    sse_error_event,
)

log = logging.getLogger("emd.sse")


def stream_headers() -> dict[str, str]:
    return {"Content-Type": SSE_CONTENT_TYPE, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class StreamTail:
    """Remembers the last bytes written, to tell a complete stream ([DONE] seen) from a cut one."""

    def __init__(self) -> None:
        self.tail = b""
        self.sent = 0

    def feed(self, chunk: bytes) -> None:
        self.sent += len(chunk)
        self.tail = (self.tail + chunk)[-32:]

    @property
    def done(self) -> bool:
        return b"[DONE]" in self.tail

    async def fail(self, resp: web.StreamResponse, message: str) -> None:
        """Close an interrupted stream with an error event (after finishing a half-written event)."""
        try:
            if not is_event_boundary(self.tail):
                await resp.write(b"\n\n")
            await resp.write(sse_error_event(message))
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass


async def relay_sse(request: web.Request, upstream: aiohttp.ClientResponse, label: str) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers=stream_headers())
    await resp.prepare(request)
    seen = StreamTail()
    while True:
        try:
            chunk = await upstream.content.readany()
        except (*TIMEOUT_ERRORS, aiohttp.ClientError) as exc:
            log.warning("%s failed mid-stream: %s", label, type(exc).__name__)
            await seen.fail(resp, f"{label} failed during the stream")
            return resp
        if not chunk:
            break
        try:
            await resp.write(chunk)
        except ConnectionError:
            return resp  # the client went away
        seen.feed(chunk)
    if not seen.done:
        await seen.fail(resp, f"{label} ended the stream early")
        return resp
    await resp.write_eof()
    request["emd_bytes_out"] = seen.sent
    return resp


async def relay_response(
    request: web.Request, upstream: aiohttp.ClientResponse, label: str, failed_message: str, failed_code: str
) -> web.StreamResponse:
    """An engine's answer to the client: an SSE stream chunk by chunk, anything else whole. The upstream
    connection is released once fully read, else closed, so the engine stops generating for a gone client."""
    try:
        if upstream.status == 200 and upstream.content_type == SSE_CONTENT_TYPE:
            return await relay_sse(request, upstream, label)
        try:
            data = await upstream.read()
        except (aiohttp.ClientError, *TIMEOUT_ERRORS):
            return error_response(failed_message, 502, failed_code)
        return web.Response(
            body=data,
            status=upstream.status,
            headers={"Content-Type": upstream.headers.get("Content-Type", "application/json")},
        )
    finally:
        if upstream.content.at_eof():
            upstream.release()
        else:
            upstream.close()
