"""Pass an upstream SSE response through to a client chunk by chunk, with no buffering.

A stream that breaks, or ends without [DONE], is closed with an OpenAI-format error event so the client
raises instead of waiting for more. A client that accepts no byte for write_timeout seconds is disconnected,
so it holds nothing upstream for longer. The outcome and the bytes sent are left on the request
(OUTCOME, BYTES_OUT) for the access log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

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

OK, UPSTREAM_FAILED, CLIENT_GONE, CLIENT_STALLED = "ok", "upstream_failed", "client_gone", "client_stalled"
STREAM_OUT = web.RequestKey("emd_stream_out", object)  # the request's StreamOut, once its stream started


def stream_headers() -> dict[str, str]:
    return {"Content-Type": SSE_CONTENT_TYPE, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class StreamOut:
    """The client side of one streamed answer: prepared on first use, bytes counted, [DONE] noticed. It is
    left on the request (STREAM_OUT) at its start, so the access log can read its outcome however the
    request ends."""

    def __init__(
        self, request: web.Request, write_timeout: float | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.request = request
        self.headers = {**stream_headers(), **(headers or {})}
        self._write_timeout = write_timeout
        self.resp: web.StreamResponse | None = None
        self.tail = b""
        self.sent = 0
        self.failed = False
        self.stalled = False
        self._writing_since: float | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    @property
    def done(self) -> bool:
        """[DONE] was sent: the client has the whole answer."""
        return b"[DONE]" in self.tail

    @property
    def outcome(self) -> str:
        if self.failed:
            return UPSTREAM_FAILED
        if self.stalled:
            return CLIENT_STALLED
        return OK if self.done else CLIENT_GONE

    async def prepare(self) -> web.StreamResponse:
        if self.resp is None:
            self.resp = web.StreamResponse(status=200, headers=self.headers)
            self.request[STREAM_OUT] = self
            await self.resp.prepare(self.request)
            if self._write_timeout:
                self._watchdog = asyncio.get_running_loop().call_later(self._write_timeout, self._watch)
        return self.resp

    def _watch(self) -> None:
        """Every write_timeout: a write waiting that long means a client that does not read; drop it."""
        transport = self.request.transport
        if transport is None or transport.is_closing():
            return
        loop = asyncio.get_running_loop()
        waiting = loop.time() - self._writing_since if self._writing_since is not None else 0.0
        if self._write_timeout and waiting >= self._write_timeout:
            log.info("client accepted nothing for %.0f s: disconnecting it", waiting)
            self.stalled = True
            transport.abort()
            return
        assert self._write_timeout
        self._watchdog = loop.call_later(self._write_timeout - waiting, self._watch)

    def _stop_watching(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()

    async def write(self, chunk: bytes) -> bool:
        """False when the client is gone (or was dropped for not reading)."""
        if not chunk:
            return True
        resp = await self.prepare()
        self._writing_since = asyncio.get_running_loop().time()
        try:
            await resp.write(chunk)
        except (ConnectionError, RuntimeError):
            self._stop_watching()
            return False
        finally:
            self._writing_since = None
        self.sent += len(chunk)
        self.tail = (self.tail + chunk[-32:])[-32:]
        return True

    async def finish(self) -> web.StreamResponse:
        """End a complete stream. A client that hung up after [DONE] had everything: that is not an error."""
        resp = await self.prepare()
        self._stop_watching()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write_eof()
        return resp

    async def fail(self, message: str, code: str = "backend_stream_error") -> web.StreamResponse:
        """Close an interrupted stream with an error event (after finishing a half-written event)."""
        resp = await self.prepare()
        if not is_event_boundary(self.tail):
            await self.write(b"\n\n")
        await self.write(sse_error_event(message, code))
        self.failed = True
        self._stop_watching()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write_eof()
        return resp


async def relay_sse(
    upstream: aiohttp.ClientResponse,
    out: StreamOut,
    label: str,
    transform: Callable[[bytes], bytes] | None = None,
    flush: Callable[[], bytes] | None = None,
) -> web.StreamResponse:
    """upstream's SSE bytes to out as they come (through transform, when given); flush gives what transform
    still holds at the end."""
    while True:
        try:
            chunk = await upstream.content.readany()
        except (*TIMEOUT_ERRORS, aiohttp.ClientError) as exc:
            log.warning("%s failed mid-stream: %s", label, type(exc).__name__)
            return await out.fail(f"{label} failed during the stream")
        if not chunk:
            break
        if not await out.write(transform(chunk) if transform else chunk):
            return out.resp or web.Response(status=499)  # the client went away
    if flush is not None and not await out.write(flush()):
        return out.resp or web.Response(status=499)
    if not out.done:
        return await out.fail(f"{label} ended the stream early")
    return await out.finish()


async def relay_response(
    request: web.Request, upstream: aiohttp.ClientResponse, label: str, failed_message: str, failed_code: str
) -> web.StreamResponse:
    """An engine's answer to the client: an SSE stream chunk by chunk, anything else whole. The upstream
    connection is released once fully read, else closed, so the engine stops generating for a gone client."""
    try:
        if upstream.status == 200 and upstream.content_type == SSE_CONTENT_TYPE:
            return await relay_sse(upstream, StreamOut(request), label)
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
        close_upstream(upstream)


def close_upstream(upstream: aiohttp.ClientResponse) -> None:
    """Released for reuse when fully read; otherwise closed, which stops the engine's work for it."""
    if upstream.content.at_eof():
        upstream.release()
    else:
        upstream.close()
